"""Calls the type checker must refuse: each line marked with an error comment (the mypy error code in brackets) is
one mypy must report, with that code (tests/test_typing.py), and nothing else here may be reported. Never run."""

from __future__ import annotations

import numpy as np
import torch

import cupy_fused
import cupy_fused.dask
import cupy_fused.torch

x = np.zeros((8, 32), np.float32)
w = np.zeros((16, 32), np.float32)

cupy_fused.linear_sigmoid_sum("x", w)  # error: [type-var]
cupy_fused.linear_sigmoid_sum(x, w, precison="tf32")  # error: [call-arg]
cupy_fused.linear_sigmoid_sum(x, w, precision="fp8")  # error: [arg-type]
cupy_fused.linear_sigmoid_sum(x, w, method="triton")  # error: [arg-type]
cupy_fused.linear_sigmoid_sum(x, w, None, "tf32")  # error: [call-arg]
cupy_fused.sigmoid_sum(x, keepdims="yes")  # error: [arg-type]
result: torch.Tensor = cupy_fused.linear_sigmoid_sum(x, w)  # error: [assignment]
cupy_fused.plan(x, w).explain() + 1  # error: [operator]
cupy_fused.LinearSigmoidSum(32, 16, device=[0])  # error: [arg-type]
cupy_fused.torch.linear_sigmoid_sum(x, torch.zeros(16, 32))  # error: [arg-type]
cupy_fused.dask.linear_sigmoid_sum([[1.0]], w)  # error: [arg-type]
