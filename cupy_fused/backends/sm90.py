"""Forward candidates on the Hopper GEMM core (``cupy_fused/gemm``, ``kernels/sm90_gemm.cu``): sm_90a, 16-byte aligned
rows (x and W are read through TMA tensor maps), for every operand type of ``gemm/operands.py`` (bfloat16 and
float16).

* Up to B = 128 the swapped form: W's rows as wgmma's M, the batch as its N in the smallest tile of 8 to 128 that
  holds it (bandwidth-bound: W streams through once).
* Above B = 64 the forward tiles, 128 x 256 and 128 x 128.

Tiles run whole, except where there are fewer than a fifth as many as SMs: then they run stream-K (``streams``). With
tuning, the other schedule of each instance is timed too (for the forward tiles past whole waves: stream-K of the
tail).

Every form is persistent (one block an SM) and bit-identical from run to run (kernels/last_arrival.cuh).
"""

from __future__ import annotations

from ..gemm.kernel import SWAPPED_BN, TILE_BN, GemmKernel, GemmSpec, schedule, workspace_layout
from ..gemm.operands import OPERANDS, operand_for
from . import Candidate, Problem

SWAPPED_MAX_ROWS = SWAPPED_BN[-1]
TILE_MIN_ROWS = 65  # below this the swapped form computes fewer padding rows than a 128-row tile
WAVE_USE = 0.2  # whole tiles keep at least this share of the SMs' time busy, or the tail runs stream-K


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


def stream_fits(p: Problem, spec: GemmSpec, sms: int) -> bool:
    """Whether spec can run the problem's tail tiles stream-K (``gemm.kernel.schedule``) within its workspace
    bound."""
    num_out, num_red = spec.tiles(p.rows, p.n)
    streamed, grid = schedule(spec, num_out * num_red, -(-p.k // spec.operand.bk), sms, True)
    return streamed > 0 and workspace_layout(streamed, grid, spec.bn, num_out, num_red, p.rows)[4] <= p.workspace_limit


def streams(p: Problem, spec: GemmSpec, sms: int) -> bool:
    """The static choice: stream-K where whole tiles would keep four fifths or more of the SMs' time idle and it
    fits. H100, bf16, swapped, GPU time from graph replay: stream-K against whole tiles 36.6 against 91.0 us at
    1 x 32768 x 1024 (8 tiles), 36.9 against 54.2 at 16 x 16384 x 2048 (16 tiles); but 44.5 against 38.8 at
    64 x 8192 x 4096 (32 tiles), 56.5 against 50.0 at 32 x 4096 x 14336 (112 tiles), 165.1 against 161.2 at
    1 x 8192 x 28672 (224 tiles): the exchange of the parts costs more than the idle SMs where a quarter of them
    already draw most of what HBM gives a call of that size."""
    num_out, num_red = spec.tiles(p.rows, p.n)
    tiles = num_out * num_red
    return tiles < WAVE_USE * -(-tiles // sms) * sms and stream_fits(p, spec, sms)


def candidates(p: Problem, precision: str | None, info, tuning: bool) -> list[Candidate]:
    """The preferred instance, stream-K or not as ``streams`` says, first; with tuning, the others and the other
    schedule of each where it differs (``stream_fits``)."""
    if info.arch != "sm_90a":
        return []
    found = specs(p, precision)
    choices = []
    for spec in found if tuning else found[:1]:
        base = streams(p, spec, info.sms)
        choices.append((spec, base))
        if tuning and (base or stream_fits(p, spec, info.sms)):
            choices.append((spec, not base))
    return [
        Candidate(
            "fused",
            spec.operand.precision or "ieee",
            f"sm90:{spec.operand.name}:{'sw' if spec.swapped else 't'}{spec.bn}{':sk' if stream else ''}",
            lambda spec=spec, stream=stream: GemmKernel(spec, p.rows, p.n, p.k, p.ldx, p.ldw, p.device_id, stream),
        )
        for spec, stream in choices
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
