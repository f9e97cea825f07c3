"""Properties over generated inputs (hypothesis), on the NumPy backend and torch CPU tensors, and on the device with
cupy arrays and CUDA tensors (every float32 precision): for any shape (0 and primes included, 1-D to 4-D x), layout
(negative, zero (broadcast), doubled and column-major strides; torch's negative bit), dtype, bias or none and
workspace (small ones force many chunks), the result is the float64 one within the error budget, of the operands'
type, dtype and shape, and the inputs are unchanged."""

import numpy as np
import pytest
from helpers import HOST_TOLERANCE, budget, exact_reference, make_inputs, rel_err
from helpers import linear_sigmoid_sum as ref_lss
from helpers import sigmoid_sum as ref_ss

import cupy_fused

pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

CHEAP = settings(max_examples=60, deadline=None, database=None)  # the file runs in a few seconds on 2 cores

# x's leading dimensions (B = their product <= 64; () is a 1-D x, one row), then K and N
LEAD = st.one_of(
    st.just(()),
    st.tuples(st.integers(0, 64)),
    st.tuples(st.integers(0, 8), st.integers(0, 8)),
    st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(0, 4)),
)
SIZE = st.integers(0, 64)
WORKSPACE = st.one_of(st.integers(1, 4096), st.just(cupy_fused.api.DEFAULT_WORKSPACE_BYTES))
SEED = st.integers(0, 2**32 - 1)
HOST_DTYPE = st.sampled_from(sorted(HOST_TOLERANCE))

# each keeps the values of its operand (broadcast: every slice along the first axis is the first one)
NUMPY_LAYOUTS = {
    "contiguous": lambda a: a,
    "negative strides": lambda a: np.flip(np.flip(a).copy()),
    "doubled strides": lambda a: np.repeat(a, 2, axis=-1)[..., ::2],
    "column-major": np.asfortranarray,
    "broadcast": lambda a: np.broadcast_to(a[:1], a.shape),
}


def arranged(draw, arrays, layouts: dict, convert) -> tuple:
    """arrays (float64; None: no bias) converted, each in a layout drawn from layouts."""
    names = sorted(layouts)
    return tuple(None if a is None else layouts[draw(st.sampled_from(names))](convert(a)) for a in arrays)


@st.composite
def numpy_linear_operands(draw):
    """(x, weight, bias or None) numpy arrays: drawn shapes, dtype, bias and layouts."""
    lead, k, n, bias, dtype = draw(LEAD), draw(SIZE), draw(SIZE), draw(st.booleans()), draw(HOST_DTYPE)
    drawn = make_inputs(np.random.default_rng(draw(SEED)), lead, k, n, bias)
    return arranged(draw, drawn, NUMPY_LAYOUTS, lambda a: a.astype(dtype))


@st.composite
def numpy_sum_operands(draw):
    """(z, bias or None) numpy arrays: drawn shapes, dtype, bias and layouts."""
    lead, n, bias, dtype = draw(LEAD), draw(SIZE), draw(st.booleans()), draw(HOST_DTYPE)
    rng = np.random.default_rng(draw(SEED))
    drawn = (3 * rng.standard_normal(lead + (n,)), rng.standard_normal(n) if bias else None)
    return arranged(draw, drawn, NUMPY_LAYOUTS, lambda a: a.astype(dtype))


def copies(arrays) -> list:
    return [None if a is None else a.copy() for a in arrays]


def unchanged(arrays, before) -> bool:
    return all(a is None or np.array_equal(a, c) for a, c in zip(arrays, before))


@CHEAP
@given(operands=numpy_linear_operands(), workspace=WORKSPACE, keepdims=st.booleans())
def test_numpy_linear_sigmoid_sum(operands, workspace, keepdims):
    x, before = operands[0], copies(operands)
    out = cupy_fused.linear_sigmoid_sum(*operands, keepdims=keepdims, workspace_bytes=workspace)
    assert type(out) is np.ndarray and out.dtype == x.dtype and out.shape == x.shape[:-1] + ((1,) if keepdims else ())
    assert rel_err(out, ref_lss(*operands, keepdims)) <= HOST_TOLERANCE[x.dtype.name]
    assert unchanged(operands, before)


@CHEAP
@given(operands=numpy_sum_operands(), workspace=WORKSPACE)
def test_numpy_sigmoid_sum(operands, workspace):
    z, before = operands[0], copies(operands)
    out = cupy_fused.sigmoid_sum(*operands, workspace_bytes=workspace)
    assert type(out) is np.ndarray and out.dtype == z.dtype and out.shape == z.shape[:-1] + (1,)
    assert rel_err(out, ref_ss(*operands)) <= HOST_TOLERANCE[z.dtype.name]
    assert unchanged(operands, before)


# ----------------------------------------------------------------------------------------------------------- torch

try:
    import torch
except ImportError:
    torch = None
NEEDS_TORCH = pytest.mark.skipif(torch is None, reason="needs torch")

TORCH_DTYPES = ("float16", "bfloat16", "float32", "float64")
TORCH_LAYOUTS = {  # torch has no negative strides; it has a negative bit
    "contiguous": lambda t: t,
    "negative bit": lambda t: torch._neg_view(-t),
    "doubled strides": lambda t: torch.stack([t, t], -1)[..., 0],
    "column-major": lambda t: t.mT.contiguous().mT if t.dim() >= 2 else t,
    "expanded": lambda t: t[:1].expand(t.shape),
}


