"""cupy_fused.dask: numpy chunks against the float64 reference (ragged chunks, 3-D x, keepdims, many N blocks, half
inputs added across blocks without loss), numpy operands beside dask ones (W stored once in the graph), no task
holding a (B, N) block, every chunking and argument error, the threaded scheduler and a two-process
distributed.LocalCluster; cupy chunks on a GPU (the `gpu` marker)."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
from helpers import linear_sigmoid_sum as reference
from helpers import make_inputs, rel_err

import cupy_fused

da = pytest.importorskip("dask.array")
cfd = pytest.importorskip("cupy_fused.dask")

EPS = {"float64": 1e-13, "float32": 1e-6, "float16": 2e-3}


def chunked(rng, batch, k, n, dtype, x_chunks, w_rows, bias=True):
    """(x, w, b) as numpy arrays of ``dtype`` and as dask arrays: x in x_chunks along its leading axes, w and b in
    w_rows along N; K whole."""
    x, w, b = (None if a is None else a.astype(dtype) for a in make_inputs(rng, batch, k, n, bias))
    lazy = (
        da.from_array(x, chunks=tuple(x_chunks) + (k,)),
        da.from_array(w, chunks=(w_rows, k)),
        None if b is None else da.from_array(b, chunks=(w_rows,)),
    )
    return (x, w, b), lazy


@pytest.mark.parametrize(
    "batch,k,n,x_chunks,w_rows,bias",
    [
        ((12,), 30, 23, (4,), 8, True),  # regular chunks, a ragged last block of W
        ((13,), 30, 23, ((5, 1, 7),), (5, 10, 8), True),  # ragged chunks of x and W
        ((4, 5), 17, 9, (3, 2), 4, True),  # 3-D x, chunked along both leading axes
        ((6,), 7, 100, (6,), 7, False),  # 15 N blocks: partials added over several levels of the tree
        ((6,), 0, 5, (3,), 2, True),  # K = 0: the sum of sigmoid(b)
    ],
)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numpy_chunks_match_float64(rng, batch, k, n, x_chunks, w_rows, bias, dtype):
    (x, w, b), (lx, lw, lb) = chunked(rng, batch, k, n, dtype, x_chunks, w_rows, bias)
    out = cfd.linear_sigmoid_sum(lx, lw, lb)
    assert out.shape == batch + (1,) and out.dtype == dtype and out.chunks == lx.chunks[:-1] + ((1,),)
    assert type(out._meta) is np.ndarray
    result = out.compute(scheduler="sync")
    assert type(result) is np.ndarray and result.dtype == dtype
    assert rel_err(result, reference(x, w, b)) < EPS[dtype]


def test_keepdims_false_and_1d_x(rng):
    (x, w, b), (lx, lw, lb) = chunked(rng, (8,), 10, 12, "float32", x_chunks=(3,), w_rows=5)
    flat = cfd.linear_sigmoid_sum(lx, lw, lb, keepdims=False)
    assert flat.shape == (8,)
    assert rel_err(flat.compute(scheduler="sync"), reference(x, w, b, keepdims=False)) < EPS["float32"]
    one = cfd.linear_sigmoid_sum(lx[0], lw, lb)
    assert one.shape == (1,)
    assert rel_err(one.compute(scheduler="sync"), reference(x[0], w, b)) < EPS["float32"]


def test_half_inputs_lose_nothing_across_n_blocks(rng):
    """40 float16 partials added in float64 and rounded once: about the error of one single-device call (adding
    them in float16 gives several times that)."""
    (x, w, b), (lx, lw, lb) = chunked(rng, (64,), 16, 2000, "float16", x_chunks=(16,), w_rows=50)
    ref = reference(x, w, b)
    single = rel_err(cupy_fused.linear_sigmoid_sum(x, w, b), ref)
    out = cfd.linear_sigmoid_sum(lx, lw, lb).compute(scheduler="sync")
    assert out.dtype == np.float16 and rel_err(out, ref) <= 1.2 * single


def test_numpy_weight_and_bias_with_dask_x(rng):
    (x, w, b), (lx, lw, _) = chunked(rng, (64,), 50, 200, "float32", x_chunks=(8,), w_rows=40)
    out = cfd.linear_sigmoid_sum(lx, w, b)
    graph = pickle.dumps(dict(out.__dask_graph__()))
    assert len(graph) < 1.5 * (w.nbytes + x.nbytes)  # W once, not once for each of the 8 tasks that read it
    assert rel_err(out.compute(scheduler="sync"), reference(x, w, b)) < EPS["float32"]
    split = cfd.linear_sigmoid_sum(lx, lw, b)  # a numpy bias takes weight's row chunks
    assert rel_err(split.compute(scheduler="sync"), reference(x, w, b)) < EPS["float32"]
    whole = cfd.linear_sigmoid_sum(x, w, b)  # all numpy: one block
    assert whole.npartitions == 1 and rel_err(whole.compute(scheduler="sync"), reference(x, w, b)) < EPS["float32"]


def test_no_task_holds_a_b_by_n_block(rng):
    from dask.callbacks import Callback

    _, (lx, lw, lb) = chunked(rng, (40,), 3, 60, "float32", x_chunks=(20,), w_rows=30)
    sizes = []
    with Callback(posttask=lambda key, result, dsk, state, worker_id: sizes.append(np.size(result))):
        cfd.linear_sigmoid_sum(lx, lw, lb).compute(scheduler="sync")
    assert sizes and max(sizes) < 20 * 30  # blocks of x and W hold 60 and 90 numbers, a (20, 30) block of z 600


# case -> (the arguments it changes, given good x, w, b), the error, its message
ERRORS = {
    "x_k_split": (
        lambda x, w, b: {"x": x.rechunk((4, 3))},
        ValueError,
        r"x must hold K \(its last axis\) in one chunk, got chunks \(3, 3\).*x\.rechunk\(\{-1: -1\}\)",
    ),
    "w_k_split": (
        lambda x, w, b: {"weight": w.rechunk((5, 2))},
        ValueError,
        r"weight must hold K .*weight\.rechunk\(\{-1: -1\}\)",
    ),
    "bias_chunks": (
        lambda x, w, b: {"bias": b.rechunk(4)},
        ValueError,
        r"bias must be chunked like weight's rows \(5, 5\), got \(4, 4, 2\).*bias\.rechunk\(weight\.chunks\[0\]\)",
    ),
    "k_mismatch": (
        lambda x, w, b: {"weight": w[:, :5]},
        ValueError,
        r"weight must have shape \(N, K\) with K == x\.shape\[-1\] == 6, got \(10, 5\)",
    ),
    "bias_shape": (
        lambda x, w, b: {"bias": b[:9]},
        ValueError,
        r"bias must have shape \(N,\) with N == weight\.shape\[0\] == 10, got \(9,\)",
    ),
    "0d_x": (lambda x, w, b: {"x": x[0, 0]}, ValueError, r"x must have shape \(\.\.\., K\) with at least 1 dimension"),
    "dtypes": (lambda x, w, b: {"weight": w.astype(np.float64)}, TypeError, "weight has dtype float64 but x has"),
    "int_dtype": (
        lambda x, w, b: {"x": x.astype(np.int64)},
        TypeError,
        r"x must have a floating dtype \(float16, float32, float64\), got int64",
    ),
    "torch": (
        lambda x, w, b: {"weight": pytest.importorskip("torch").zeros(10, 6)},
        TypeError,
        r"weight must be a dask\.array\.Array, numpy\.ndarray or cupy\.ndarray, got torch",
    ),
    "list": (lambda x, w, b: {"x": [[0.0] * 6]}, TypeError, r"x must be a dask\.array\.Array.*got builtins\.list"),
    "precision": (lambda x, w, b: {"precision": "fp8"}, ValueError, "precision must be None or one of"),
    "keepdims": (lambda x, w, b: {"keepdims": 1}, TypeError, "keepdims must be True or False, got 1"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors_name_the_argument_and_the_fix(rng, case):
    change, exc, match = ERRORS[case]
    x = da.from_array(rng.standard_normal((8, 6)).astype(np.float32), chunks=(4, 6))
    w = da.from_array(rng.standard_normal((10, 6)).astype(np.float32), chunks=(5, 6))
    b = da.from_array(rng.standard_normal(10).astype(np.float32), chunks=5)
    with pytest.raises(exc, match=match):
        cfd.linear_sigmoid_sum(**({"x": x, "weight": w, "bias": b} | change(x, w, b)))


def test_threaded_scheduler_gives_the_same_bits(rng):
    (x, w, b), (lx, lw, lb) = chunked(rng, (50,), 20, 64, "float32", x_chunks=(7,), w_rows=9)
    out = cfd.linear_sigmoid_sum(lx, lw, lb)
    threaded = out.compute(scheduler="threads", num_workers=2)
    assert np.array_equal(threaded, out.compute(scheduler="sync"))
    assert rel_err(threaded, reference(x, w, b)) < EPS["float32"]


def test_importing_cupy_fused_imports_no_dask():
    code = "import sys, cupy_fused; print(sorted(m for m in ('dask', 'distributed') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------------ dask.distributed


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        yield client


def test_local_cluster_with_persisted_weight(client, rng):
    (x, w, b), (lx, lw, lb) = chunked(rng, (40,), 24, 50, "float64", x_chunks=(10,), w_rows=13)
    lw, lb = client.persist([lw, lb])  # W's blocks stay on the workers across calls
    first = client.compute(cfd.linear_sigmoid_sum(lx, lw, lb)).result()
    assert rel_err(first, reference(x, w, b)) < EPS["float64"]
    again = client.compute(cfd.linear_sigmoid_sum(lx * 2, lw, lb)).result()
    assert rel_err(again, reference(x * 2, w, b)) < EPS["float64"]
    assert len(client.scheduler_info()["workers"]) == 2


# ------------------------------------------------------------------------------------------------------------- GPU


@pytest.fixture
def cupy_chunked(rng):
    cp = pytest.importorskip("cupy")
    (x, w, b), (lx, lw, lb) = chunked(rng, (33, 3), 40, 70, "float32", x_chunks=(10, 2), w_rows=16)
    return (x, w, b), tuple(a.map_blocks(cp.asarray) for a in (lx, lw, lb))


@pytest.mark.gpu
def test_cupy_chunks_threaded(cupy_chunked):
    import cupy as cp

    (x, w, b), (lx, lw, lb) = cupy_chunked
    out = cfd.linear_sigmoid_sum(lx, lw, lb)
    assert type(out._meta) is cp.ndarray
    result = out.compute(scheduler="threads")
    assert type(result) is cp.ndarray and result.dtype == np.float32
    assert rel_err(result.get(), reference(x, w, b)) < 1e-5
    with pytest.raises(TypeError, match="weight has numpy chunks but x has cupy chunks"):
        cfd.linear_sigmoid_sum(lx, w, b)


@pytest.mark.gpu
def test_cupy_chunks_on_a_local_cluster(client, cupy_chunked):
    import cupy as cp

    (x, w, b), lazy = cupy_chunked
    result = client.compute(cfd.linear_sigmoid_sum(*lazy)).result()
    assert type(result) is cp.ndarray
    assert rel_err(result.get(), reference(x, w, b)) < 1e-5
