"""torch autograd for ``sum_j sigmoid(x @ W.T + b)``: two custom ops and a module. This module imports torch;
``import cupy_fused`` does not.

``linear_sigmoid_sum(x, weight, bias=None, *, precision=None, method="auto", workspace_bytes=256 MiB)`` is
differentiable with respect to x, weight and bias. The forward is ``cupy_fused.linear_sigmoid_sum`` (NumPy backend for
CPU tensors, the GPU planner for CUDA tensors, on torch's current stream). When autograd records the call and the (B, N)
block of sigmoid'(z) in x's dtype fits ``save_bytes`` (None: ``workspace_bytes``, and any size for half inputs), the
forward kernels also write it and the backward needs no recompute; otherwise only x, weight and bias are saved. The
backward is the package's one backward (``cupy_fused.backward``, shared with the plain-array layer): chunks of N whose
(B, chunk) block fits ``workspace_bytes``, half inputs on half tensor cores with gz rounded once (see
docs/precision.md), only the gradients autograd asks for are computed, and the GEMMs' precision is chosen per call from
the forward's (tf32x3 on our GEMM or strict fp32 for the default and "tf32x3", strict fp32 for "ieee"; TF32 for "tf32";
bf16 operands for "bf16"; CPU tensors always strict). No global setting of torch is read or changed. Double backward is
not supported.

Both directions are ``torch.library.custom_op`` s, so ``torch.compile(fullgraph=True)`` keeps them opaque. In eager
mode, with plain CPU or CUDA tensors and no torch.func transform, a call runs the same functions without the ops'
dispatch (a plain ``torch.autograd.Function`` in training), which saves host time per call; the ops are:

* ``cupy_fused::linear_sigmoid_sum(Tensor x, Tensor weight, Tensor? bias, str? precision, str method,
  int workspace_bytes) -> Tensor`` (inference; its autograd formula recomputes);
* ``cupy_fused::linear_sigmoid_sum_train(..., int save_bytes) -> (Tensor out, Tensor saved)`` (what a training
  call runs: saved is sigmoid'(z), or empty above the budget);
* ``cupy_fused::linear_sigmoid_sum_backward(Tensor grad, Tensor x, Tensor weight, Tensor? bias, Tensor? saved,
  str? precision, int workspace_bytes, bool need_x, bool need_weight, bool need_bias) -> (Tensor, Tensor, Tensor)``
  (precision is the forward's; a gradient that is not asked for comes back as an empty tensor);

each with a fake implementation.

For W's rows split across the ranks of a torch.distributed group: ``sharded_linear_sigmoid_sum``,
``ShardedLinearSigmoidSum`` and ``shard_rows`` (from ``cupy_fused.torch_distributed``).
"""

import math
from collections.abc import Callable
from typing import Any, Optional, Tuple, cast

import torch
from torch import Tensor, nn

from . import api, backward, checks
from ._doc import fill
from .api import Method, Precision

__all__ = [
    "linear_sigmoid_sum",
    "LinearSigmoidSum",
    "DEFAULT_WORKSPACE_BYTES",
    "sharded_linear_sigmoid_sum",
    "ShardedLinearSigmoidSum",
    "shard_rows",
]

#: The default ``workspace_bytes``: 256 MiB.
DEFAULT_WORKSPACE_BYTES: int = api.DEFAULT_WORKSPACE_BYTES


@torch.library.custom_op("cupy_fused::linear_sigmoid_sum", mutates_args=())
def _forward_op(
    x: Tensor, weight: Tensor, bias: Optional[Tensor], precision: Optional[str], method: str, workspace_bytes: int
) -> Tensor:
    # the ops' schemas take str (torch.library has no Literal); the values were checked by linear_sigmoid_sum
    precision_name, method_name = cast(Optional[Precision], precision), cast(Method, method)
    return api.linear_sigmoid_sum(
        x, weight, bias, precision=precision_name, method=method_name, workspace_bytes=workspace_bytes
    )


@_forward_op.register_fake
def _forward_fake(
    x: Tensor, weight: Tensor, bias: Optional[Tensor], precision: Optional[str], method: str, workspace_bytes: int
) -> Tensor:
    torch._check(
        weight.dim() == 2 and weight.shape[1] == x.shape[-1],
        lambda: f"weight must have shape (N, K) with K == x.shape[-1] == {x.shape[-1]}, got {tuple(weight.shape)}",
    )
    return x.new_empty(tuple(x.shape[:-1]) + (1,))


