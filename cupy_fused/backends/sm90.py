"""Forward candidates on the Hopper GEMM core (``cupy_fused/gemm``, ``kernels/sm90_gemm.cu``): sm_90a, 16-byte aligned
rows (x and W are read through TMA tensor maps), for every operand type of ``gemm/operands.py``: bfloat16, float16,
and float32 at "tf32".

* Up to B = 128 the swapped form: W's rows as wgmma's M, the batch as its N in the smallest tile of 8 to 128 that
  holds it, K split until the units fill the SMs (bandwidth-bound: W streams through once).
* Above B = 64 the forward tiles, 128 x 256 and 128 x 128; the tiles past the last whole wave split K when they
  would leave most of it idle.

Every form is persistent (one block an SM) and bit-identical from run to run (kernels/last_arrival.cuh).
"""

from __future__ import annotations

from ..gemm.kernel import (
    SWAPPED_BN,
    TILE_BN,
    GemmKernel,
    GemmSpec,
    balanced_splits,
    tail_tiles,
    workspace_layout,
)
from ..gemm.operands import OPERANDS, operand_for
from . import Candidate, Problem

SWAPPED_MAX_ROWS = SWAPPED_BN[-1]
TILE_MIN_ROWS = 65  # below this the swapped form computes fewer padding rows than a 128-row tile


def specs(p: Problem, precision: str | None) -> list[GemmSpec]:
    """The core's instances for a problem, preferred first (none where no operand type serves it)."""
    operand = operand_for(p.dtype, precision)
    if operand is None or not p.aligned:
        return []
    out = []
    if p.rows <= SWAPPED_MAX_ROWS:
        bn = next(b for b in SWAPPED_BN if b >= p.rows)
        out.append(GemmSpec(operand, bn, True, p.saves))
    if p.rows >= TILE_MIN_ROWS:
        out += [GemmSpec(operand, bn, False, p.saves) for bn in reversed(TILE_BN)]
    return out


def split_count(p: Problem, spec: GemmSpec, sms: int) -> int:
    """Unsplit, unless the tiles would leave most of the SMs idle: all tiles of a grid that fills at most a quarter
    of them, or the forward tiles past the last whole wave when they fill at most a quarter of it, split into at
    most 4, each at least 1024 long. The last split's sum of the parts runs on one SM (a forward tile's part is 128
    KiB): H100, bf16, splitting measured slower at every shape tried down to 32 tiles (128 x 4096 x 4096 swapped:
    32.4 us unsplit, 32.0 two ways, 35.8 four, 66 eight). Fewer where the workspace would pass the problem's bound."""
    num_out, num_red = spec.tiles(p.rows, p.n)
    tiles = num_out * num_red
    tail = tail_tiles(spec, tiles, sms)
    splits = balanced_splits(tail, sms, p.k, most=4, min_k=1024) if tail and 4 * tail <= sms else 1
    while splits > 1 and workspace_layout(tail, splits, spec.bn, num_out, num_red, p.rows)[4] > p.workspace_limit:
        splits -= 1
    return splits


def candidates(p: Problem, precision: str | None, info, tuning: bool) -> list[Candidate]:
    """The preferred instance with its split count first; with tuning, the others and neighbouring split counts."""
    if info.arch != "sm_90a":
        return []
    found = specs(p, precision)
    choices = []
    for spec in found if tuning else found[:1]:
        base = split_count(p, spec, info.sms)
        others = sorted({1, 2 * base, max(1, base // 2)} - {base}) if tuning else []
        choices += [(spec, s) for s in [base, *others] if s <= base or p.k >= s * 4 * 64]
    return [
        Candidate(
            "fused",
            spec.operand.precision or "ieee",
            f"sm90:{spec.operand.name}:{'sw' if spec.swapped else 't'}{spec.bn}:s{splits}",
            lambda spec=spec, s=splits: GemmKernel(spec, p.rows, p.n, p.k, p.ldx, p.ldw, p.device_id, s),
        )
        for spec, splits in choices
    ]


def instances() -> list[str]:
    """Every instance the forward can launch (the CI compile check builds them all)."""
    return [
        GemmSpec(operand, bn, swapped, save).instance
        for operand in OPERANDS.values()
        for swapped, widths in ((True, SWAPPED_BN), (False, TILE_BN))
        for bn in widths
        for save in (False, True)
    ]
