"""Peers of ours beside torch eager: torch's op as a fresh function for each torch.compile, and the plain fused
Triton kernel a skilled user writes in ~20 lines.

The Triton kernel: one ``tl.dot`` tile loop over K (a tile of x times a tile of W transposed, fp32 accumulation;
float32 inputs in TF32), + bias, ``tl.sigmoid``, the masked sum over the tile's columns added with ``tl.atomic_add``
into a zeroed float32 output, cast to x's dtype at the end; ``triton.autotune`` picks the best of six tile
configurations for each B, K, N (and dtype). Contiguous (B, K) x and (N, K) W.

Like report.py it imports nothing of cupy_fused, so calls.py still runs as a script on another checkout; torch and
triton are imported at the first call, and without triton (or a GPU) ``triton_peer()`` is None and the sections run
without that peer.
"""

from __future__ import annotations

import functools
import types

# (BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages) for an H100; those whose stages do not fit shared memory
# (float32 at 128 x 256) drop out of the autotuning; 16 rows (the least tl.dot takes) for small batches
TILES = [
    (128, 128, 64, 8, 3),
    (128, 256, 64, 8, 3),
    (64, 128, 64, 4, 4),
    (128, 64, 64, 4, 4),
    (64, 64, 64, 4, 4),
    (16, 128, 128, 4, 4),
]


def torch_model():
    """sum(sigmoid(F.linear(x, W, b)), -1, keepdim=True) as a new function with its own code object at each call:
    dynamo keeps compiled code and counts recompiles per code object, so each compiled peer (a dtype, a TF32 setting,
    a mode) gets its own cache."""
    import torch

    def model(x, w, b):
        return torch.sum(torch.sigmoid(torch.nn.functional.linear(x, w, b)), dim=-1, keepdim=True)

    return types.FunctionType(model.__code__.replace(), model.__globals__, model.__name__, None, model.__closure__)


def torch_compiled(**options):
    """torch.compile(torch_model(), **options), with dynamo's recompile limit raised to 64 (a recompile per shape)."""
    import torch

    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    return torch.compile(torch_model(), **options)


@functools.cache
def triton_peer():
    """The Triton kernel as f(x, w, b) -> (B, 1) in x's dtype; None where triton is not installed or no GPU is."""
    try:
        import torch
        import triton
        import triton.language as tl
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None

    @triton.autotune(
        [
            triton.Config({"BLOCK_M": m, "BLOCK_N": n, "BLOCK_K": k}, num_warps=warps, num_stages=stages)
            for m, n, k, warps, stages in TILES
        ],
        key=["B", "K", "N"],
        reset_to_zero=["out"],  # the atomic adds of each timed run start from zeros
    )
    @triton.jit
    def kernel(x, w, b, out, B, K, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
        rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
        cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
        ks = tl.arange(0, BLOCK_K)
        x_tile = x + rows[:, None].to(tl.int64) * K + ks[None, :]
        w_tile = w + cols[:, None].to(tl.int64) * K + ks[None, :]
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for k in range(0, K, BLOCK_K):
            xk = tl.load(x_tile, mask=(rows[:, None] < B) & (ks[None, :] < K - k), other=0.0)
            wk = tl.load(w_tile, mask=(cols[:, None] < N) & (ks[None, :] < K - k), other=0.0)
            acc = tl.dot(xk, tl.trans(wk), acc, input_precision="tf32")  # bf16 and fp16: their own tensor cores
            x_tile += BLOCK_K
            w_tile += BLOCK_K
        z = acc + tl.load(b + cols, mask=cols < N, other=0.0).to(tl.float32)[None, :]
        tl.atomic_add(out + rows, tl.sum(tl.where(cols[None, :] < N, tl.sigmoid(z), 0.0), axis=1), mask=rows < B)

    def linear_sigmoid_sum(x, w, b):
        (B, K), N = x.shape, w.shape[0]
        out = torch.zeros(B, 1, device=x.device, dtype=torch.float32)
        kernel[lambda meta: (triton.cdiv(B, meta["BLOCK_M"]), triton.cdiv(N, meta["BLOCK_N"]))](x, w, b, out, B, K, N)
        return out.to(x.dtype)

    return linear_sigmoid_sum