@torch.library.custom_op("cupy_fused::linear_sigmoid_sum_train", mutates_args=())
def _train_op(
    x: Tensor,
    weight: Tensor,
    bias: Optional[Tensor],
    precision: Optional[str],
    method: str,
    workspace_bytes: int,
    save_bytes: int,
) -> Tuple[Tensor, Tensor]:
    precision_name, method_name = cast(Optional[Precision], precision), cast(Method, method)  # as in _forward_op
    out, saved = backward.forward(
        x,
        weight,
        bias,
        precision=precision_name,
        method=method_name,
        workspace_bytes=workspace_bytes,
        save_bytes=save_bytes,
    )
    return out, x.new_empty(0) if saved is None else saved


@_train_op.register_fake
def _train_fake(
    x: Tensor,
    weight: Tensor,
    bias: Optional[Tensor],
    precision: Optional[str],
    method: str,
    workspace_bytes: int,
    save_bytes: int,
) -> Tuple[Tensor, Tensor]:
    out = _forward_fake(x, weight, bias, precision, method, workspace_bytes)
    rows = math.prod(x.shape[:-1])
    fits = backward.saves(tuple(x.shape), weight.shape[0], x.dtype, save_bytes)
    saved = x.new_empty((rows, weight.shape[0])) if fits else x.new_empty(0)  # sigmoid'(z) in x's dtype
    return out, saved


@torch.library.custom_op("cupy_fused::linear_sigmoid_sum_backward", mutates_args=())
def _backward_op(
    grad: Tensor,
    x: Tensor,
    weight: Tensor,
    bias: Optional[Tensor],
    saved: Optional[Tensor],
    precision: Optional[str],
    workspace_bytes: int,
    need_x: bool,
    need_weight: bool,
    need_bias: bool,
) -> Tuple[Tensor, Tensor, Tensor]:
    grads = backward.grad(
        x,
        weight,
        bias,
        grad,
        precision=precision,
        workspace_bytes=workspace_bytes,
        need=(need_x, need_weight, need_bias),
        saved=saved,
    )
    grad_x, grad_w, grad_b = (x.new_empty(0) if g is None else g for g in grads)
    return grad_x, grad_w, grad_b


@_backward_op.register_fake
def _backward_fake(
    grad: Tensor,
    x: Tensor,
    weight: Tensor,
    bias: Optional[Tensor],
    saved: Optional[Tensor],
    precision: Optional[str],
    workspace_bytes: int,
    need_x: bool,
    need_weight: bool,
    need_bias: bool,
) -> Tuple[Tensor, Tensor, Tensor]:
    grad_x = torch.empty_like(x, memory_format=torch.contiguous_format) if need_x else x.new_empty(0)
    grad_w = weight.new_empty(tuple(weight.shape)) if need_weight else x.new_empty(0)
    grad_b = weight.new_empty((weight.shape[0],)) if need_bias and bias is not None else x.new_empty(0)
    return grad_x, grad_w, grad_b


def _setup_context(ctx: Any, inputs: Tuple[Any, ...], output: Any) -> None:
    x, weight, bias, precision, method, workspace_bytes = inputs[:6]
    saved = None
    if isinstance(output, tuple):  # the training op: use what it saved, if it saved
        saved = output[1] if output[1].dim() == 2 else None  # (B, N) when saved, an empty 1-d tensor when not
        ctx.mark_non_differentiable(output[1])
    ctx.save_for_backward(x, weight, bias, saved)
    ctx.precision = precision
    ctx.workspace_bytes = workspace_bytes


def _backward(ctx: Any, grad: Tensor, *unused: Any) -> Tuple[Optional[Tensor], ...]:
    """The backward of both the ops' autograd and the eager path: ``backward.grad`` directly when the call may skip
    the ops (``_eager``), else the backward op, also under create_graph=True, whose results then refuse a second
    differentiation."""
    x, weight, bias, saved = ctx.saved_tensors
    need_x, need_weight, need_bias = (bool(n) for n in ctx.needs_input_grad[:3])
    need_bias = need_bias and bias is not None
    if not torch.is_grad_enabled() and _eager(grad, x, weight, bias, saved):
        grads = backward.grad(
            x,
            weight,
            bias,
            grad,
            precision=ctx.precision,
            workspace_bytes=ctx.workspace_bytes,
            need=(need_x, need_weight, need_bias),
            saved=saved,
        )
    else:
        grad_x, grad_w, grad_b = torch.ops.cupy_fused.linear_sigmoid_sum_backward(
            grad, x, weight, bias, saved, ctx.precision, ctx.workspace_bytes, need_x, need_weight, need_bias
        )
        grads = (grad_x if need_x else None, grad_w if need_weight else None, grad_b if need_bias else None)
    return grads + (None,) * (len(ctx.needs_input_grad) - 3)


