"""A catalogue of bad and unusual inputs to every public entry point: cupy_fused.linear_sigmoid_sum, sigmoid_sum,
plan and its Plan, the plain-array LinearSigmoidSum, and cupy_fused.torch's function and module on CPU tensors.

A bad input raises a TypeError or ValueError whose message names the argument, what was expected and what came
(MemoryError, with the size, where the result cannot be allocated); an unusual but legitimate one gives the float64
result in the operands' library and dtype. Either way the inputs are unchanged afterwards and the next good call is
right. (test_validation.py, test_layer.py and test_torch_autograd.py hold the first cases of each kind.)"""

import warnings
from typing import NamedTuple

import numpy as np
import pytest
from helpers import GPU_EPS, HOST_TOLERANCE
from helpers import linear_sigmoid_sum as ref_lss
from helpers import sigmoid_sum as ref_ss

import cupy_fused

torch = pytest.importorskip("torch")
import cupy_fused.torch as cft  # noqa: E402

LSS, SS, PLAN, LAYER = (
    cupy_fused.linear_sigmoid_sum,
    cupy_fused.sigmoid_sum,
    cupy_fused.plan,
    cupy_fused.LinearSigmoidSum,
)
TOLERANCE = {**HOST_TOLERANCE, "bfloat16": GPU_EPS["bfloat16"]}  # per element, relative
HUGE = 2**58  # rows whose (rows, 1) result no machine can allocate


def _gpu_count() -> int:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount()
    except Exception:  # noqa: BLE001 - no driver, no device
        return 0


NO_GPU = pytest.mark.skipif(_gpu_count() > 0, reason="a GPU is here: device='cuda' is legitimate")


class Inputs(NamedTuple):
    """Good operands, x (4, 6), weight (5, 6), bias (5,): float32 numpy arrays and torch tensors of their own."""

    x: np.ndarray
    w: np.ndarray
    b: np.ndarray
    tx: torch.Tensor
    tw: torch.Tensor
    tb: torch.Tensor


@pytest.fixture
def good(rng):
    arrays = [rng.standard_normal(shape).astype(np.float32) for shape in ((4, 6), (5, 6), (5,))]
    return Inputs(*arrays, *(torch.from_numpy(a.copy()) for a in arrays))


class Call(NamedTuple):
    fn: object
    args: tuple
    kwargs: dict
    expected: object = None  # float64 result of a legitimate call


def call(fn, *args, **kwargs) -> Call:
    return Call(fn, args, kwargs)


def float64(a):
    if isinstance(a, torch.Tensor):
        return a.detach().resolve_neg().double().numpy()
    return np.asarray(a, np.float64)


def linear(fn, *operands, **kwargs) -> Call:
    """A legitimate call of fn(x, weight, bias=None, **kwargs), expected to give the float64 result."""
    arrays = (list(operands) + [None])[:3]
    expected = ref_lss(*(None if a is None else float64(a) for a in arrays), kwargs.get("keepdims", True))
    return Call(fn, operands, kwargs, expected)


def layer_call(layer, x, **kwargs) -> Call:
    """A legitimate call of a plain-array or torch layer on x."""
    return Call(layer, (x,), kwargs, linear(LSS, x, layer.weight, layer.bias, **kwargs).expected)


def reduction(z, bias=None, **kwargs) -> Call:
    expected = ref_ss(float64(z), None if bias is None else float64(bias), kwargs.get("keepdims", True))
    return Call(SS, (z, bias), kwargs, expected)


def strict_subclass(x):
    """x as an ndarray subclass that refuses every ufunc, as a user's own class might."""

    class Strict(np.ndarray):
        def __array_ufunc__(self, *args, **kwargs):
            raise RuntimeError("Strict arrays take no ufuncs")

    return x.view(Strict)


def unaligned(x):
    """A copy of x at an odd address (numpy's aligned flag is False)."""
    raw = np.empty(x.nbytes + 1, np.uint8)
    view = raw[1:].view(x.dtype).reshape(x.shape)
    view[...] = x
    return view


def read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


def memmap_of(x, folder):
    m = np.memmap(folder / "x.bin", dtype=x.dtype, mode="w+", shape=x.shape)
    m[...] = x
    return m


