"""torch autograd for ``sum_j sigmoid(x @ W.T + b)``: a custom op, its backward with bounded memory, and a module.

``linear_sigmoid_sum(x, weight, bias=None, *, precision=None, method="auto", workspace_bytes=256 MiB)`` is
differentiable with respect to x, weight and bias. The forward is ``cupy_fused.linear_sigmoid_sum`` (NumPy backend
for CPU tensors, the GPU backends for CUDA tensors, on torch's current stream); only x, weight and bias are saved
for backward. The backward never holds a (B, N) tensor: it recomputes z = x @ W.T + b over chunks of N whose
(B, chunk) block fits ``workspace_bytes`` (``cupy_fused.layer.backward_chunk``), forms gz = g * s * (1 - s) in place
(torch's own sigmoid_backward formula) and accumulates

    grad_x += gz @ W[chunk],   grad_W[chunk] = gz.T @ x,   grad_b[chunk] = gz.T @ ones   (a GEMV)

in float32 for half inputs (float64 for float64), casting the results to the input dtype at the end. Only the
gradients autograd asks for are computed. Extra memory: the gradients themselves, the (B, chunk) block, and for half
inputs an fp32 grad_x accumulator and fp32 copies of x and of the chunk's weight rows. Double backward is not
supported (the backward op has no derivative).

Both directions are ``torch.library.custom_op`` s, so ``torch.compile(fullgraph=True)`` keeps them opaque:

* ``cupy_fused::linear_sigmoid_sum(Tensor x, Tensor weight, Tensor? bias, str? precision, str method,
  int workspace_bytes) -> Tensor``, with a fake implementation and the autograd formula below registered on it;
* ``cupy_fused::linear_sigmoid_sum_backward(Tensor grad, Tensor x, Tensor weight, Tensor? bias, str precision,
  int workspace_bytes, bool need_x, bool need_weight, bool need_bias) -> (Tensor, Tensor, Tensor)``, with a fake
  implementation (precision is the backward one, "ieee" or "tf32"; a gradient that is not asked for comes back as
  an empty tensor).

Precision of the backward GEMMs (float32 for float32 and half inputs, float64 for float64): for a forward precision
None, "ieee" or "tf32x3" (the fp32-accurate ones) they are strict fp32, for "tf32" and "bf16" TF32 tensor cores on
CUDA, whatever the caller's torch settings say: the backward op sets ``torch.backends.cuda.matmul.fp32_precision``
("ieee" or "tf32") around its own GEMMs and puts the caller's value back afterwards (older torch: ``allow_tf32``).
Setting the new attribute leaves the legacy ``allow_tf32`` flag as the caller left it, and torch's matmuls read the
new one (checked on an H100 with torch 2.11: a matmul runs with the two disagreeing), so a caller who uses either
API is served. The setting is process-wide: another thread's fp32 matmuls that run during the backward see it too.
CPU GEMMs are always strict (oneDNN's fp32_precision is held at "ieee"), like the NumPy forward.

This module imports torch; ``import cupy_fused`` does not import it.
"""

import contextlib
import math
from typing import Optional, Tuple

import torch
from torch import Tensor, nn

from . import _arrays, _checks, _plan
from . import ops as _ops
from .layer import backward_chunk  # the chunk rule, shared with the plain-array layer

__all__ = ["linear_sigmoid_sum", "LinearSigmoidSum", "backward_precision", "DEFAULT_WORKSPACE_BYTES"]

DEFAULT_WORKSPACE_BYTES = _ops.DEFAULT_WORKSPACE_BYTES
_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_TF32_BACKWARD = ("tf32", "bf16")  # forward precisions whose backward GEMMs use TF32 on CUDA; the others are strict


# ------------------------------------------------------------------------------------------------------- validation

def _check_inputs(x, weight, bias) -> None:
    """torch tensors only; the rest (dtypes, devices, shapes) is the package's one set of checks."""
    named = [("x", x), ("weight", weight)] + ([("bias", bias)] if bias is not None else [])
    for name, t in named:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__module__}.{type(t).__name__}")
    ops = [_arrays.describe(name, t) for name, t in named]
    _checks.same_kind(ops)
    _checks.linear_shapes(ops[0], ops[1], ops[2] if bias is not None else None)


def backward_precision(precision: Optional[str]) -> str:
    """The precision of the backward GEMMs for a forward ``precision``: "tf32" for "tf32" and "bf16" (torch has no
    bf16-operand fp32 GEMM; TF32 is its nearest), "ieee" (strict fp32) for None, "ieee" and "tf32x3" (the
    fp32-accurate ones)."""
    return "tf32" if precision in _TF32_BACKWARD else "ieee"


# ----------------------------------------------------------------------------------------------------- the forward

@torch.library.custom_op("cupy_fused::linear_sigmoid_sum", mutates_args=())
def _forward_op(
    x: Tensor, weight: Tensor, bias: Optional[Tensor], precision: Optional[str], method: str, workspace_bytes: int
) -> Tensor:
    return _ops.linear_sigmoid_sum(
        x, weight, bias, precision=precision, method=method, workspace_bytes=workspace_bytes
    )


