"""Small batches on CUDA cores: ``kernels/small_batch.cu`` (W read once, N and K split across the SMs, one launch).

Exact arithmetic in the accumulator type (fp32 FMA for float32 and half inputs, fp64 for float64), so every float32
precision is served at least as accurately as asked: at these batch sizes W's bytes, not the FMA rate, set the time.
A configuration is (BT: batch rows per tile, RW: W rows per warp, NW: warps per block, S: splits of K).
"""

from __future__ import annotations

from .. import loader
from . import CTYPE, Candidate, Problem, cpp_bool, round_up
from .launch import LinearKernel

FILENAME = "small_batch.cu"
KC = 256  # values of k per chunk (the kernel's KC)
MAX_ROWS = 64  # the largest batch offered (four tiles of 16)
RW, NW = 4, 8
# Batch rows per tile. 32 held 128 accumulators per thread: 254 registers, a minute of ptxas per instance, and no
# faster than two tiles of 16 in the first measurements (benchmarks/NOTES.md, session 3).
BATCH_TILES = {
    "float32": (1, 2, 4, 8, 16),
    "float64": (1, 2, 4, 8),
    "float16": (1, 2, 4, 8, 16),
    "bfloat16": (1, 2, 4, 8, 16),
}


def stages(itemsize: int, bt: int) -> int:
    """Shared-memory stages of the kernel's ring (its stages<T, BT, ROWS>()): as many as fit in 200 KiB, 2 to 4."""
    return min(4, max(2, 200 * 1024 // ((RW * NW + bt) * KC * itemsize)))


def kernel_name(dtype: str, bt: int, vec: bool, saves: bool) -> str:
    return f"sb::small_batch<{CTYPE[dtype]}, {bt}, {RW}, {NW}, {cpp_bool(vec)}, {cpp_bool(saves)}>"


def instances() -> list[str]:
    """Every instance this backend can launch (the CI compile check builds them all)."""
    return [
        kernel_name(d, bt, vec, saves)
        for d, tiles in BATCH_TILES.items()
        for bt in tiles
        for vec in (True, False)
        for saves in (False, True)
    ]


def _batch_tile(dtype: str, rows: int) -> int:
    tiles = BATCH_TILES[dtype]
    return next((t for t in tiles if t >= rows), tiles[-1])


def splits_for(p: Problem, bt: int, sms: int) -> int:
    """Enough blocks for two per SM, each split at least two chunks of k long."""
    blocks = -(-p.n // (RW * NW)) * -(-p.rows // bt)
    return max(1, min(-(-2 * sms // blocks), p.k // (2 * KC)))


class SmallBatch(LinearKernel):
    def __init__(self, p: Problem, bt: int, splits: int):
        ve = 16 // p.itemsize
        vec = p.aligned and p.ldx % ve == 0 and p.ldw % ve == 0
        k_split = round_up(-(-p.k // splits), KC) if p.k else KC
        self.splits = splits = -(-p.k // k_split) if p.k else 1
        nbt, nb = -(-p.rows // bt), -(-p.n // (RW * NW))
        groups = nb * nbt
        grid = groups * splits
        acc = p.acc_itemsize
        self.workspace_bytes = (
            0
            if grid == 1
            else (round_up(groups * splits * 8, 16) + nb * p.rows * acc + (splits - 1) * p.rows * p.n * acc)
        )
        name = kernel_name(p.dtype, bt, vec, p.saves)
        self._config = f"BT={bt} RW={RW} NW={NW} S={splits}{'' if vec else ' (element loads)'}"
        smem = stages(p.itemsize, bt) * (RW * NW + bt) * KC * p.itemsize
        self._make_launch(p, loader.function(FILENAME, name, p.device_id), name, grid, NW * 32, smem, k_split, splits)

    def describe(self) -> str:
        return f"{self._launch!r} small-batch CUDA-core kernel, {self._config}"


def candidates(p: Problem, info, tuning: bool) -> list[Candidate]:
    """The static choice first; with tuning, neighbouring batch tiles and split counts too. ``info``: the device
    (loader.DeviceInfo)."""
    sms = info.sms
    bt = _batch_tile(p.dtype, p.rows)
    configs = [(bt, splits_for(p, bt, sms))]
    if tuning:
        tiles = BATCH_TILES[p.dtype]
        i = tiles.index(bt)
        for other in tiles[max(0, i - 1) : i + 2]:
            base = splits_for(p, other, sms)
            for splits in sorted({1, base, 2 * base, max(1, base // 2)}):
                if (other, splits) not in configs and (p.k >= splits * KC or splits == 1):
                    configs.append((other, splits))
    return [
        Candidate("fused", "ieee", f"small_batch:bt{b}:s{s}", lambda b=b, s=s: SmallBatch(p, b, s)) for b, s in configs
    ]
