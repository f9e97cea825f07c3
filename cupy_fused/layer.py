"""A layer for plain arrays (NumPy on the host, CuPy on a GPU), with gradients and no torch.

``LinearSigmoidSum(in_features, out_features)`` holds ``weight`` (out_features, in_features) and ``bias``
(out_features,) as numpy or cupy arrays, initialized like ``torch.nn.Linear`` (uniform in +-1/sqrt(in_features))
from a seeded generator. ``layer(x)`` is ``cupy_fused.linear_sigmoid_sum(x, layer.weight, layer.bias)``;
``layer.grad(x, grad_out)`` returns (grad_x, grad_weight, grad_bias) through the package's one backward
(cupy_fused/backward.py, shared with the torch face): bounded memory, GEMM precision per call. The state_dict has
nn.Linear's keys ("weight", "bias").

Importing this module imports neither torch nor cupy: cupy is imported when a layer lives on a GPU, torch only to
read a torch tensor handed to ``load_state_dict``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Union, cast

import numpy as np
from numpy.typing import DTypeLike

from . import arrays as _arrays
from . import checks as _checks
from .api import DEFAULT_WORKSPACE_BYTES, ArrayT, Method, Precision, linear_sigmoid_sum
from .backward import grad

if TYPE_CHECKING:
    import torch

#: What ``device`` takes ("cpu", "cuda" for CuPy's current device, "cuda:N", N, or a torch.device).
Device = Union[str, int, "torch.device"]

__all__ = ["LinearSigmoidSum"]

DTYPES = ("float16", "float32", "float64")


# ------------------------------------------------------------------------------------------------ argument parsing


def _dtype(value: DTypeLike) -> str:
    if isinstance(value, str) and value == "bfloat16":
        raise ValueError(
            "dtype='bfloat16' has no numpy/cupy dtype; use float16, float32 or float64 "
            "(or cupy_fused.torch.LinearSigmoidSum for bfloat16)"
        )
    try:
        name: str | None = np.dtype(value).name
    except TypeError:
        name = None
    if name is None or name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {value!r}")
    return name


def _device(value: Device) -> str:
    """'cpu', or 'cuda:N' of a GPU that CuPy sees; takes "cpu", "cuda" (CuPy's current device), "cuda:N", N, or a
    torch.device."""
    name = _device_name(value)
    return name if name == "cpu" else _present_gpu(name, value)


def _device_name(value: object) -> str:
    """'cpu', 'cuda' or 'cuda:N', from any of the forms _device takes."""
    if type(value).__name__ == "device" and type(value).__module__.split(".")[0] == "torch":
        value = str(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"device must be a non-negative device index, got {value!r}")
        return f"cuda:{int(value)}"
    if isinstance(value, str):
        if value in ("cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit()):
            return value
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or a device index, got {value!r}")
    raise TypeError(f"device must be 'cpu', 'cuda', 'cuda:N' or an int, got {type(value).__name__}")


def _present_gpu(name: str, value: object) -> str:
    """'cuda:N' for name ('cuda': CuPy's current device), when CuPy sees that GPU; a ValueError naming value if not."""
    try:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
        index = cupy.cuda.Device().id if name == "cuda" else _device_index(name)
    except Exception as exc:  # noqa: BLE001 - no CuPy, no driver or no device: all mean no GPU to use
        raise ValueError(
            f"device={value!r} needs CuPy and a CUDA device, but none is usable ({type(exc).__name__}: {exc})"
        ) from exc
    if index >= count:
        raise ValueError(f"device={value!r} names cuda:{index}, but CuPy sees {count} CUDA device(s)")
    return f"cuda:{index}"


def _seed(value: object) -> int | np.random.Generator | None:
    if value is None or isinstance(value, np.random.Generator):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise TypeError(f"seed must be None, a non-negative int or a numpy.random.Generator, got {value!r}")
    return int(value)


def _device_index(device: str) -> int:
    return int(device.split(":")[1])


def _library(a: object) -> str | None:
    adapter = _arrays.adapter_for(a)
    return None if adapter is None else adapter.library


def _to_device(a: Any, device: str, copy: bool = False) -> Any:
    """A numpy (cpu) or cupy (cuda:N) array with a's values: a itself when it is already there (unless ``copy``),
    else a new array."""
    library = _library(a)
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


def _plain(name: str, value: Any) -> Any:
    """numpy/cupy arrays as they are; torch tensors as zero-copy numpy (CPU) or cupy (CUDA) views."""
    library = _library(value)
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
    (device="cuda", "cuda:N" or N) arrays, and gradients without torch.

    ``layer(x)`` -> (..., 1) (``keepdims=False``: (...)); ``layer.grad(x, grad_out)`` -> (grad_x, grad_weight,
    grad_bias or None); ``layer.to(device)``; ``state_dict()`` / ``load_state_dict()`` with nn.Linear's keys.
    ``precision`` and ``method`` go to :func:`cupy_fused.linear_sigmoid_sum` for the forward; the backward's GEMM
    precision follows ``precision`` (``cupy_fused.backward``: tf32x3 on our GEMM or strict fp32 for the default and
    "tf32x3", strict fp32 for "ieee", TF32 for "tf32", bf16-rounded operands for "bf16"; the NumPy backend is always
    strict).

    Args:
        in_features: K.
        out_features: N.
        bias: whether the layer has a bias.
        dtype: float16, float32 or float64 (a name or a numpy dtype).
        device: "cpu" (numpy arrays), "cuda" (CuPy's current device), "cuda:N", N, or a torch.device.
        seed: None, a non-negative int or a numpy.random.Generator: the generator of the initial weight and bias
            (uniform in +-1/sqrt(in_features), as nn.Linear's).
        precision: as for :func:`cupy_fused.linear_sigmoid_sum`; also the backward's.
        method: as for :func:`cupy_fused.linear_sigmoid_sum`.
        workspace_bytes: bounds the (B, chunk of N) block of each direction.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        dtype: DTypeLike = "float32",
        device: Device = "cpu",
        seed: int | np.random.Generator | None = None,
        precision: Precision | None = None,
        method: Method = "auto",
        workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
    ) -> None:
        self.in_features = _checks.count("in_features", in_features)
        self.out_features = _checks.count("out_features", out_features)
        _checks.flag("bias", bias)
        self.dtype = _dtype(dtype)
        self.device = _device(device)
        self.precision = _checks.precision(precision)
        self.method = _checks.method(method)
        self.workspace_bytes = _checks.workspace_bytes(workspace_bytes)
        rng = np.random.default_rng(_seed(seed))
        bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
        weight = rng.uniform(-bound, bound, (self.out_features, self.in_features)).astype(self.dtype)
        self.weight: Any = _to_device(weight, self.device)  # numpy or cupy
        self.bias: Any = None
        if bias:
            self.bias = _to_device(rng.uniform(-bound, bound, self.out_features).astype(self.dtype), self.device)

    # ------------------------------------------------------------------------------------------------- forward

    def __call__(self, x: ArrayT, *, keepdims: bool = True) -> ArrayT:
        """(..., in_features) -> (..., 1) (``keepdims=False``: (...)), an array of the layer's library, device and
        dtype; x must be one too."""
        self._check_input("x", x, self.in_features)
        out = linear_sigmoid_sum(
            x,
            self.weight,
            self.bias,
            precision=self.precision,
            method=self.method,
            keepdims=keepdims,
            workspace_bytes=self.workspace_bytes,
        )
        return cast(ArrayT, out)  # weight and bias (typed Any: numpy or cupy) are x's library, as checked

    forward = __call__

    # ------------------------------------------------------------------------------------------------ backward

    def grad(self, x: ArrayT, grad_out: ArrayT) -> tuple[ArrayT, ArrayT, ArrayT | None]:
        """Gradients of ``sum(grad_out * layer(x))``: (grad_x like x, grad_weight (N, K), grad_bias (N,) or None),
        in the layer's library, device and dtype. grad_out: (..., 1) or (...), x's leading shape."""
        self._check_input("x", x, self.in_features)
        self._check_input("grad_out", grad_out, None)
        return grad(x, self.weight, self.bias, grad_out, precision=self.precision, workspace_bytes=self.workspace_bytes)

    # ------------------------------------------------------------------------------------------------ plumbing

    def _check_input(self, name: str, value: object, k: int | None) -> _arrays.Operand:
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

    def to(self, device: Device) -> LinearSigmoidSum:
        """Moves weight and bias to ``device`` ("cpu", "cuda", "cuda:N" or N), in place; returns the layer."""
        device = _device(device)
        self.weight = _to_device(self.weight, device)
        if self.bias is not None:
            self.bias = _to_device(self.bias, device)
        self.device = device
        return self

    def state_dict(self) -> dict[str, Any]:
        """{"weight": (N, K) array, "bias": (N,) array} (no "bias" without one): the layer's own arrays, not copies,
        as nn.Module.state_dict shares its tensors' storage."""
        state = {"weight": self.weight}
        if self.bias is not None:
            state["bias"] = self.bias
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
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
                [f"unexpected keys {unexpected}"] if unexpected else []
            )
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