_forward_op.register_autograd(_backward, setup_context=_setup_context)
_train_op.register_autograd(_backward, setup_context=_setup_context)


class _EagerTraining(torch.autograd.Function):
    """A training call in eager mode: the training op's forward (``backward.forward``) and the ops' backward (which
    calls ``backward.grad`` directly in eager mode) without the ops' dispatch, which cost about 260 us of host time
    per step at 512 x 2048 x 3000 on the H100 machine (benchmarks/lab/profile_training_host.py)."""

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        weight: Tensor,
        bias: Optional[Tensor],
        precision: Optional[Precision],
        method: Method,
        workspace_bytes: int,
        save_bytes: int,
    ) -> Tensor:
        out: Tensor
        out, saved = backward.forward(
            x, weight, bias, precision=precision, method=method, workspace_bytes=workspace_bytes, save_bytes=save_bytes
        )
        ctx.save_for_backward(x, weight, bias, saved)
        ctx.precision = precision
        ctx.workspace_bytes = workspace_bytes
        return out

    backward = staticmethod(_backward)


# Function.apply has no annotations up to torch 2.13 (a call of it from here would be an untyped call)
_eager_training: Callable[..., Tensor] = _EagerTraining.apply


# whether something records or intercepts torch calls, resolved once; a private hook that is missing answers yes
_dispatch_modes = getattr(torch._C, "_len_torch_dispatch_stack", lambda: 1)
_INTERCEPTED = (
    torch.compiler.is_compiling,
    torch.jit.is_tracing,
    getattr(torch._C, "_are_functorch_transforms_active", lambda: True),
    lambda: _dispatch_modes() > 0,
    getattr(torch._C, "_is_torch_function_mode_enabled", lambda: True),
)
_PLAIN = (Tensor, nn.Parameter)  # the tensor types a call may take the eager path with


def _eager(*tensors: Optional[Tensor]) -> bool:
    """Whether a call may skip the custom ops: nothing that records or intercepts torch calls is active
    (torch.compile, torch.export, torch.jit.trace, make_fx, a dispatch or torch-function mode, a torch.func
    transform) and the tensors are plain CPU or CUDA tensors (fake, meta and subclassed tensors go through the ops
    and their fake implementations)."""
    if any(active() for active in _INTERCEPTED):
        return False
    for t in tensors:  # a loop over flags, not t.device (a new object per read): 1 us against 3.5 per call
        if t is not None and not (type(t) in _PLAIN and (t.is_cuda or t.is_cpu)):
            return False
    return True


def linear_sigmoid_sum(
    x: Tensor,
    weight: Tensor,
    bias: Optional[Tensor] = None,
    *,
    precision: Optional[Precision] = None,
    method: Method = "auto",
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
    save_bytes: Optional[int] = None,
) -> Tensor:
    if not torch.compiler.is_compiling():
        # What the ops' schemas would refuse with torch's own message is checked here with ours; everything else is
        # validated where the op resolves its plan (its errors reach the caller unchanged). A compiled graph skips
        # this (dynamo would break the graph on it).
        for name, t in (("x", x), ("weight", weight), ("bias", bias)):
            if t is not None and not isinstance(t, torch.Tensor):
                raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__module__}.{type(t).__name__}")
        checks.precision(precision)
        checks.method(method)
        checks.workspace_bytes(workspace_bytes)
        checks.save_bytes(save_bytes)
    training = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, weight, bias))
    if training:
        n = weight.shape[0] if weight.dim() == 2 else 0  # a malformed weight is refused where the plan is resolved
        budget = backward.save_budget(save_bytes, workspace_bytes, tuple(x.shape), n, x.dtype)
    if _eager(x, weight, bias):
        if training:
            return _eager_training(x, weight, bias, precision, method, workspace_bytes, budget)
        return api.linear_sigmoid_sum(
            x, weight, bias, precision=precision, method=method, workspace_bytes=workspace_bytes
        )
    ops = torch.ops.cupy_fused  # torch.ops is dynamic: its ops are Any to a checker
    out: Tensor
    if not training:
        out = ops.linear_sigmoid_sum(x, weight, bias, precision, method, workspace_bytes)
    else:
        out = ops.linear_sigmoid_sum_train(x, weight, bias, precision, method, workspace_bytes, budget)[0]
    return out