@st.composite
def torch_operands(draw):
    """(x, weight, bias or None) torch tensors: drawn shapes, dtype, bias and layouts."""
    lead, k, n, bias = draw(LEAD), draw(SIZE), draw(SIZE), draw(st.booleans())
    dtype = getattr(torch, draw(st.sampled_from(TORCH_DTYPES)))
    drawn = make_inputs(np.random.default_rng(draw(SEED)), lead, k, n, bias)
    return arranged(draw, drawn, TORCH_LAYOUTS, lambda a: torch.from_numpy(a).to(dtype))


@NEEDS_TORCH
@CHEAP
@given(operands=torch_operands(), workspace=WORKSPACE)
def test_torch_cpu_tensors(operands, workspace):
    before = [None if t is None else t.clone() for t in operands]
    out = cupy_fused.linear_sigmoid_sum(*operands, workspace_bytes=workspace)
    x = operands[0]
    assert isinstance(out, torch.Tensor) and out.dtype == x.dtype and out.shape == x.shape[:-1] + (1,)
    ref = exact_reference(*operands)  # the exact result for the rounded inputs
    assert rel_err(out.double().numpy(), ref) <= budget(*operands, None, ref)
    assert all(t is None or torch.equal(t, c) for t, c in zip(operands, before))


@NEEDS_TORCH
@CHEAP
@given(operands=torch_operands(), workspace=WORKSPACE, requires_grad=st.booleans())
def test_torch_face_gives_the_plain_result(operands, workspace, requires_grad):
    import cupy_fused.torch

    leaves = [None if t is None else t.detach().requires_grad_(requires_grad) for t in operands]
    out = cupy_fused.torch.linear_sigmoid_sum(*leaves, workspace_bytes=workspace)
    assert out.requires_grad == requires_grad
    assert torch.equal(out.detach(), cupy_fused.linear_sigmoid_sum(*operands, workspace_bytes=workspace))


# ------------------------------------------------------------------------------------------------------ the device

ON_DEVICE = settings(max_examples=50, deadline=None, database=None)
FLOAT32_PRECISIONS = st.sampled_from([None, "ieee", "tf32", "tf32x3", "bf16"])


def cupy_layouts():
    import cupy

    return {  # NUMPY_LAYOUTS on the device
        "contiguous": lambda a: a,
        "negative strides": lambda a: cupy.flip(cupy.flip(a).copy()),
        "doubled strides": lambda a: cupy.repeat(a, 2, axis=-1)[..., ::2],
        "column-major": cupy.asfortranarray,
        "broadcast": lambda a: cupy.broadcast_to(a[:1], a.shape),
    }


@st.composite
def cupy_operands(draw):
    """((x, weight, bias or None) cupy arrays, precision): drawn shapes, dtype, bias, layouts and float32 precision."""
    import cupy

    lead, k, n, bias = draw(LEAD), draw(SIZE), draw(SIZE), draw(st.booleans())
    dtype = draw(st.sampled_from(["float16", "float32", "float64"]))
    drawn = make_inputs(np.random.default_rng(draw(SEED)), lead, k, n, bias)
    operands = arranged(draw, drawn, cupy_layouts(), lambda a: cupy.asarray(a, dtype))
    return operands, draw(FLOAT32_PRECISIONS) if dtype == "float32" else None


@st.composite
def cuda_torch_operands(draw):
    """((x, weight, bias or None) CUDA tensors, precision)."""
    x, w, b = draw(torch_operands())
    precision = draw(FLOAT32_PRECISIONS) if x.dtype == torch.float32 else None
    return tuple(None if t is None else t.cuda() for t in (x, w, b)), precision


@pytest.mark.gpu
@NEEDS_TORCH
@ON_DEVICE
@given(drawn=cupy_operands(), workspace=WORKSPACE)
def test_cupy_arrays_on_the_device(drawn, workspace):
    import cupy

    operands, precision = drawn
    x, before = operands[0], [None if a is None else a.copy() for a in operands]
    out = cupy_fused.linear_sigmoid_sum(*operands, precision=precision, workspace_bytes=workspace)
    assert type(out) is cupy.ndarray and out.dtype == x.dtype and out.shape == x.shape[:-1] + (1,)
    tensors = [None if a is None else torch.from_dlpack(cupy.ascontiguousarray(a)) for a in operands]
    ref = exact_reference(*tensors)
    assert rel_err(cupy.asnumpy(out), ref) <= budget(*tensors, precision, ref)
    assert all(a is None or bool((a == c).all()) for a, c in zip(operands, before))


@pytest.mark.gpu
@NEEDS_TORCH
@ON_DEVICE
@given(drawn=cuda_torch_operands(), workspace=WORKSPACE)
def test_cuda_tensors_on_the_device(drawn, workspace):
    operands, precision = drawn
    before = [None if t is None else t.clone() for t in operands]
    out = cupy_fused.linear_sigmoid_sum(*operands, precision=precision, workspace_bytes=workspace)
    x = operands[0]
    assert isinstance(out, torch.Tensor) and out.is_cuda and out.dtype == x.dtype and out.shape == x.shape[:-1] + (1,)
    ref = exact_reference(*operands)
    assert rel_err(out.double().cpu().numpy(), ref) <= budget(*operands, precision, ref)
    assert all(t is None or torch.equal(t, c) for t, c in zip(operands, before))