def dtype_name(a) -> str:
    return str(a.dtype).removeprefix("torch.") if isinstance(a, torch.Tensor) else np.dtype(a.dtype).name


def layer(**kwargs):
    return LAYER(6, 5, seed=0, **kwargs)


def module(**kwargs):
    return cft.LinearSigmoidSum(6, 5, **kwargs)


def nested(t):
    return torch.nested.nested_tensor([t, t[:2]], layout=torch.jagged)


def plan_call(g, *operands, **kwargs) -> Call:
    """Running a plan made for (g.x, g.w, g.b) on other operands."""
    return call(PLAN(g.x, g.w, g.b), *operands, **kwargs)


# ------------------------------------------------------------------------------------------------------ bad inputs

# (id, the call, exception, message pattern)
BAD = [
    # non-arrays
    ("x tuple", lambda g: call(LSS, tuple(g.x), g.w), TypeError, r"x must be a numpy.ndarray, .* got builtins.tuple"),
    ("x numpy scalar", lambda g: call(LSS, g.x[0, 0], g.w), TypeError, r"x must be .* got numpy.float32"),
    ("weight None", lambda g: call(LSS, g.x, None), TypeError, r"weight must be .* got builtins.NoneType"),
    ("bias numpy scalar", lambda g: call(LSS, g.x, g.w, g.b[0]), TypeError, r"bias must be .* got numpy.float32"),
    ("z list", lambda g: call(SS, g.x.tolist()), TypeError, r"z must be .* got builtins.list"),
    ("masked x", lambda g: call(LSS, np.ma.masked_less(g.x, 0), g.w), TypeError, r"x is a numpy masked array"),
    # shapes
    (
        "weight 1-D",
        lambda g: call(LSS, g.x, g.w[0]),
        ValueError,
        r"weight must have shape \(N, K\) with K == x.shape\[-1\] == 6, got \(6,\)",
    ),
    ("weight 3-D", lambda g: call(LSS, g.x, g.w[None]), ValueError, r"weight must have shape .*got \(1, 5, 6\)"),
    ("weight (K, N)", lambda g: call(LSS, g.x, g.w.T), ValueError, r"weight must have shape .*== 6, got \(6, 5\)"),
    ("bias 0-d", lambda g: call(LSS, g.x, g.w, g.b[0, ...]), ValueError, r"bias must have shape \(N,\) .*got \(\)"),
    (
        "bias (N, 1)",
        lambda g: call(LSS, g.x, g.w, g.b[:, None]),
        ValueError,
        r"bias must have shape \(N,\) with N == weight.shape\[0\] == 5, got \(5, 1\)",
    ),
    (
        "bias too long",
        lambda g: call(LSS, g.x, g.w, np.concatenate([g.b, g.b[:1]])),
        ValueError,
        r"bias must .*got \(6,\)",
    ),
    ("torch 0-d x", lambda g: call(LSS, g.tx[0, 0], g.tw), ValueError, r"x must have shape \(..., K\) .*0-d"),
    ("torch 0-d z", lambda g: call(SS, g.tx[0, 0]), ValueError, r"z must have shape \(..., N\) .*0-d"),
    (
        "sigmoid_sum 2-D bias",
        lambda g: call(SS, g.x, g.x[:1]),
        ValueError,
        r"bias must have shape \(N,\) with N == z.shape\[-1\] == 6, got \(1, 6\)",
    ),
    # dtypes
    ("x uint8", lambda g: call(LSS, g.x.astype(np.uint8), g.w), TypeError, "x must have a floating dtype .*got uint8"),
    ("x object", lambda g: call(LSS, g.x.astype(object), g.w), TypeError, "x must have a floating dtype .*got object"),
    ("x str", lambda g: call(LSS, g.x.astype(str), g.w), TypeError, "x must have a floating dtype .*got str"),
    (
        "x datetime64",
        lambda g: call(LSS, g.x.astype("M8[s]"), g.w),
        TypeError,
        r"x must have a floating dtype .*got datetime64\[s\]",
    ),
    (
        "x structured",
        lambda g: call(LSS, g.x.view([("a", np.float32)]), g.w),
        TypeError,
        "x must have a floating dtype .*got void",
    ),
    (
        "x long double",
        lambda g: call(LSS, g.x.astype(np.longdouble), g.w.astype(np.longdouble)),
        TypeError,
        f"x must have a floating dtype .*got {np.dtype(np.longdouble).name}",
    ),
    (
        "weight complex128",
        lambda g: call(LSS, g.x, g.w.astype(np.complex128)),
        TypeError,
        "weight must have a floating dtype .*got complex128",
    ),
    ("bias bool", lambda g: call(LSS, g.x, g.w, g.b > 0), TypeError, "bias must have a floating dtype .*got bool"),
    (
        "x float64, weight float32",
        lambda g: call(LSS, g.x.astype(np.float64), g.w),
        TypeError,
        "weight has dtype float32 but x has dtype float64; all arrays must share one dtype",
    ),
    (
        "z float32, bias float64",
        lambda g: call(SS, g.x, g.x[0].astype(np.float64)),
        TypeError,
        "bias has dtype float64 but z has dtype float32",
    ),
    (
        "z complex64",
        lambda g: call(SS, g.x.astype(np.complex64)),
        TypeError,
        "z must have a floating dtype .*complex64",
    ),
    ("torch bool x", lambda g: call(LSS, g.tx > 0, g.tw > 0), TypeError, "x must have a floating dtype .*got bool"),
    (
        "torch float8 x",
        lambda g: call(LSS, g.tx.to(torch.float8_e4m3fn), g.tw.to(torch.float8_e4m3fn)),
        TypeError,
        "x must have a floating dtype .*got float8_e4m3fn",
    ),
    (
        "torch complex weight",
        lambda g: call(LSS, g.tx, g.tw.to(torch.complex64)),
        TypeError,
        "weight must have a floating dtype .*got complex64",
    ),
    (
        "torch bfloat16 x, float16 weight",
        lambda g: call(LSS, g.tx.bfloat16(), g.tw.half()),
        TypeError,
        "weight has dtype float16 but x has dtype bfloat16",
    ),
    # libraries, layouts and devices
    (
        "torch x, numpy weight",
        lambda g: call(LSS, g.tx, g.w),
        TypeError,
        "weight is a numpy array but x is a torch array; pass all arrays from one library",
    ),
    ("numpy x, torch bias", lambda g: call(LSS, g.x, g.w, g.tb), TypeError, "bias is a torch array but x is a numpy"),
    ("torch z, numpy bias", lambda g: call(SS, g.tx, g.x[0]), TypeError, "bias is a numpy array but z is a torch"),
    (
        "sparse COO x",
        lambda g: call(LSS, g.tx.to_sparse(), g.tw),
        TypeError,
        r"x is a torch.sparse_coo torch tensor; only dense \(strided\) tensors are supported: pass x.to_dense\(\)",
    ),
    (
        "sparse CSR weight",
        lambda g: call(LSS, g.tx, g.tw.to_sparse_csr()),
        TypeError,
        "weight is a torch.sparse_csr torch tensor",
    ),
    (
        "nested x",
        lambda g: call(LSS, nested(g.tx), g.tw),
        TypeError,
        r"x is a nested torch tensor; only dense \(strided\) tensors are supported: pass its tensors \(x.unbind\(\)\)",
    ),
    ("meta x", lambda g: call(LSS, g.tx.to("meta"), g.tw.to("meta")), ValueError, "x must be on the CPU or a CUDA"),
    ("huge broadcast x", lambda g: call(LSS, np.broadcast_to(g.x[0], (HUGE, 6)), g.w), MemoryError, "1.00 EiB"),
    # options
    ("precision upper case", lambda g: call(LSS, g.x, g.w, precision="IEEE"), ValueError, r"precision .*got 'IEEE'"),
    ("precision bytes", lambda g: call(LSS, g.x, g.w, precision=b"tf32"), ValueError, r"precision .*got b'tf32'"),
    ("precision int", lambda g: call(LSS, g.tx, g.tw, precision=32), ValueError, r"precision must .*got 32$"),
    ("method None", lambda g: call(LSS, g.x, g.w, method=None), ValueError, r"method must be one of .*got None"),
    ("method cublas on host", lambda g: call(LSS, g.x, g.w, method="cublas"), ValueError, "method='cublas' needs GPU"),
    ("keepdims None", lambda g: call(LSS, g.x, g.w, keepdims=None), TypeError, "keepdims must be True or False, got"),
    ("keepdims numpy bool", lambda g: call(SS, g.x, keepdims=np.True_), TypeError, "keepdims must be True or False"),
    ("keepdims 'no'", lambda g: call(SS, g.tx, keepdims="no"), TypeError, "keepdims must be True or False, got 'no'"),
    ("workspace -1", lambda g: call(LSS, g.x, g.w, workspace_bytes=-1), ValueError, "workspace_bytes must .*got -1"),
    ("workspace True", lambda g: call(LSS, g.x, g.w, workspace_bytes=True), ValueError, "workspace_bytes .*got True"),
    ("workspace 1.5", lambda g: call(SS, g.x, workspace_bytes=1.5), ValueError, r"workspace_bytes .*got 1.5"),
    ("workspace '64'", lambda g: call(LSS, g.x, g.w, workspace_bytes="64"), ValueError, "workspace_bytes .*got '64'"),
    (
        "workspace numpy float",
        lambda g: call(LSS, g.x, g.w, workspace_bytes=np.float64(64)),
        ValueError,
        r"workspace_bytes must be a positive int \(bytes\), got np.float64\(64.0\)",
    ),
    ("stream on CPU tensors", lambda g: call(LSS, g.tx, g.tw, stream=0), TypeError, "stream applies to GPU arrays"),
    ("sigmoid_sum precision", lambda g: call(SS, g.x, precision="ieee"), TypeError, "unexpected keyword .*precision"),
    # plan and Plan
    ("plan tune 'yes'", lambda g: call(PLAN, g.x, g.w, tune="yes"), TypeError, "tune must be None, True or False"),
    ("plan tune 1", lambda g: call(PLAN, g.x, g.w, tune=1), TypeError, "tune must be None, True or False, got 1"),
    ("plan of a list", lambda g: call(PLAN, g.x.tolist(), g.w), TypeError, "x must be a numpy.ndarray"),
    (
        "Plan on another shape",
        lambda g: plan_call(g, g.x[:2], g.w, g.b),
        ValueError,
        r"another signature \(x.shape: \(4, 6\) -> \(2, 6\)\)",
    ),
    (
        "Plan on another dtype",
        lambda g: plan_call(g, *(a.astype(np.float64) for a in (g.x, g.w, g.b))),
        ValueError,
        "x.dtype: float32 -> float64; weight.dtype: float32 -> float64; bias.dtype: float32 -> float64",
    ),
    ("Plan without its bias", lambda g: plan_call(g, g.x, g.w), ValueError, "bias: an array -> None"),
    ("Plan on reversed x", lambda g: plan_call(g, g.x[:, ::-1], g.w, g.b), ValueError, r"x.strides: \(6, 1\) ->"),
    ("Plan on torch x", lambda g: plan_call(g, g.tx, g.w, g.b), ValueError, "x.library: numpy -> torch"),
    ("Plan on a list", lambda g: plan_call(g, g.x.tolist(), g.w, g.b), ValueError, "x must be a numpy.ndarray"),
    ("Plan with 4 operands", lambda g: plan_call(g, g.x, g.w, g.b, g.b), TypeError, "got 4 arguments"),
    ("Plan stream on host", lambda g: plan_call(g, g.x, g.w, g.b, stream=1), TypeError, "stream applies to GPU"),
    # the plain-array layer
    ("layer in_features True", lambda g: call(LAYER, True, 5), ValueError, "in_features must be a non-negative int"),
    ("layer out_features -5", lambda g: call(LAYER, 6, -5), ValueError, "out_features must be .* got -5"),
    ("layer device 'cuda:x'", lambda g: call(LAYER, 6, 5, device="cuda:x"), ValueError, "got 'cuda:x'"),
    pytest.param(
        "layer on cuda, no GPU",
        lambda g: call(LAYER, 6, 5, device="cuda"),
        ValueError,
        "device='cuda' needs CuPy and a CUDA device, but none is usable",
        marks=NO_GPU,
    ),
    pytest.param(
        "layer to torch's cuda, no GPU",
        lambda g: call(layer().to, torch.device("cuda", 0)),
        ValueError,
        r"device=device\(type='cuda', index=0\) needs CuPy and a CUDA device",
        marks=NO_GPU,
    ),
    ("layer method", lambda g: call(LAYER, 6, 5, method="cuda"), ValueError, "method must be one of"),
    ("layer of torch x", lambda g: call(layer(), g.tx), TypeError, "x must be a numpy array on cpu .the layer's dev"),
    ("layer of wrong K", lambda g: call(layer(), g.x[:, :5]), ValueError, r"x must have shape \(..., 6\) .*\(4, 5\)"),
    ("layer of 0-d x", lambda g: call(layer(), g.x[0, 0, ...]), ValueError, r"x must have shape \(..., 6\) .*\(\)"),
    ("layer of float16 x", lambda g: call(layer(), g.x.astype(np.float16)), TypeError, "x has dtype float16 but"),
    ("layer keepdims 1", lambda g: call(layer(), g.x, keepdims=1), TypeError, "keepdims must be True or False"),
    (
        "layer grad_out of another batch",
        lambda g: call(layer().grad, g.x, g.x[:3, :1]),
        ValueError,
        r"grad_out must have shape \(4, 1\) or \(4,\) \(x.shape\[:-1\] == \(4,\)\), got \(3, 1\)",
    ),
    ("layer grad_out list", lambda g: call(layer().grad, g.x, [1.0] * 4), TypeError, "grad_out must be a numpy"),
    (
        "layer state_dict of torch int",
        lambda g: call(layer().load_state_dict, {"weight": g.tw.int(), "bias": g.tb}),
        TypeError,
        r"state_dict\['weight'\] has dtype torch.int32, which has no numpy/cupy dtype",
    ),
    # cupy_fused.torch: the function
    ("torch fn numpy weight", lambda g: call(cft.linear_sigmoid_sum, g.tx, g.w), TypeError, "weight must be a torch"),
    (
        "torch fn list bias",
        lambda g: call(cft.linear_sigmoid_sum, g.tx, g.tw, [0.0]),
        TypeError,
        "bias must be a torch",
    ),
    (
        "torch fn wrong K, training",
        lambda g: call(cft.linear_sigmoid_sum, g.tx[:, :5].detach().requires_grad_(), g.tw),
        ValueError,
        r"weight must have shape \(N, K\) with K == x.shape\[-1\] == 5, got \(5, 6\)",
    ),
    (
        "torch fn 0-d x, training",
        lambda g: call(cft.linear_sigmoid_sum, g.tx[0, 0].detach().requires_grad_(), g.tw),
        ValueError,
        r"x must have shape \(..., K\) with at least 1 dimension",
    ),
    (
        "torch fn int weight, training",
        lambda g: call(cft.linear_sigmoid_sum, g.tx.detach().requires_grad_(), g.tw.int()),
        TypeError,
        "weight must have a floating dtype .*got int32",
    ),
    (
        "torch fn save_bytes -1, training",
        lambda g: call(cft.linear_sigmoid_sum, g.tx.detach().requires_grad_(), g.tw, save_bytes=-1),
        ValueError,
        r"save_bytes must be None or a non-negative int \(bytes\), got -1",
    ),
    (
        "torch fn save_bytes 'a', inference",
        lambda g: call(cft.linear_sigmoid_sum, g.tx, g.tw, save_bytes="a"),
        ValueError,
        "save_bytes must be None or a non-negative int",
    ),
    (
        "torch fn workspace -1",
        lambda g: call(cft.linear_sigmoid_sum, g.tx, g.tw, workspace_bytes=-1),
        ValueError,
        "workspace_bytes must be a positive int",
    ),
    (
        "torch fn keepdims",
        lambda g: call(cft.linear_sigmoid_sum, g.tx, g.tw, keepdims=False),
        TypeError,
        "unexpected keyword argument 'keepdims'",
    ),
    # cupy_fused.torch: the module
    ("module bias 'no'", lambda g: call(cft.LinearSigmoidSum, 6, 5, bias="no"), TypeError, "bias must be True or Fal"),
    ("module in_features 6.0", lambda g: call(cft.LinearSigmoidSum, 6.0, 5), ValueError, "in_features .*got 6.0"),
    ("module method", lambda g: call(cft.LinearSigmoidSum, 6, 5, method="best"), ValueError, "method must be one of"),
    (
        "module int dtype",
        lambda g: call(cft.LinearSigmoidSum, 6, 5, dtype=torch.int32),
        TypeError,
        "dtype must be a floating dtype",
    ),
    (
        "module save_bytes -1",
        lambda g: call(cft.LinearSigmoidSum, 6, 5, save_bytes=-1),
        ValueError,
        "save_bytes must be None or a non-negative int",
    ),
    (
        "module of wrong K",
        lambda g: call(module(), g.tx[:, :5]),
        ValueError,
        r"x must have shape \(..., 6\) .*\(4, 5\)",
    ),
    ("module of 0-d x", lambda g: call(module(), g.tx[0, 0]), ValueError, r"x must have shape \(..., 6\) .*got \(\)"),
    ("module of float64 x", lambda g: call(module(), g.tx.double()), TypeError, "has dtype float32 but x has dtype fl"),
    ("module of int x", lambda g: call(module(), g.tx.int()), TypeError, "x must have a floating dtype .*got int32"),
    (
        "module of numpy x",
        lambda g: call(module(), g.x),
        TypeError,
        "x must be a torch.Tensor, got numpy.ndarray",
    ),
]