linear_sigmoid_sum.__doc__ = fill("""``torch.sum(torch.sigmoid(F.linear(x, weight, bias)), dim=-1, keepdim=True)``,
    differentiable with respect to x, weight and bias, as the custom op ``torch.ops.cupy_fused.linear_sigmoid_sum``.

    The backward's GEMM precision follows ``precision`` (:mod:`cupy_fused.torch`).

    Args:
        {tensors}
        {precision}
        {method}
        {workspace_bytes}
        {save_bytes}

    Returns:
        (..., 1), a tensor of x's device and dtype.
    """)


class LinearSigmoidSum(nn.Module):
    __constants__ = ["in_features", "out_features"]

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: torch.device | str | int | None = None,
        dtype: Optional[torch.dtype] = None,
        *,
        precision: Optional[Precision] = None,
        method: Method = "auto",
        workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
        save_bytes: Optional[int] = None,
    ) -> None:
        in_features, out_features = checks.count("in_features", in_features), checks.count("out_features", out_features)
        checks.flag("bias", bias)
        if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise TypeError(
                f"dtype must be a floating dtype (torch.float32, torch.bfloat16, ...) or None, got {dtype!r}"
            )
        factory_kwargs: dict[str, Any] = {"device": device, "dtype": dtype}
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.precision = checks.precision(precision)
        self.method = checks.method(method)
        self.workspace_bytes = checks.workspace_bytes(workspace_bytes)
        self.save_bytes = checks.save_bytes(save_bytes)
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
        """(..., in_features) -> (..., 1), differentiable (call the module: ``layer(x)``)."""
        if not torch.compiler.is_compiling():
            if not isinstance(x, torch.Tensor):
                raise TypeError(f"x must be a torch.Tensor, got {type(x).__module__}.{type(x).__name__}")
            if x.dim() < 1 or x.shape[-1] != self.in_features:
                raise ValueError(
                    f"x must have shape (..., {self.in_features}) (in_features == {self.in_features}), "
                    f"got {tuple(x.shape)}"
                )
        return self._function(
            x,
            self.weight,
            self.bias,
            precision=self.precision,
            method=self.method,
            workspace_bytes=self.workspace_bytes,
            save_bytes=self.save_bytes,
        )

    def _function(self, *args: Any, **kwargs: Any) -> Tensor:
        """What forward calls (after checking x): linear_sigmoid_sum here, its sharded form in the sharded module."""
        return linear_sigmoid_sum(*args, **kwargs)

    def extra_repr(self) -> str:
        """What repr(layer) shows inside the parentheses: the sizes, whether there is a bias, and the options that
        are not their defaults."""
        text = f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
        text += f", precision={self.precision!r}" if self.precision is not None else ""
        return text + (f", method={self.method!r}" if self.method != "auto" else "")


LinearSigmoidSum.__doc__ = fill("""``nn.Linear`` followed by sigmoid and a sum over the features: ``forward(x)`` maps
    (..., in_features) to (..., 1).

    Parameters, their initialization and the state_dict keys are nn.Linear's (``weight`` (out_features,
    in_features), ``bias`` (out_features,) or None), so an nn.Linear's state_dict loads as it is. ``precision``,
    ``method``, ``workspace_bytes`` and ``save_bytes`` are attributes (changeable), passed to
    :func:`linear_sigmoid_sum`.

    Args:
        in_features: K.
        out_features: N.
        bias: whether the layer has a bias.
        device: as nn.Linear's (None: torch's default device).
        dtype: a floating torch dtype, as nn.Linear's (None: torch's default dtype).
        {precision}
        {method}
        {workspace_bytes}
        {save_bytes}
    """)

# the torch.distributed face builds on the names above
from .torch_distributed import ShardedLinearSigmoidSum, shard_rows, sharded_linear_sigmoid_sum  # noqa: E402
