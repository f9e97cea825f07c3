"""A user's code calling the public API with the documented types: mypy (tests/test_typing.py) must accept it and
see the types noted by ``assert_type``; the test also runs it (on the CPU), so the types are those that come back."""

from __future__ import annotations

import dask.array as da
import numpy as np
import numpy.typing as npt
import torch
from typing_extensions import assert_type

import cupy_fused
import cupy_fused.dask
import cupy_fused.torch

rng = np.random.default_rng(0)
x = rng.standard_normal((8, 32), dtype=np.float32)
w = rng.uniform(-0.1, 0.1, (16, 32)).astype(np.float32)
b = rng.uniform(-0.1, 0.1, 16).astype(np.float32)

# numpy in, numpy out (of the same dtype)
out = cupy_fused.linear_sigmoid_sum(x, w, b, precision="tf32", method="auto", keepdims=False)
assert_type(out, npt.NDArray[np.float32])
assert isinstance(out, np.ndarray) and out.shape == (8,)
z = cupy_fused.sigmoid_sum(x @ w.T, b, keepdims=True, workspace_bytes=1 << 20)
assert isinstance(z, np.ndarray) and z.shape == (8, 1)

# a plan, run again and explained
p = cupy_fused.plan(x, w, b, precision=None, method="auto", tune=False)
assert_type(p, cupy_fused.Plan)
again = p(x, w, b, stream=None)
text: str = p.explain()
cupy_fused.clear_plans()

# torch tensors: torch out, differentiable through the torch face
xt, wt, bt = (torch.from_numpy(a) for a in (x, w, b))
out_t = cupy_fused.linear_sigmoid_sum(xt, wt, bt)
assert_type(out_t, torch.Tensor)
wt.requires_grad_()
loss = cupy_fused.torch.linear_sigmoid_sum(xt, wt, bt, precision="ieee", save_bytes=0).sum()
loss.backward()
head = cupy_fused.torch.LinearSigmoidSum(32, 16, device="cpu", dtype=torch.float32, method="auto")
assert_type(head.forward(xt), torch.Tensor)  # head(xt) is nn.Module.__call__: Any to a checker
assert head(xt).shape == (8, 1)
assert cupy_fused.torch.shard_rows(16, 0, 2) == slice(0, 8)

# the layer for plain arrays
layer = cupy_fused.LinearSigmoidSum(32, 16, dtype=np.float32, device="cpu", seed=0, precision="tf32x3")
y = layer(x)
assert_type(y, npt.NDArray[np.float32])
grad_x, grad_w, grad_b = layer.grad(x, np.ones_like(y))
assert_type(grad_b, "npt.NDArray[np.float32] | None")
layer.load_state_dict(layer.state_dict())
layer = layer.to("cpu")

# dask arrays, numpy blocks
lazy = cupy_fused.dask.linear_sigmoid_sum(da.from_array(x, chunks=(4, 32)), w, b, precision=None, keepdims=True)
assert_type(lazy, da.Array)
assert lazy.compute().shape == (8, 1)

# what a checker cannot see is refused when the plan is made: one dtype for all operands
try:
    cupy_fused.linear_sigmoid_sum(x, w.astype(np.float64))
    raise AssertionError("float32 x with a float64 weight was accepted")
except TypeError as error:
    message: str = str(error)
assert issubclass(cupy_fused.OutOfDeviceMemory, MemoryError)