@_forward_op.register_fake
def _forward_fake(x, weight, bias, precision, method, workspace_bytes):
    torch._check(weight.dim() == 2 and weight.shape[1] == x.shape[-1], lambda: "weight must have shape (N, K)")
    return x.new_empty(tuple(x.shape[:-1]) + (1,))


# ---------------------------------------------------------------------------------------------------- the backward

@contextlib.contextmanager
def _matmul_precision(precision: str, device: torch.device):
    """torch's fp32 matmul precision for the backward GEMMs: CUDA: ``precision`` ("ieee" or "tf32"); CPU (oneDNN):
    always strict. The caller's setting is restored afterwards."""
    if device.type == "cuda":
        target, want = torch.backends.cuda.matmul, ("tf32" if precision == "tf32" else "ieee")
    else:
        target, want = getattr(getattr(torch.backends, "mkldnn", None), "matmul", None), "ieee"
    try:
        saved = target.fp32_precision  # torch >= 2.9; reading it never trips torch's legacy/new API check
    except AttributeError:
        saved = None
    if saved is not None:
        target.fp32_precision = want
        try:
            yield
        finally:
            target.fp32_precision = saved
    elif device.type == "cuda":  # older torch: the legacy flag
        saved_tf32 = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = want == "tf32"
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32 = saved_tf32
    else:
        yield


def _backward_impl(grad, x, weight, bias, precision, workspace_bytes, need_x, need_weight, need_bias):
    n, k = weight.shape
    rows = math.prod(x.shape[:-1])
    dtype, device = x.dtype, x.device
    compute = torch.float64 if dtype == torch.float64 else torch.float32
    half = dtype in (torch.float16, torch.bfloat16)
    need_bias = need_bias and bias is not None
    empty = x.new_empty(0)
    grad_w = torch.empty((n, k), dtype=dtype, device=device) if need_weight else empty
    grad_b = torch.empty((n,), dtype=dtype, device=device) if need_bias else empty.clone()
    grad_x_acc = torch.zeros((rows, k), dtype=compute, device=device) if need_x else None
    if rows == 0 or n == 0:
        if need_weight:
            grad_w.zero_()
        if need_bias:
            grad_b.zero_()
    elif need_x or need_weight or need_bias:
        x2 = x.reshape(rows, k).to(compute)  # a float32 copy for half inputs (B x K, not B x N)
        g = grad.reshape(rows, 1).to(compute)
        step = backward_chunk(rows, n, k, torch.empty(0, dtype=compute).element_size(), half, workspace_bytes)
        block = torch.empty(rows * step, dtype=compute, device=device)
        ones = torch.ones(rows, dtype=compute, device=device) if need_bias else None
        with _matmul_precision(precision, device):
            for start in range(0, n, step):
                stop = min(start + step, n)
                w = weight[start:stop].to(compute)
                gz = block[: rows * (stop - start)].view(rows, stop - start)
                torch.mm(x2, w.t(), out=gz)  # z
                if bias is not None:
                    gz.add_(bias[start:stop].to(compute))
                gz.sigmoid_()  # s
                torch.ops.aten.sigmoid_backward.grad_input(g, gz, grad_input=gz)  # g * (1 - s) * s, in place
                if need_x:
                    grad_x_acc.addmm_(gz, w)
                if need_weight:
                    if half:
                        grad_w[start:stop].copy_(torch.mm(gz.t(), x2))
                    else:
                        torch.mm(gz.t(), x2, out=grad_w[start:stop])
                if need_bias:  # gz.T @ ones: a GEMV (a column sum on CUDA would stage 2 x (B, chunk) of memory)
                    if half:
                        grad_b[start:stop].copy_(torch.mv(gz.t(), ones))
                    else:
                        torch.mv(gz.t(), ones, out=grad_b[start:stop])
    if need_x:
        grad_x = (grad_x_acc if grad_x_acc.dtype == dtype else grad_x_acc.to(dtype)).reshape(x.shape)
    else:
        grad_x = empty.clone()
    return grad_x, grad_w, grad_b


@torch.library.custom_op("cupy_fused::linear_sigmoid_sum_backward", mutates_args=())
def _backward_op(
    grad: Tensor,
    x: Tensor,
    weight: Tensor,
    bias: Optional[Tensor],
    precision: str,
    workspace_bytes: int,
    need_x: bool,
    need_weight: bool,
    need_bias: bool,
) -> Tuple[Tensor, Tensor, Tensor]:
    return _backward_impl(grad, x, weight, bias, precision, workspace_bytes, need_x, need_weight, need_bias)