def as_param(case):
    """A catalogue row as a pytest.param whose id is the row's name (rows with marks are written as params)."""
    values, marks = (case.values, case.marks) if hasattr(case, "marks") else (case, ())
    return pytest.param(*values[1:], id=values[0], marks=marks)


def _checkable(a) -> bool:
    """Arrays whose values can be copied and compared: dense host data of at most 1 MiB (a huge broadcast view is
    checked through its base, one of the good inputs)."""
    if isinstance(a, torch.Tensor):
        return a.layout == torch.strided and not a.is_nested and a.is_cpu and a.numel() * a.element_size() <= 2**20
    return isinstance(a, np.ndarray) and a.nbytes <= 2**20


def snapshot(g: Inputs, args) -> list:
    """(array, copy) for g's arrays and the array arguments of a call."""
    arrays = [a for a in list(g) + list(args) if _checkable(a)]
    return [(a, a.clone() if isinstance(a, torch.Tensor) else a.copy()) for a in arrays]


def assert_unchanged(saved) -> None:
    for a, before in saved:
        if isinstance(a, torch.Tensor):
            torch.testing.assert_close(a, before, rtol=0, atol=0, equal_nan=True)
        else:
            np.testing.assert_array_equal(np.asarray(a), np.asarray(before))  # as ndarrays: subclasses' ufuncs aside


