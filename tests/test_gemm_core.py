"""The GEMM core's host side without a GPU: the parameter block mirrors the kernel's, the operand table, specs and
their shared memory, the stream-K schedule (the kernel's arithmetic replayed in Python) and the workspace layout,
and what the forward offers for each dtype."""

import ctypes
import dataclasses
import re
from pathlib import Path

import pytest

from cupy_fused import loader
from cupy_fused.backends import Problem, sm90
from cupy_fused.gemm.kernel import (
    MAX_PARTS_BYTES,
    MIN_RANGE,
    SWAPPED_BN,
    TILE_BN,
    Args,
    GemmSpec,
    schedule,
    stream_grid,
    workspace_layout,
)
from cupy_fused.gemm.operands import OPERANDS, operand_for

KERNELS = Path(__file__).resolve().parents[1] / "kernels"
H100 = loader.DeviceInfo("NVIDIA H100 80GB HBM3", "sm_90a", 132, True, 3.35e12)
CTYPES = {"void*": 8, "float*": 8, "unsigned char*": 8, "long long": 8, "unsigned long long": 8, "int": 4}


def test_args_mirror_the_kernels_parameter_block():
    text = (KERNELS / "sm90_epilogues.cuh").read_text()
    body = re.search(r"struct Args \{(.*?)\n\};", text, re.S)[1]
    fields = []
    for line in body.splitlines():
        declaration = line.split("//")[0].strip().rstrip(";")
        if declaration:
            kind, names = re.fullmatch(r"((?:const )?[a-z ]+\*?) (.+)", declaration).groups()
            fields += [(name.strip(), CTYPES[kind.removeprefix("const ")]) for name in names.split(",")]
    assert [(name, ctypes.sizeof(kind)) for name, kind in Args._fields_] == fields


def test_operand_table():
    assert operand_for("bfloat16", None).traits == "sm90::BF16"
    assert operand_for("float16", "ieee").name == "f16"  # the precision applies to float32 only
    assert operand_for("bfloat16", None).bk == 64
    assert operand_for("float32", "tf32") is None and operand_for("float64", None) is None
    sources = (KERNELS / "sm90_operand.cuh").read_text()
    for o in OPERANDS.values():
        assert f"struct {o.traits.removeprefix('sm90::')} :" in sources


@pytest.mark.parametrize("swapped,widths", [(True, SWAPPED_BN), (False, TILE_BN)])
def test_specs_fit_shared_memory_and_name_their_instance(swapped, widths):
    for o in OPERANDS.values():
        for bn in widths:
            spec = GemmSpec(o, bn, swapped, False)
            assert 2 <= spec.stages and spec.smem <= 220 * 1024  # the epilogue's static shared memory on top
            assert spec.instance.startswith(f"sm90::gemm<{o.traits}, {bn}, {spec.stages}, sm90::")
            assert ("ColSigmoidSum" in spec.instance) == swapped and f"Sig::{o.sigmoid}>" in spec.instance