@_backward_op.register_fake
def _backward_fake(grad, x, weight, bias, precision, workspace_bytes, need_x, need_weight, need_bias):
    grad_x = torch.empty_like(x, memory_format=torch.contiguous_format) if need_x else x.new_empty(0)
    grad_w = weight.new_empty(tuple(weight.shape)) if need_weight else x.new_empty(0)
    grad_b = weight.new_empty((weight.shape[0],)) if need_bias and bias is not None else x.new_empty(0)
    return grad_x, grad_w, grad_b


def _setup_context(ctx, inputs, output):
    x, weight, bias, precision, method, workspace_bytes = inputs
    ctx.save_for_backward(x, weight, bias)
    ctx.precision = backward_precision(precision)
    ctx.workspace_bytes = workspace_bytes


def _backward(ctx, grad):
    x, weight, bias = ctx.saved_tensors
    need_x, need_weight, need_bias = ctx.needs_input_grad[:3]
    need_bias = bool(need_bias) and bias is not None
    grad_x, grad_w, grad_b = torch.ops.cupy_fused.linear_sigmoid_sum_backward(
        grad, x, weight, bias, ctx.precision, ctx.workspace_bytes, bool(need_x), bool(need_weight), need_bias
    )
    return (grad_x if need_x else None, grad_w if need_weight else None, grad_b if need_bias else None, None, None,
            None)


_forward_op.register_autograd(_backward, setup_context=_setup_context)


# ------------------------------------------------------------------------------------------------------ public API

def linear_sigmoid_sum(
    x: Tensor,
    weight: Tensor,
    bias: Optional[Tensor] = None,
    *,
    precision: Optional[str] = None,
    method: str = "auto",
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
) -> Tensor:
    """``torch.sum(torch.sigmoid(F.linear(x, weight, bias)), dim=-1, keepdim=True)``, differentiable with respect
    to x, weight and bias, as the custom op ``torch.ops.cupy_fused.linear_sigmoid_sum``.

    x: (..., K); weight: (N, K); bias: (N,) or None; one device (CPU or CUDA), one floating dtype. Returns
    (..., 1). ``precision`` and ``method`` are ``cupy_fused.linear_sigmoid_sum``'s for the forward (None: its
    fp32-accurate default); the backward GEMMs are strict fp32 for None, "ieee" and "tf32x3", and TF32 on CUDA for
    "tf32" and "bf16" (``backward_precision``); CPU tensors always run strict. ``workspace_bytes`` bounds the
    (B, chunk of N) block of each direction.
    """
    if not torch.compiler.is_compiling():
        # Eager calls fail here, before autograd records anything; a compiled graph skips this (dynamo would break
        # the graph on it) and the op's implementation runs the same checks when it executes.
        _check_inputs(x, weight, bias)
        _checks.precision(precision)
        _checks.method(method)
        _checks.workspace_bytes(workspace_bytes)
        if x.device.type == "cpu" and method != "auto":
            raise ValueError(f"method={method!r} needs CUDA tensors; CPU tensors run on the NumPy backend (use 'auto')")
        if x.device.type == "cuda":  # an impossible method/precision pair (tf32x3 on cuBLAS)
            _plan.choose(math.prod(x.shape[:-1]), x.shape[-1], weight.shape[0], str(x.dtype).removeprefix("torch."),
                         precision, method, x.device.index)
    return torch.ops.cupy_fused.linear_sigmoid_sum(x, weight, bias, precision, method, workspace_bytes)


class LinearSigmoidSum(nn.Module):
    """``nn.Linear`` followed by sigmoid and a sum over the features: ``forward(x)`` maps (..., in_features) to
    (..., 1). Parameters, their initialization and the state_dict keys are nn.Linear's (``weight``
    (out_features, in_features), ``bias`` (out_features,) or None), so an nn.Linear's state_dict loads as it is.
    ``precision``, ``method`` and ``workspace_bytes`` are passed to ``linear_sigmoid_sum`` (attributes, changeable)."""

    __constants__ = ["in_features", "out_features"]

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device=None,
        dtype=None,
        *,
        precision: Optional[str] = None,
        method: str = "auto",
        workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
    ) -> None:
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative int, got {value!r}")
        _checks.flag("bias", bias)
        factory_kwargs = {"device": device, "dtype": dtype}
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.precision = _checks.precision(precision)
        self.method = _checks.method(method)
        self.workspace_bytes = _checks.workspace_bytes(workspace_bytes)
        self.weight = nn.Parameter(torch.empty((out_features, in_features), **factory_kwargs))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features, **factory_kwargs))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """As nn.Linear: weight ~ kaiming_uniform(a=sqrt(5)) (uniform in +-1/sqrt(in_features)), bias uniform in
        +-1/sqrt(in_features)."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1]
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return linear_sigmoid_sum(
            x, self.weight, self.bias, precision=self.precision, method=self.method,
            workspace_bytes=self.workspace_bytes,
        )

    def extra_repr(self) -> str:
        text = f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
        text += f", precision={self.precision!r}" if self.precision is not None else ""
        return text + (f", method={self.method!r}" if self.method != "auto" else "")
