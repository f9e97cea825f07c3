"""Failure paths and global state on the device: running out of memory is a clear error that leaves the allocators
where they were; a CUDA error inside a kernel surfaces as an exception, not a hang; the default path gives identical
bits over 100 runs and across streams; calls from several threads change no process-wide setting."""

import gc
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from helpers import cuda_inputs, exact_reference, in_threads, rel_err

import cupy_fused
import cupy_fused.torch as cft

pytestmark = pytest.mark.gpu
cp = pytest.importorskip("cupy")
torch = pytest.importorskip("torch")

# x (4096, 1) and W (5 Mi, 1) take 20 MiB; their (4096, N) product, or sigmoid'(z) saved for backward, 80 GiB
# (the forward computes it in blocks of at most 64 MiB)
HUGE = (4096, 1, 5 * 2**20)


def host(a) -> np.ndarray:
    return a.double().cpu().numpy() if isinstance(a, torch.Tensor) else cp.asnumpy(a)


def _memory_in_use() -> tuple[int, int]:
    torch.cuda.synchronize()
    return torch.cuda.memory_allocated(), cp.get_default_memory_pool().used_bytes()


@pytest.mark.parametrize("library", ["torch", "cupy"])
def test_out_of_memory_is_a_clear_error_and_leaves_nothing_behind(library):
    rows, k, n = HUGE
    gen = torch.Generator("cuda").manual_seed(0)
    x, w = torch.rand(rows, k, device="cuda", generator=gen), torch.rand(n, k, device="cuda", generator=gen) - 0.5
    if library == "cupy":
        x, w = cp.from_dlpack(x), cp.from_dlpack(w)
    chunked = cupy_fused.linear_sigmoid_sum(x, w, method="cublas")  # blocks of z of 64 MiB in the workspace
    torch.cuda.synchronize()
    gc.collect()  # tensors of earlier tests held in reference cycles go back before the filler takes the rest
    torch.cuda.empty_cache()
    cp.get_default_memory_pool().free_all_blocks()
    filler = torch.empty(torch.cuda.mem_get_info()[0] - 16 * 2**20, dtype=torch.uint8, device="cuda")
    try:
        before = _memory_in_use()
        with pytest.raises(
            cupy_fused.OutOfDeviceMemory,
            match=r"out of device memory on cuda:0: linear_sigmoid_sum needs [\d.]+ MiB \(output 0.02 MiB, workspace "
            r"[\d.]+ MiB\) beyond its inputs, and [\d.]+ [MG]iB of [\d.]+ GiB are free; pass a smaller workspace_bytes",
        ):
            cupy_fused.linear_sigmoid_sum(x, w, method="cublas")
        assert _memory_in_use() == before
    finally:
        del filler
        torch.cuda.empty_cache()  # give the filler back to the device, not to torch's cache
    again = cupy_fused.linear_sigmoid_sum(x, w, method="cublas", workspace_bytes=2**24)  # blocks of 1024 x 4096
    assert rel_err(host(again), host(chunked)) < 1e-6


def test_out_of_memory_in_training_names_what_was_saved():
    rows, k, n = HUGE
    x = torch.rand(rows, k, device="cuda", requires_grad=True)
    w = torch.rand(n, k, device="cuda") - 0.5
    before = _memory_in_use()
    with pytest.raises(cupy_fused.OutOfDeviceMemory, match=r"sigmoid'\(z\) saved for backward 80.\d\d GiB"):
        cft.linear_sigmoid_sum(x, w, save_bytes=2**40)
    assert _memory_in_use() == before
    cft.linear_sigmoid_sum(x, w).sum().backward()  # the default budget recomputes z in the backward
    assert x.grad.shape == x.shape and torch.isfinite(x.grad).all()


# A plan of each route run on an x at an address no allocation owns: the fault must come back as an exception.
FAULT = textwrap.dedent(
    """
    import os, sys
    import cupy as cp, cupy_fused
    rows, k, n, method = {shape}, "{method}"
    x, w = cp.ones((rows, k), cp.float32), cp.ones((n, k), cp.float32)
    plan = cupy_fused.plan(x, w, method=method)
    print(plan.explain().splitlines()[2], flush=True)
    nowhere = cp.cuda.MemoryPointer(cp.cuda.UnownedMemory(0xDEAD00000, x.nbytes, None, 0), 0)
    try:
        plan(cp.ndarray(x.shape, x.dtype, nowhere), w)
        cp.cuda.Device().synchronize()
        print("no error", flush=True)
    except Exception as exc:
        print("raised", type(exc).__name__, exc, flush=True)
    os._exit(0)  # the context is gone: skip the teardown
    """
)


