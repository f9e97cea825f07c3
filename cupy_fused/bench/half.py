"""The "half" section: bfloat16 and float16 torch tensors (x ~ N(0, 1), W and b uniform in +-1/sqrt(K)) at the sizes
of today's models and the suite's, against torch eager, torch.compile (mode "max-autotune-no-cudagraphs" too with
``max_autotune``) and the plain fused Triton kernel (peers.py), all in the same run.

Each contender's GPU time per call comes from the replay of a CUDA graph of back-to-back calls (CUDA events around
each call where the calls cannot be captured), over copies of the inputs that together exceed twice the L2 cache
where one set would fit in it; beside it the wall time per call of back-to-back calls from Python, synchronized once
at the end, the error against float64 and the floor: the larger of the bytes over the HBM read bandwidth and the
FLOPs over the bf16 or fp16 matmul rate, both measured in the same run.
"""

from __future__ import annotations

import sys

import cupy_fused

from .peers import torch_compiled, torch_model, triton_peer
from .report import Row, progress
from .timing import random_inputs, reference, rel_err

# B x K x N: one token to a prefill's batch through LLM projections (4096 x 14336, 8192 x 28672, 4096 x 11008), the
# suite's shapes, squares, and a small layer
HALF_BF16 = [
    (1, 4096, 4096),
    (1, 8192, 28672),
    (8, 4096, 14336),
    (32, 4096, 14336),
    (128, 4096, 4096),
    (256, 1024, 1024),
    (128, 32768, 32768),
    (512, 4096, 11008),
    (2048, 2048, 2048),
    (4096, 4096, 4096),
    (16384, 256, 16384),
    (16384, 1024, 65536),
]
HALF_FP16 = [(1, 8192, 28672), (32, 4096, 14336), (128, 32768, 32768), (4096, 4096, 4096)]
SHORT = {"bfloat16": "bf16", "float16": "fp16"}  # also the keys of their matmul rates
HALF = [("bfloat16", shape) for shape in HALF_BF16] + [("float16", shape) for shape in HALF_FP16]


def graph_replays(reps: int) -> int:
    """Timed replays of a contender's graph (16 calls or more each): a third of reps, at least 5."""
    return max(5, reps // 3)


def bench_half(torch, timer, cases, reps, rates, hbm, l2, max_autotune=False) -> list[Row]:
    """Each (dtype, (B, K, N)) of cases: the peers, then ours (cupy_fused.linear_sigmoid_sum on the tensors)."""
    triton = triton_peer()
    peers = {}
    for dtype in dict.fromkeys(d for d, _ in cases):  # compiled functions of their own for each dtype
        peers[dtype] = [("torch eager", torch_model()), ("torch.compile", torch_compiled(dynamic=False))]
        if max_autotune:
            peers[dtype].append(("max-autotune", torch_compiled(mode="max-autotune-no-cudagraphs", dynamic=False)))
        if triton is not None:
            peers[dtype].append(("triton", triton))
    rows = []
    with progress("half", sum(2 + len(peers[d]) for d, _ in cases)) as step:  # the reference, the peers, ours
        for dtype, (B, K, N) in cases:
            label = f"{B} x {K} x {N} {SHORT[dtype]}"
            step(f"{label}: float64 reference")
            in_bytes = getattr(torch, dtype).itemsize * (B * K + N * K + N + B)
            n_inputs = min(64, 1 + int(2 * l2 // in_bytes))  # more than twice L2 in all (but for tiny --shape ones)
            sets = [random_inputs(torch, B, K, N, getattr(torch, dtype)) for _ in range(n_inputs)]
            ref = reference(torch, *sets[0]).cpu().numpy()
            flops = 2 * B * K * N
            floor = max((in_bytes / hbm / 1e6, "HBM"), (flops / (rates[SHORT[dtype]] * 1e9), "matmul"))  # ms, name
            peer_ms, peer_loop_us = {}, {}
            for name, f in [*peers[dtype], ("ours", cupy_fused.linear_sigmoid_sum)]:
                step(f"{label}: {name}")
                fn = lambda i, f=f, s=sets: f(*s[i])
                out = fn(0).float().cpu().numpy()
                try:
                    ms, timing = timer.replay_ms(fn, n_inputs, replays=graph_replays(reps)), "graph"
                except Exception as exc:  # noqa: BLE001 - whatever stops the capture: CUDA events instead
                    print(f"half: {label}: {name} not captured in a CUDA graph ({exc}); CUDA events", file=sys.stderr)
                    ms, timing = timer(fn, n_inputs, reps=reps), "events"
                wall_us = timer.loop_us(fn, n_inputs)[1]
                if name != "ours":
                    peer_ms[name], peer_loop_us[name] = ms, wall_us
                err, loop = rel_err(out, ref), {"peer_loop_us": peer_loop_us, "host_us": wall_us}
                rows.append(Row.timed(label, name, ms, flops, in_bytes, err, peer_ms, *floor, timing=timing, **loop))
            del sets
            torch.cuda.empty_cache()
    return rows
