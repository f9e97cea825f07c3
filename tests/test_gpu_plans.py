"""Plans on the GPU: reuse gives the same bits, a warm plan follows the caller's stream (work queued before the call
included), every method and precision can be captured in a CUDA graph (torch and cupy graphs) and replayed with new
inputs, and a plan refuses another signature."""

import pytest
from helpers import budget, cuda_inputs, exact_reference, rel_err

import cupy_fused

pytestmark = pytest.mark.gpu
cp = pytest.importorskip("cupy")
torch = pytest.importorskip("torch")

# (method, precision): every route; batches 5 (small-batch kernel), 257 (tile kernels or cuBLAS)
ROUTES = [
    ("auto", None),
    ("auto", "ieee"),
    ("auto", "tf32"),
    ("auto", "bf16"),
    ("fused", None),
    ("fused", "ieee"),
    ("fused", "tf32"),
    ("fused", "tf32x3"),
    ("fused", "bf16"),
    ("cublas", None),
    ("cublas", "tf32"),
    ("cublas", "bf16"),
]


def test_plan_reuse_gives_the_same_bits(rng):
    x, w, b = cuda_inputs(rng, (300,), 700, 900, torch.float32)
    p = cupy_fused.plan(x, w, b)
    assert torch.equal(p(x, w, b), cupy_fused.linear_sigmoid_sum(x, w, b))
    with pytest.raises(ValueError, match=r"x.shape: \(300, 700\) -> \(299, 700\)"):
        p(x[:299], w, b)
    with pytest.raises(ValueError, match="x.library: torch -> cupy"):
        p(cp.from_dlpack(x), w, b)


@pytest.mark.parametrize("batch", [5, 257])
def test_a_warm_plan_runs_on_a_non_default_stream_after_queued_work(rng, batch):
    x, w, b = cuda_inputs(rng, (batch,), 512, 384, torch.float32)
    p = cupy_fused.plan(x, w, b)
    p(x, w, b)
    fresh = torch.randn_like(x)
    side = torch.cuda.Stream()
    torch.cuda.synchronize()
    with torch.cuda.stream(side):
        torch.cuda._sleep(20_000_000)  # a call on another stream would race with the copy
        x.copy_(fresh)
        out = p(x, w, b)
    side.synchronize()
    ref = exact_reference(fresh, w, b)
    assert rel_err(out.double().cpu().numpy(), ref) <= budget(fresh, w, b, None, ref)


@pytest.mark.parametrize("batch", [5, 257])
@pytest.mark.parametrize("method,precision", ROUTES)
def test_torch_graph_capture_and_replay(rng, batch, method, precision):
    x, w, b = cuda_inputs(rng, (batch,), 300, 500, torch.float32)
    call = lambda: cupy_fused.linear_sigmoid_sum(x, w, b, method=method, precision=precision)  # noqa: E731
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm up on a side stream, as torch's graph docs ask
        call()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = call()
    for _ in range(3):
        x.copy_(torch.randn_like(x))
        graph.replay()
        torch.cuda.synchronize()
        assert torch.equal(out, call())
        ref = exact_reference(x, w, b)
        assert rel_err(out.double().cpu().numpy(), ref) <= budget(x, w, b, precision, ref)


@pytest.mark.parametrize("batch", [5, 257])
@pytest.mark.parametrize("method,precision", ROUTES)
def test_cupy_graph_capture_and_replay(rng, batch, method, precision):
    x, w, b = (cp.from_dlpack(t) for t in cuda_inputs(rng, (batch,), 300, 500, torch.float32))
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        call = lambda: cupy_fused.linear_sigmoid_sum(x, w, b, method=method, precision=precision)  # noqa: E731
        call()
        stream.begin_capture()
        out = call()
        graph = stream.end_capture()
        for _ in range(3):
            x[...] = cp.random.standard_normal(x.shape, dtype=cp.float32)
            graph.launch(stream)
            stream.synchronize()
            assert cp.array_equal(out, call())
            tx, tw, tb = (torch.from_dlpack(a) for a in (x, w, b))
            ref = exact_reference(tx, tw, tb)
            assert rel_err(cp.asnumpy(out).astype("float64"), ref) <= budget(tx, tw, tb, precision, ref)