@pytest.mark.parametrize(
    "shape,method,kernel",
    [
        ((8, 256, 512), "auto", "small_batch"),
        ((512, 512, 512), "fused", "fused::"),
        ((512, 512, 512), "cublas", "cublas"),
    ],
)
def test_a_fault_inside_a_kernel_surfaces_as_an_exception(shape, method, kernel):
    script = FAULT.format(shape=", ".join(map(str, shape)), method=method)
    env = dict(os.environ, CUPY_FUSED_TUNE="0")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert kernel in done.stdout, done.stdout + done.stderr
    assert "raised CUDA" in done.stdout and ("IllegalAddress" in done.stdout or "illegal" in done.stdout.lower()), (
        done.stdout + done.stderr
    )


# --------------------------------------------------------------------------------------------------- determinism


@pytest.mark.parametrize(
    "batch,k,n,dtype",
    [
        ((1,), 4096, 4096, "float32"),  # small-batch kernel, split over the SMs
        ((16,), 1024, 11008, "float32"),
        ((128,), 4096, 4096, "float32"),  # tensor-core tiles, split-K
        ((4096,), 1024, 1024, "float32"),
        ((64,), 2048, 3000, "bfloat16"),
    ],
)
def test_the_default_path_gives_identical_bits_over_100_runs_and_across_streams(rng, batch, k, n, dtype):
    x, w, b = cuda_inputs(rng, batch, k, n, getattr(torch, dtype))
    first = cupy_fused.linear_sigmoid_sum(x, w, b)
    outs = [cupy_fused.linear_sigmoid_sum(x, w, b) for _ in range(100)]
    streams = [torch.cuda.Stream() for _ in range(3)]
    for stream in streams:  # the streams run side by side
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            outs += [cupy_fused.linear_sigmoid_sum(x, w, b) for _ in range(10)]
    torch.cuda.synchronize()
    assert len(outs) == 130 and all(torch.equal(out, first) for out in outs)
    xc, wc, bc = (cp.from_dlpack(t) for t in (x, w, b))
    with cp.cuda.Stream(non_blocking=True):
        assert torch.equal(torch.from_dlpack(cupy_fused.linear_sigmoid_sum(xc, wc, bc)), first)


def test_gradients_are_identical_over_100_runs(rng):
    x, w, b = (t.requires_grad_() for t in cuda_inputs(rng, (256,), 1024, 1500, torch.float32))
    runs = []
    for _ in range(100):
        for t in (x, w, b):
            t.grad = None
        cft.linear_sigmoid_sum(x, w, b).sum().backward()
        runs.append([t.grad.clone() for t in (x, w, b)])
    assert all(torch.equal(a, f) for run in runs for a, f in zip(run, runs[0]))


# ---------------------------------------------------------------------------------------------- global settings


def _settings() -> dict:
    """Every process-wide (and thread-visible) setting a call could be tempted to touch."""
    from cupy_backends.cuda.libs import cublas

    cuda = torch.backends.cuda.matmul
    return {
        "torch matmul": (cuda.allow_tf32, getattr(cuda, "fp32_precision", None), torch.get_float32_matmul_precision()),
        "torch reduced": (cuda.allow_fp16_reduced_precision_reduction, cuda.allow_bf16_reduced_precision_reduction),
        "cudnn": (torch.backends.cudnn.allow_tf32, torch.backends.cudnn.deterministic),
        "torch defaults": (torch.get_default_dtype(), torch.are_deterministic_algorithms_enabled()),
        "torch device and stream": (torch.cuda.current_device(), torch.cuda.current_stream().cuda_stream),
        "cupy device and stream": (cp.cuda.runtime.getDevice(), cp.cuda.get_current_stream().ptr),
        "cupy cublas math": cublas.getMathMode(cp.cuda.device.get_cublas_handle()),
        "numpy errors": np.geterr(),
    }


def test_calls_from_threads_change_no_setting(rng):
    x, w, b = cuda_inputs(rng, (64,), 1024, 1000, torch.float32)
    before = _settings()
    seen = []

    def work():
        mine = _settings()
        for precision in (None, "ieee", "tf32", "bf16"):
            leaves = [t.detach().clone().requires_grad_() for t in (x, w, b)]
            cft.linear_sigmoid_sum(*leaves, precision=precision).sum().backward()
            cupy_fused.linear_sigmoid_sum(*(cp.from_dlpack(t) for t in (x, w, b)), precision=precision)
        torch.cuda.synchronize()
        seen.append(_settings() == mine)

    assert in_threads(work) == [] and seen == [True] * 4
    assert _settings() == before
    assert rel_err(host(cupy_fused.linear_sigmoid_sum(x, w, b)), exact_reference(x, w, b)) < 1e-5