def block_units(tiles: int, dp_tiles: int, k_tiles: int, grid: int) -> list[list[dict]]:
    """sm90::Schedule's units, block by block, by the kernel's integer arithmetic (kernels/sm90_scheduler.cuh):
    whole tiles dealt out round-robin, then stream-K ranges over the k tiles of the rest."""
    iters = (tiles - dp_tiles) * k_tiles

    def range_start(i):
        return i * iters // grid

    def block_of(x):
        return ((x + 1) * grid - 1) // iters

    blocks = []
    for block in range(grid):
        units = [dict(tile=t, kt0=0, kt=k_tiles, parts=1) for t in range(block, dp_tiles, grid)]
        lo, hi = range_start(block), range_start(block + 1)
        for s in range(lo // k_tiles, (hi - 1) // k_tiles + 1) if hi > lo else ():
            start, end = s * k_tiles, (s + 1) * k_tiles
            kt0 = max(lo, start) - start
            first = block_of(start)
            units.append(
                dict(
                    tile=dp_tiles + s, kt0=kt0, kt=min(hi, end) - start - kt0, part=block - first,
                    parts=block_of(end - 1) - first + 1, first_block=first, head=int(range_start(first) != start),
                )
            )  # fmt: skip
        blocks.append(units)
    return blocks


def slot(unit: dict, j: int) -> int:
    return 2 * unit["first_block"] + unit["head"] if j == 0 else 2 * (unit["first_block"] + j)


def check_schedule(tiles: int, dp_tiles: int, k_tiles: int, grid: int) -> int:
    """Every k tile of every tile runs once; a cut tile's parts agree on their count, first block and slots, only a
    block's first and last stream-K units are parts, each in its own block's slots. Returns the most parts of a
    tile."""
    blocks = block_units(tiles, dp_tiles, k_tiles, grid)
    covered, most = {}, 1
    for block, units in enumerate(blocks):
        assert units, "every block has work"
        streamed = [u for u in units if "part" in u]
        for u in units:
            assert u["kt"] > 0
            for kt in range(u["kt0"], u["kt0"] + u["kt"]):
                assert (u["tile"], kt) not in covered
                covered[(u["tile"], kt)] = u
        for i, u in enumerate(streamed):
            if u["parts"] > 1:
                assert i in (0, len(streamed) - 1)
                assert slot(u, u["part"]) == 2 * block + (0 if i == 0 else 1)
                most = max(most, u["parts"])
    assert len(covered) == tiles * k_tiles
    for t in range(dp_tiles, tiles):
        parts = {id(u): u for u in (covered[(t, kt)] for kt in range(k_tiles))}.values()
        ordered = sorted(parts, key=lambda u: u["kt0"])
        assert [u["part"] for u in ordered] == list(range(len(ordered)))
        assert {(u["parts"], u["first_block"], u["head"]) for u in ordered} == {
            (len(ordered), ordered[0]["first_block"], ordered[0]["head"])
        }
        assert len({slot(ordered[0], j) for j in range(len(ordered))}) == len(ordered)
    return most


def test_the_schedule_formulas_are_the_kernels():
    text = (KERNELS / "sm90_scheduler.cuh").read_text()
    assert "return i * iters / grid;" in text and "return (int)(((x + 1) * grid - 1) / iters);" in text
    for iters, grid in [(1, 1), (7, 3), (45, 9), (4096, 132), (130, 132)]:  # block_of inverts range_start
        for x in range(iters):
            last = max(i for i in range(grid + 1) if i * iters // grid <= x)
            assert ((x + 1) * grid - 1) // iters == min(last, grid - 1)


@pytest.mark.parametrize("tiles,k_tiles,grid", [(112, 64, 132), (7, 5, 9), (1, 64, 16), (300, 16, 132), (3, 4, 3)])
def test_stream_k_covers_every_k_tile_once_and_parts_know_each_other(tiles, k_tiles, grid):
    check_schedule(tiles, 0, k_tiles, grid)


def test_every_schedule_the_host_launches_is_consistent():
    """What GemmKernel launches (gemm.kernel.schedule) for many shapes of both forms, grids of 1-19 blocks, whole
    tiles and stream-K: consistent, and no tile cut into more parts than MAX_PARTS_BYTES holds (give or take one)."""
    for swapped, bn in ((True, 8), (True, 128), (False, 256)):
        spec = GemmSpec(OPERANDS["bf16"], bn, swapped, False)
        limit = max(2, MAX_PARTS_BYTES // (128 * bn * 4)) + 1
        for tiles in range(1, 40, 3):
            for k_tiles in (1, 2, 5, 17, 64, 300):
                for sms in (1, 4, 7, 19):
                    for stream in (False, True):
                        streamed, grid = schedule(spec, tiles, k_tiles, sms, stream)
                        assert 1 <= grid <= sms and (streamed == 0 or streamed * k_tiles >= grid * MIN_RANGE)
                        assert check_schedule(tiles, tiles - streamed, k_tiles, grid) <= limit


def test_stream_grid_gives_each_block_enough_k_tiles():
    assert stream_grid(112, 64, 132, 32) == 132
    assert stream_grid(2, 16, 132, 32) == 2 * 16 // MIN_RANGE  # 8 blocks of 4 k tiles
    assert stream_grid(1, 512, 132, 256) == MAX_PARTS_BYTES // (128 * 256 * 4) - 1  # a 128 x 256 tile in 4 parts
    assert stream_grid(1, 1, 132, 8) == 0 and stream_grid(0, 64, 132, 8) == 0


def test_workspace_layout():
    assert workspace_layout(0, 132, 256, 10, 1, 1000)[4] == 0  # nothing streamed, one red tile: none
    rows_off, zpart, part, counters, total = workspace_layout(10, 132, 256, 2, 5, 200)
    assert rows_off == 10 * 4 and counters == 48  # the counters, zeroed by the host: 10 streamed tiles, 2 out tiles
    assert zpart >= counters and part >= zpart + 2 * 132 * 128 * 256 * 4  # two parts a block
    assert total == part + 200 * 5 * 4 and all(v % 256 == 0 for v in (zpart, part))


def test_the_core_is_offered_on_sm90a_only_and_for_aligned_rows():
    half = Problem(32, 4096, 14336, "bfloat16", True, 4096, 4096, True, 0, 256 * 2**20)
    assert sm90.candidates(half, None, H100, False)[0].kernel == "sm90:bf16:sw32"  # 112 tiles: whole
    deep = Problem(1, 32768, 1024, "bfloat16", True, 32768, 32768, True, 0, 256 * 2**20)
    assert sm90.candidates(deep, None, H100, False)[0].kernel == "sm90:bf16:sw8:sk"  # 8 tiles: stream-K
    quarter = Problem(64, 8192, 4096, "bfloat16", True, 8192, 8192, True, 0, 256 * 2**20)
    assert sm90.candidates(quarter, None, H100, False)[0].kernel == "sm90:bf16:sw64"  # 32 tiles: whole
    old = loader.DeviceInfo("A100", "sm_80", 108, True, 2e12)
    assert sm90.candidates(half, None, old, False) == []
    unaligned = Problem(32, 4095, 14336, "bfloat16", True, 4095, 4095, False, 0, 256 * 2**20)
    assert sm90.candidates(unaligned, None, H100, False) == []
    fp32 = Problem(512, 4096, 4096, "float32", True, 4096, 4096, True, 0, 256 * 2**20)
    assert sm90.candidates(fp32, "tf32", H100, True) == []
    f16 = Problem(512, 4096, 4096, "float16", True, 4096, 4096, True, 0, 256 * 2**20)
    assert {c.kernel for c in sm90.candidates(f16, None, H100, True)} == {
        "sm90:f16:t256",
        "sm90:f16:t256:sk",
        "sm90:f16:t128",
        "sm90:f16:t128:sk",
    }


def test_stream_k_respects_the_workspace_bound():
    p = Problem(256, 65536, 256, "bfloat16", True, 65536, 65536, True, 0, 256 * 2**20)  # 2 tiles: stream-K wanted
    spec = sm90.specs(p, None)[0]
    assert sm90.streams(p, spec, 132)
    tight = dataclasses.replace(p, workspace_limit=1 << 20)  # the blocks' parts of 128 x 256 fp32 do not fit
    assert not sm90.streams(tight, spec, 132)
    kernels = [c.kernel for c in sm90.candidates(tight, None, H100, True)]
    assert not any(k.endswith(":sk") for k in kernels)  # nor does the tuner time it


def test_the_tuner_times_stream_k_only_where_it_differs():
    one_k_tile = Problem(32, 64, 14336, "bfloat16", True, 64, 64, True, 0, 256 * 2**20)
    assert [c.kernel for c in sm90.candidates(one_k_tile, None, H100, True)] == ["sm90:bf16:sw32"]
    half = Problem(32, 4096, 14336, "bfloat16", True, 4096, 4096, True, 0, 256 * 2**20)
    assert [c.kernel for c in sm90.candidates(half, None, H100, True)] == ["sm90:bf16:sw32", "sm90:bf16:sw32:sk"]
