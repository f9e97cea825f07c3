"""A layer for plain arrays (NumPy on the host, CuPy on a GPU), with gradients and no torch.

``LinearSigmoidSum(in_features, out_features)`` holds ``weight`` (out_features, in_features) and ``bias``
(out_features,) as numpy or cupy arrays, initialized like ``torch.nn.Linear`` (uniform in +-1/sqrt(in_features))
from a seeded generator. ``layer(x)`` is ``cupy_fused.linear_sigmoid_sum(x, layer.weight, layer.bias)``;
``layer.grad(x, grad_out)`` returns (grad_x, grad_weight, grad_bias) with bounded memory: z = x @ W.T + b is
recomputed over chunks of N whose (B, chunk) block fits ``workspace_bytes``, never as a whole (B, N) array. Half
inputs accumulate in float32 and the gradients are cast to the layer's dtype at the end. The state_dict has
nn.Linear's keys ("weight", "bias").

Importing this module imports neither torch nor cupy: cupy is imported when a layer lives on a GPU, torch only to
read a torch tensor handed to ``load_state_dict``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from . import _arrays, _checks
from .ops import DEFAULT_WORKSPACE_BYTES, linear_sigmoid_sum

__all__ = ["LinearSigmoidSum", "backward_chunk"]

DTYPES = ("float16", "float32", "float64")


def backward_chunk(rows: int, n: int, k: int, itemsize: int, half: bool, workspace_bytes: int) -> int:
    """Columns of N per backward chunk, shared by this layer and ``cupy_fused.torch``: the (rows, chunk) block of
    z, and for half inputs the float32 copies of the chunk's weight rows and of its weight gradient (2 x (chunk, k)),
    fit ``workspace_bytes`` (``itemsize`` is the compute dtype's). At least 1, a multiple of 8 when it is 8 or more
    (aligned slices), at most n."""
    per_column = itemsize * (max(rows, 1) + (2 * k if half else 0))
    step = max(1, workspace_bytes // per_column)
    if step >= 8:
        step = step // 8 * 8
    return max(1, min(step, n))


def _guarded(mm):
    """mm(a, b, out) for the edge shapes too: nothing to write for an empty out, zeros when K = 0."""

    def guarded(a, b, out):
        if out.size == 0:
            return
        if a.shape[1] == 0:
            out.fill(0)
            return
        mm(a, b, out)

    return guarded


# ------------------------------------------------------------------------------------------------ argument parsing

def _count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return int(value)


def _dtype(value) -> str:
    if isinstance(value, str) and value == "bfloat16":
        raise ValueError("dtype='bfloat16' has no numpy/cupy dtype; use float16, float32 or float64 "
                         "(or cupy_fused.torch.LinearSigmoidSum for bfloat16)")
    try:
        name = np.dtype(value).name
    except TypeError:
        name = None
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {value!r}")
    return name


def _device(value) -> str:
    """'cpu', or 'cuda:N'; takes "cpu", "cuda" (CuPy's current device), "cuda:N", N, or a torch.device."""
    if type(value).__name__ == "device" and type(value).__module__.split(".")[0] == "torch":
        value = str(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"device must be a non-negative device index, got {value!r}")
        return f"cuda:{int(value)}"
    if isinstance(value, str):
        if value == "cpu":
            return "cpu"
        if value == "cuda":
            import cupy

            return f"cuda:{cupy.cuda.Device().id}"
        if value.startswith("cuda:") and value[5:].isdigit():
            return value
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or a device index, got {value!r}")
    raise TypeError(f"device must be 'cpu', 'cuda', 'cuda:N' or an int, got {type(value).__name__}")


def _seed(value):
    if value is None or isinstance(value, np.random.Generator):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise TypeError(f"seed must be None, a non-negative int or a numpy.random.Generator, got {value!r}")
    return int(value)


def _device_index(device: str) -> int:
    return int(device.split(":")[1])


def _to_device(a, device: str, copy: bool = False):
    """A numpy (cpu) or cupy (cuda:N) array with a's values: a itself when it is already there (unless ``copy``),
    else a new array."""
    library = _arrays.library_of(a)
    if device == "cpu":
        if library == "numpy":
            return a.copy() if copy else a
        return a.get()
    import cupy

    with cupy.cuda.Device(_device_index(device)):
        if library == "cupy":
            if a.device.id == _device_index(device) and not copy:
                return a
            return a.copy()  # cupy.ndarray.copy allocates on the current device: a peer copy across GPUs
        return cupy.asarray(a)  # from the host


def _plain(name: str, value):
    """numpy/cupy arrays as they are; torch tensors as zero-copy numpy (CPU) or cupy (CUDA) views."""
    library = _arrays.library_of(value)
    if library is None:
        raise TypeError(
            f"{name} must be a numpy.ndarray, cupy.ndarray or torch.Tensor, got "
            f"{type(value).__module__}.{type(value).__name__}"
        )
    if library != "torch":
        return value
    tensor = value.detach()
    if not tensor.is_floating_point() or str(tensor.dtype).removeprefix("torch.") not in DTYPES:
        raise TypeError(f"{name} has dtype {tensor.dtype}, which has no numpy/cupy dtype; convert it first")
    if tensor.device.type == "cpu":
        return tensor.numpy()
    import cupy

    return cupy.from_dlpack(tensor)


# ---------------------------------------------------------------------------------------------------------- the layer

class LinearSigmoidSum:
    """``out = sum_j sigmoid(x @ weight.T + bias)[..., j]`` with parameters held as numpy (device="cpu") or cupy
    (device="cuda", "cuda:N" or N) arrays of ``dtype`` (float16, float32, float64).

    ``layer(x)`` -> (..., 1) (``keepdims=False``: (...)); ``layer.grad(x, grad_out)`` -> (grad_x, grad_weight,
    grad_bias or None); ``layer.to(device)``; ``state_dict()`` / ``load_state_dict()`` with nn.Linear's keys.
    ``precision`` and ``method`` go to ``cupy_fused.linear_sigmoid_sum`` for the forward. The GPU backward's GEMMs
    (float32 for float32 and float16 layers) run with a cuBLAS compute type chosen per call: TF32 for "tf32",
    bf16-rounded operands for "bf16", strict fp32 for None, "ieee" and "tf32x3"; the NumPy backend is always
    strict. ``workspace_bytes`` bounds the (B, chunk of N) block of each direction.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        dtype="float32",
        device="cpu",
        seed=None,
        precision=None,
        method: str = "auto",
        workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
    ):
        self.in_features = _count("in_features", in_features)
        self.out_features = _count("out_features", out_features)
        _checks.flag("bias", bias)
        self.dtype = _dtype(dtype)
        self.device = _device(device)
        self.precision = _checks.precision(precision)
        self.method = _checks.method(method)
        self.workspace_bytes = _checks.workspace_bytes(workspace_bytes)
        rng = np.random.default_rng(_seed(seed))
        bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
        weight = rng.uniform(-bound, bound, (self.out_features, self.in_features)).astype(self.dtype)
        self.weight = _to_device(weight, self.device)
        self.bias = None
        if bias:
            self.bias = _to_device(rng.uniform(-bound, bound, self.out_features).astype(self.dtype), self.device)

    # ------------------------------------------------------------------------------------------------- forward

    def __call__(self, x, *, keepdims: bool = True):
        self._check_input("x", x, self.in_features)
        return linear_sigmoid_sum(
            x, self.weight, self.bias, precision=self.precision, method=self.method, keepdims=keepdims,
            workspace_bytes=self.workspace_bytes,
        )

    forward = __call__

    # ------------------------------------------------------------------------------------------------ backward

    def grad(self, x, grad_out):
        """Gradients of ``sum(grad_out * layer(x))``: (grad_x like x, grad_weight (N, K), grad_bias (N,) or None),
        in the layer's library, device and dtype. grad_out: (..., 1) or (...), x's leading shape."""
        op = self._check_input("x", x, self.in_features)
        g_op = self._check_input("grad_out", grad_out, None)
        lead = op.shape[:-1]
        if g_op.shape not in (lead + (1,), lead):
            raise ValueError(
                f"grad_out must have shape {lead + (1,)} or {lead} (x.shape[:-1] == {lead}), got {g_op.shape}"
            )
        if self.device == "cpu":
            return self._grad(np, x, grad_out)
        import cupy

        with cupy.cuda.Device(_device_index(self.device)):
            return self._grad(cupy, x, grad_out)

    def _grad(self, xp, x, grad_out):
        n, k = self.out_features, self.in_features
        rows = math.prod(x.shape[:-1])
        compute = np.float64 if self.dtype == "float64" else np.float32
        half = self.dtype == "float16"
        grad_x = xp.zeros((rows, k), compute)
        grad_w = xp.zeros((n, k), self.dtype)
        grad_b = None if self.bias is None else xp.zeros(n, self.dtype)
        if rows and n:
            x2 = x.reshape(rows, k).astype(compute, copy=False)  # float32 copy for half inputs (B x K, not B x N)
            g4 = 0.25 * grad_out.reshape(rows, 1).astype(compute)
            mm = self._matmul(xp)
            step = backward_chunk(rows, n, k, np.dtype(compute).itemsize, half, self.workspace_bytes)
            block = xp.empty(rows * step, compute)
            partial = xp.empty((rows, k), compute) if n > step else None
            ones = xp.ones((1, rows), compute)
            for start in range(0, n, step):
                stop = min(start + step, n)
                w = self.weight[start:stop].astype(compute, copy=False)
                gz = block[: rows * (stop - start)].reshape(rows, stop - start)
                mm(x2, w, gz)  # z = x @ w.T
                if self.bias is not None:
                    gz += self.bias[start:stop].astype(compute, copy=False)
                # sigmoid'(z) = s (1 - s) = 1 / (4 cosh(z / 2)^2): one buffer, in place, accurate for any z (no
                # cancellation in 1 - s); cosh overflows to inf where the true value underflows, giving 0.
                with np.errstate(over="ignore"):
                    gz *= 0.5
                    xp.cosh(gz, out=gz)
                    xp.multiply(gz, gz, out=gz)
                xp.reciprocal(gz, out=gz)
                gz *= g4  # gz = g * s * (1 - s)
                if start == 0:
                    mm(gz, w.T, grad_x)  # grad_x = gz @ w
                else:
                    mm(gz, w.T, partial)
                    grad_x += partial
                if half:
                    grad_w_chunk = xp.empty((stop - start, k), compute)
                    mm(gz.T, x2.T, grad_w_chunk)
                    grad_w[start:stop] = grad_w_chunk
                else:
                    mm(gz.T, x2.T, grad_w[start:stop])  # grad_w = gz.T @ x
                if grad_b is not None:  # gz.T @ ones, a GEMV: no reduction temporaries of the block's size
                    if half:
                        grad_b_chunk = xp.empty((stop - start, 1), compute)
                        mm(gz.T, ones, grad_b_chunk)
                        grad_b[start:stop] = grad_b_chunk[:, 0]
                    else:
                        mm(gz.T, ones, grad_b[start:stop].reshape(stop - start, 1))
        return grad_x.astype(self.dtype, copy=False).reshape(x.shape), grad_w, grad_b

    def _matmul(self, xp):
        """mm(a, b, out): out (M, N) contiguous, compute dtype = a (M, K) @ b (N, K).T. NumPy: BLAS (strict).
        CuPy: cuBLAS through cupy_fused's gemm with this layer's precision per call (CuPy's global TF32 setting is
        neither read nor changed), on CuPy's current stream."""
        if xp is np:
            return _guarded(lambda a, b, out: np.matmul(a, b.T, out=out))
        import cupy

        from . import _gpu

        # "tf32" and "bf16" as asked; None and "tf32x3" (fp32-accurate in the forward) as strict fp32.
        precision = self.precision if self.precision in ("tf32", "bf16") else "ieee"
        stream = cupy.cuda.get_current_stream()
        return _guarded(lambda a, b, out:
                        _gpu.gemm(_gpu.blas_ready(a), _gpu.blas_ready(b), out, out.dtype.name, precision, stream))

    # ------------------------------------------------------------------------------------------------ plumbing

    def _check_input(self, name: str, value, k):
        op = _arrays.describe(name, value)
        library = "numpy" if self.device == "cpu" else "cupy"
        if op.library != library or op.device != self.device:
            raise TypeError(
                f"{name} must be a {library} array on {self.device} (the layer's device), got a {op.library} array "
                f"on {op.device}; move the layer with layer.to(...) or the data"
            )
        if op.dtype != self.dtype:
            raise TypeError(f"{name} has dtype {op.dtype} but the layer's dtype is {self.dtype}")
        if k is not None and (len(op.shape) < 1 or op.shape[-1] != k):
            raise ValueError(f"{name} must have shape (..., {k}) (in_features == {k}), got {op.shape}")
        return op

    def to(self, device) -> "LinearSigmoidSum":
        """Moves weight and bias to ``device`` ("cpu", "cuda", "cuda:N" or N), in place; returns the layer."""
        device = _device(device)
        self.weight = _to_device(self.weight, device)
        if self.bias is not None:
            self.bias = _to_device(self.bias, device)
        self.device = device
        return self

    def state_dict(self) -> dict:
        """{"weight": (N, K) array, "bias": (N,) array} (no "bias" without one): the layer's own arrays, not copies,
        as nn.Module.state_dict shares its tensors' storage."""
        state = {"weight": self.weight}
        if self.bias is not None:
            state["bias"] = self.bias
        return state

    def load_state_dict(self, state_dict) -> None:
        """Copies "weight" (and "bias") from numpy arrays, cupy arrays or torch tensors (an nn.Linear's
        state_dict loads as it is) onto the layer's device. Keys, shapes and dtypes must match exactly; nothing is
        changed when any of them does not."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a mapping of names to arrays, got {type(state_dict).__name__}")
        expected = ["weight"] + (["bias"] if self.bias is not None else [])
        missing = [key for key in expected if key not in state_dict]
        unexpected = [key for key in state_dict if key not in expected]
        if missing or unexpected:
            parts = ([f"missing keys {missing}"] if missing else []) + (
                [f"unexpected keys {unexpected}"] if unexpected else [])
            raise ValueError(f"state_dict has {' and '.join(parts)}; this layer expects exactly {expected}")
        shapes = {"weight": (self.out_features, self.in_features), "bias": (self.out_features,)}
        loaded = {}
        for key in expected:
            value = _plain(f"state_dict[{key!r}]", state_dict[key])
            if tuple(value.shape) != shapes[key]:
                raise ValueError(f"state_dict[{key!r}] must have shape {shapes[key]}, got {tuple(value.shape)}")
            if value.dtype.name != self.dtype:
                raise TypeError(
                    f"state_dict[{key!r}] has dtype {value.dtype.name} but the layer's dtype is {self.dtype}; "
                    "convert it first"
                )
            loaded[key] = value
        for key, value in loaded.items():
            setattr(self, key, _to_device(value, self.device, copy=True))  # the layer owns its arrays

    def __repr__(self) -> str:
        return (
            f"LinearSigmoidSum(in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, dtype={self.dtype!r}, device={self.device!r})"
        )