def assert_good_calls_right(g: Inputs) -> None:
    expected = ref_lss(g.x, g.w, g.b)
    for out in (LSS(g.x, g.w, g.b), LSS(g.tx, g.tw, g.tb), cft.linear_sigmoid_sum(g.tx, g.tw, g.tb)):
        np.testing.assert_allclose(float64(out), expected, rtol=TOLERANCE["float32"])


@pytest.mark.parametrize("build,error,message", [as_param(case) for case in BAD])
def test_bad_input_is_refused_clearly(good, build, error, message):
    fn, args, kwargs, _ = build(good)
    saved = snapshot(good, args)
    with pytest.raises(error, match=message):
        fn(*args, **kwargs)
    assert_unchanged(saved)
    assert_good_calls_right(good)


def test_the_catalogue_is_large_and_its_names_unique():
    ids = [as_param(case).id for case in BAD + LEGIT]
    assert len(BAD) >= 60 and len(ids) == len(set(ids))


# ------------------------------------------------------------------------------------------- unusual, legitimate

# (id, the call with its float64 result)
LEGIT = [
    # layouts and array types
    ("negative strides", lambda g, tmp: linear(LSS, g.x[::-1, ::-1], g.w[:, ::-1], g.b[::-1])),
    ("broadcast x rows", lambda g, tmp: linear(LSS, np.broadcast_to(g.x[0], (7, 6)), g.w, g.b)),
    ("broadcast along K", lambda g, tmp: linear(LSS, np.broadcast_to(g.x[:, :1], (4, 6)), g.w, g.b)),
    ("broadcast bias", lambda g, tmp: linear(LSS, g.x, g.w, np.broadcast_to(g.b[:1], (5,)))),
    ("column-major weight", lambda g, tmp: linear(LSS, g.x, np.asfortranarray(g.w), g.b)),
    ("memmap x", lambda g, tmp: linear(LSS, memmap_of(g.x, tmp), g.w, g.b)),
    ("np.matrix x and weight", lambda g, tmp: linear(LSS, np.asmatrix(g.x), np.asmatrix(g.w), g.b)),
    ("subclass without ufuncs", lambda g, tmp: linear(LSS, *map(strict_subclass, (g.x, g.w, g.b)))),
    ("read-only operands", lambda g, tmp: linear(LSS, *map(read_only, (g.x, g.w, g.b)))),
    ("unaligned x", lambda g, tmp: linear(LSS, unaligned(g.x), g.w, g.b)),
    ("big-endian operands", lambda g, tmp: linear(LSS, *(a.astype(">f4") for a in (g.x, g.w, g.b)))),
    ("big-endian float16 z", lambda g, tmp: reduction(g.x.astype(">f2"), g.x[0].astype(np.float16))),
    # shapes
    ("4-D x", lambda g, tmp: linear(LSS, g.x.reshape(2, 1, 2, 6), g.w, g.b)),
    ("1-D x", lambda g, tmp: linear(LSS, g.x[0], g.w, g.b)),
    ("1-D x, keepdims=False", lambda g, tmp: linear(LSS, g.x[0], g.w, keepdims=False)),
    ("B = 0", lambda g, tmp: linear(LSS, g.x[:0], g.w, g.b)),
    ("B = 0 inside a 3-D x", lambda g, tmp: linear(LSS, g.x[None, :0], g.w)),
    ("K = 0", lambda g, tmp: linear(LSS, g.x[:, :0], g.w[:, :0], g.b)),
    ("N = 0", lambda g, tmp: linear(LSS, g.x, g.w[:0], g.b[:0])),
    ("sigmoid_sum N = 0", lambda g, tmp: reduction(g.x[:, :0])),
    ("sigmoid_sum reversed z, broadcast bias", lambda g, tmp: reduction(g.x[::-1, ::-1], np.broadcast_to(g.b[:1], 6))),
    # values and options
    ("NaN and inf", lambda g, tmp: linear(LSS, np.where(g.x > 1, np.inf, np.where(g.x < -1, np.nan, g.x)), g.w, g.b)),
    ("inf bias", lambda g, tmp: linear(LSS, g.x, g.w, np.where(g.b > 0, np.inf, -np.inf).astype(np.float32))),
    (
        "float16 overflow to inf",
        lambda g, tmp: linear(LSS, np.ones((2, 4), np.float16), np.ones((70000, 4), np.float16)),
    ),
    ("precision on host", lambda g, tmp: linear(LSS, g.x, g.w, g.b, precision="tf32")),
    ("workspace numpy int", lambda g, tmp: linear(LSS, g.x, g.w, g.b, workspace_bytes=np.int64(64))),
    ("workspace 1 byte", lambda g, tmp: linear(LSS, g.x, g.w, g.b, workspace_bytes=1)),
    ("workspace 2**70", lambda g, tmp: reduction(g.x, g.x[0], workspace_bytes=2**70)),
    ("Plan on new operands", lambda g, tmp: linear(PLAN(g.x, g.w, g.b), g.x + 1, g.w, g.b)),
    (
        "layer with numpy ints",
        lambda g, tmp: layer_call(LAYER(np.int64(6), np.uint8(5), workspace_bytes=np.int32(8)), g.x),
    ),
    ("layer of a memmap", lambda g, tmp: layer_call(layer(), memmap_of(g.x, tmp), keepdims=False)),
    # torch tensors
    ("requires_grad in the plain API", lambda g, tmp: linear(LSS, g.tx.detach().requires_grad_(), g.tw, g.tb)),
    ("nn.Parameter weight", lambda g, tmp: linear(LSS, g.tx, torch.nn.Parameter(g.tw), g.tb)),
    ("negative bit", lambda g, tmp: linear(LSS, torch._neg_view(-g.tx), g.tw, torch._neg_view(-g.tb))),
    ("conjugate bit (real)", lambda g, tmp: linear(LSS, g.tx.conj(), g.tw.conj(), g.tb)),
    ("expanded x", lambda g, tmp: linear(LSS, g.tx[:1].expand(9, 6), g.tw, g.tb)),
    ("transposed weight", lambda g, tmp: linear(LSS, g.tx, g.tw.T.contiguous().T, g.tb)),
    ("tensor subclass", lambda g, tmp: linear(LSS, g.tx.as_subclass(type("Mine", (torch.Tensor,), {})), g.tw, g.tb)),
    ("bfloat16", lambda g, tmp: linear(LSS, g.tx.bfloat16(), g.tw.bfloat16(), g.tb.bfloat16())),
    (
        "torch fn NaN, training",
        lambda g, tmp: linear(cft.linear_sigmoid_sum, g.tx.div(0).detach().requires_grad_(), g.tw),
    ),
    (
        "torch fn B = 0, training",
        lambda g, tmp: linear(cft.linear_sigmoid_sum, g.tx[:0].detach().requires_grad_(), g.tw, g.tb),
    ),
    ("torch fn float64", lambda g, tmp: linear(cft.linear_sigmoid_sum, g.tx.double(), g.tw.double(), g.tb.double())),
    ("module with numpy ints", lambda g, tmp: layer_call(cft.LinearSigmoidSum(np.int64(6), 5), g.tx)),
    ("module of a 3-D x", lambda g, tmp: layer_call(module(bias=False), g.tx[None])),
]


