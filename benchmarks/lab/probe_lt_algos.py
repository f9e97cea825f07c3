"""Issue 9: are the backward's cuBLASLt GEMMs at cuBLAS's first heuristic the best cuBLASLt has?

For the GEMMs of the "tf32" backward (grad_x = gz @ W, grad_W = gz.T @ x, as backward.py describes them to
cuBLASLt) at the bench's training shapes, every algorithm cuBLASLt's heuristic offers (up to 32, workspace up to
256 MiB) is timed with CUDA events, beside torch's own TF32 matmul of the same product and the HBM floor.

Also grad_W from gz.T (both operands K-major along the batch): at 4096^3 cuBLAS's grad_W with gz as it is (an
N-major operand) took 0.52 ms against 0.33 for grad_x; predicted 0.33-0.35 from gz.T, in TF32 and strict fp32.

Prediction (session 11): at 128 x 32768^2 grad_W (a 4.3 GB write, reduction 128) runs 2.06 ms against a 1.4 ms
write floor and grad_x (a 4.3 GB read of W) 1.71 against 1.4; another algorithm (split-K for grad_x, a wider
tile for grad_W) may save 0.2-0.4 ms each. At 4096^3 all are compute-bound at ~400 TFLOP/s and nothing is gained.

    PYTHONPATH=$PWD python3 benchmarks/lab/probe_lt_algos.py
"""

import ctypes
import statistics

import cupy
import torch

from cupy_fused.backends.cublas import compute_type
from cupy_fused.backends.cublaslt import _PREF_MAX_WORKSPACE_BYTES, Gemm, _HeuristicResult, library

DEV = 0
SHAPES = [(128, 32768, 32768), (4096, 4096, 4096), (16384, 1024, 4096)]  # the last: one 256 MiB backward chunk
MAX_ALGOS = 32
MAX_WS = 256 * 2**20


def algos(gemm: Gemm) -> list:
    """Every heuristic result for the GEMM's descriptors (a fresh preference with a larger workspace)."""
    lib = library()
    desc, _, _, a, b, d, _ = gemm._args
    pref = ctypes.c_void_p()
    lib.cublasLtMatmulPreferenceCreate(ctypes.byref(pref))
    limit = ctypes.c_uint64(MAX_WS)
    lib.cublasLtMatmulPreferenceSetAttribute(pref, _PREF_MAX_WORKSPACE_BYTES, ctypes.byref(limit), 8)
    results = (_HeuristicResult * MAX_ALGOS)()
    count = ctypes.c_int(0)
    lib.cublasLtMatmulAlgoGetHeuristic(gemm._handle, desc, a, b, d, d, pref, MAX_ALGOS, results, ctypes.byref(count))
    lib.cublasLtMatmulPreferenceDestroy(pref)
    return [results[i] for i in range(count.value) if results[i].state == 0]


def time_ms(fn, reps=15) -> float:
    for _ in range(3):
        fn()
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
    for s, e in events:
        s.record()
        fn()
        e.record()
    torch.cuda.synchronize()
    return statistics.median(s.elapsed_time(e) for s, e in events)


def main():
    compute = compute_type("float32", "tf32")
    stream = torch.cuda.current_stream().cuda_stream
    ws = torch.empty(MAX_WS, dtype=torch.uint8, device="cuda")
    summary = []
    for B, K, N in SHAPES:
        x = torch.randn(B, K, device="cuda")
        w = torch.randn(N, K, device="cuda")
        gz = torch.randn(B, N, device="cuda")
        gzt = gz.T.contiguous()
        gx = torch.empty(B, K, device="cuda")
        gw = torch.empty(N, K, device="cuda")
        gemms = {
            # grad_x (B x K) = gz (B x N) . W (N x K)
            "grad_x": (Gemm(K, B, N, "float32", "float32", compute, False, False, K, N, K, DEV), w, gz, gx),
            # grad_W (N x K) = gz.T (N x B) . x (B x K)
            "grad_W": (Gemm(K, N, B, "float32", "float32", compute, False, True, K, N, K, DEV), x, gz, gw),
            # the same from gz.T (N x B, row-major): both operands K-major along the batch
            "grad_W from gz.T": (Gemm(K, N, B, "float32", "float32", compute, False, False, K, B, K, DEV), x, gzt, gw),
        }
        strict = compute_type("float32", "ieee")
        strict_gemms = {
            "grad_W ieee": (Gemm(K, N, B, "float32", "float32", strict, False, True, K, N, K, DEV), x, gz, gw),
            "grad_W ieee from gz.T": (
                Gemm(K, N, B, "float32", "float32", strict, False, False, K, B, K, DEV),
                x,
                gzt,
                gw,
            ),
        }
        for name, (gemm, a, b, d) in strict_gemms.items():
            ms = time_ms(lambda: gemm.run(a.data_ptr(), b.data_ptr(), d.data_ptr(), ws.data_ptr(), stream), reps=5)
            print(f"{B} x {K} x {N} {name}: first heuristic {ms:.3f} ms")
            summary.append(f"{B} x {K} x {N} {name}: first {ms:.3f}")
        torch.backends.cuda.matmul.allow_tf32 = True
        peers = {"grad_x": lambda: torch.mm(gz, w, out=gx), "grad_W": lambda: torch.mm(gz.T, x, out=gw)}
        peers["grad_W from gz.T"] = peers["grad_W"]
        for name, (gemm, a, b, d) in gemms.items():
            first = time_ms(lambda: gemm.run(a.data_ptr(), b.data_ptr(), d.data_ptr(), ws.data_ptr(), stream))
            torch_ms = time_ms(peers[name])
            found = algos(gemm)
            print(
                f"{B} x {K} x {N} {name}: first heuristic {first:.3f} ms, torch {torch_ms:.3f} ms, {len(found)} algos"
            )
            best = (first, -1)
            for i, r in enumerate(found):
                algo = r.algo
                desc, one, zero, al, bl, dl, _ = gemm._args
                lib = library()

                def run(algo=algo, r=r):
                    status = lib.cublasLtMatmul(
                        gemm._handle,
                        desc,
                        one,
                        a.data_ptr(),
                        al,
                        b.data_ptr(),
                        bl,
                        zero,
                        d.data_ptr(),
                        dl,
                        d.data_ptr(),
                        dl,
                        ctypes.addressof(algo),
                        ws.data_ptr(),
                        r.workspaceSize,
                        stream,
                    )
                    assert status == 0, status

                ms = time_ms(run)
                print(f"  algo {i:2d}: {ms:.3f} ms, ws {r.workspaceSize / 2**20:7.1f} MiB, waves {r.wavesCount:.2f}")
                best = min(best, (ms, i))
            summary.append(
                f"{B} x {K} x {N} {name}: first {first:.3f}, best {best[0]:.3f} (algo {best[1]}), torch {torch_ms:.3f}"
            )
        torch.backends.cuda.matmul.allow_tf32 = False
        x = w = gz = gzt = gx = gw = gemms = strict_gemms = None
        torch.cuda.empty_cache()
    cupy.cuda.runtime.deviceSynchronize()
    print("\nsummary (ms)")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