def rounded(expected, dtype: str) -> np.ndarray:
    """The float64 result in the output's dtype (inf beyond its range), as float64."""
    return torch.from_numpy(np.asarray(expected, np.float64)).to(getattr(torch, dtype)).double().numpy()


def assert_right(out, expected, operand) -> None:
    """out has operand's library and dtype, and expected's shape and values (NaN where expected has NaN)."""
    dtype = dtype_name(out)
    assert isinstance(out, torch.Tensor) == isinstance(operand, torch.Tensor) and dtype == dtype_name(operand)
    np.testing.assert_allclose(float64(out), rounded(expected, dtype), rtol=TOLERANCE[dtype], atol=0, equal_nan=True)


@pytest.mark.parametrize("build", [as_param(case) for case in LEGIT])
def test_unusual_input_gives_the_float64_result(good, tmp_path, build):
    with np.errstate(invalid="ignore"):  # inf - inf in the float64 reference
        fn, args, kwargs, expected = build(good, tmp_path)
    saved = snapshot(good, args)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # quiet, as torch is, about inf, NaN and overflow
        out = fn(*args, **kwargs)
    assert_right(out, expected, args[0])
    assert_unchanged(saved)
    assert_good_calls_right(good)


def test_nan_and_inf_give_what_torch_gives(good):
    x = good.tx.clone()
    x[0, 0], x[1, 1], x[2] = float("nan"), float("inf"), float("-inf")
    b = good.tb.clone()
    b[0] = float("inf")
    expected = torch.sum(torch.sigmoid(torch.nn.functional.linear(x, good.tw, b)), dim=-1, keepdim=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        outs = LSS(x, good.tw, b), cft.linear_sigmoid_sum(x, good.tw, b), LSS(x, good.tw, b, workspace_bytes=8)
    for out in outs:
        torch.testing.assert_close(out, expected, equal_nan=True)


def test_a_gpu_index_beyond_the_devices_is_refused(monkeypatch):
    cupy = pytest.importorskip("cupy")
    monkeypatch.setattr(cupy.cuda.runtime, "getDeviceCount", lambda: 1)
    with pytest.raises(ValueError, match="device='cuda:3' names cuda:3, but CuPy sees 1 CUDA device"):
        LAYER(6, 5, device="cuda:3")


def test_gradients_of_inf_and_nan_are_quiet_as_in_torch(good):
    x = good.tx.clone()
    x[0, 0], x[1, 1] = float("inf"), float("nan")
    ours, theirs = ([t.clone().requires_grad_() for t in (x, good.tw)] for _ in range(2))
    torch.sum(torch.sigmoid(torch.nn.functional.linear(*theirs)), dim=-1).sum().backward()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cft.linear_sigmoid_sum(*ours).sum().backward()
    for mine, peer in zip(ours, theirs):
        torch.testing.assert_close(mine.grad, peer.grad, equal_nan=True)
