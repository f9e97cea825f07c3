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
    MIN_RANGE,
    SWAPPED_BN,
    TILE_BN,
    Args,
    GemmSpec,
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


def stream_units(num_tiles: int, k_tiles: int, grid: int) -> list[list[dict]]:
    """sm90::Schedule's stream-K units (dp_tiles = 0), block by block, by the kernel's integer arithmetic."""
    iters = num_tiles * k_tiles

    def range_start(i):
        return i * iters // grid

    def block_of(x):
        return ((x + 1) * grid - 1) // iters

    blocks = []
    for block in range(grid):
        lo, hi = range_start(block), range_start(block + 1)
        count = (hi - 1) // k_tiles - lo // k_tiles + 1 if hi > lo else 0
        units = []
        for i in range(count):
            s = lo // k_tiles + i
            start, end = s * k_tiles, (s + 1) * k_tiles
            kt0 = max(lo, start) - start
            first = block_of(start)
            units.append(
                dict(
                    tile=s, kt0=kt0, kt=min(hi, end) - start - kt0, part=block - first,
                    parts=block_of(end - 1) - first + 1, first_block=first, head=int(range_start(first) != start),
                )
            )  # fmt: skip
        blocks.append(units)
    return blocks


def slot(unit: dict, j: int) -> int:
    return 2 * unit["first_block"] + unit["head"] if j == 0 else 2 * (unit["first_block"] + j)


@pytest.mark.parametrize("tiles,k_tiles,grid", [(112, 64, 132), (7, 5, 9), (1, 64, 16), (300, 16, 132), (3, 4, 3)])
def test_stream_k_covers_every_k_tile_once_and_parts_know_each_other(tiles, k_tiles, grid):
    blocks = stream_units(tiles, k_tiles, grid)
    covered = {}
    for block, units in enumerate(blocks):
        assert units, "every block has work: the host gives each at least one k tile"
        for i, u in enumerate(units):
            assert u["kt"] > 0
            for kt in range(u["kt0"], u["kt0"] + u["kt"]):
                assert (u["tile"], kt) not in covered
                covered[(u["tile"], kt)] = (block, u)
            if u["parts"] > 1:  # a cut tile: only a block's first and last units, in the slot the others look in
                assert i in (0, len(units) - 1)
                assert slot(u, u["part"]) == 2 * block + (0 if i == 0 else 1)
    assert len(covered) == tiles * k_tiles
    for t in range(tiles):  # the parts of a tile, in k order, agree on their count and first block
        parts = [covered[(t, kt)][1] for kt in range(k_tiles)]
        distinct = {(p["part"], p["kt0"]) for p in parts}
        assert [p for p, _ in sorted(distinct, key=lambda d: d[1])] == list(range(parts[0]["parts"]))
        assert len({(p["parts"], p["first_block"], p["head"]) for p in parts}) == 1
        assert len({slot(parts[0], j) for j in range(parts[0]["parts"])}) == parts[0]["parts"]


def test_stream_grid_gives_each_block_enough_k_tiles():
    assert stream_grid(112, 64, 132) == 132
    assert stream_grid(2, 16, 132) == 2 * 16 // MIN_RANGE  # 8 blocks of 4 k tiles
    assert stream_grid(1, 1, 132) == 0 and stream_grid(0, 64, 132) == 0


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
    tight = dataclasses.replace(p, workspace_limit=1 << 20)  # 132 blocks' parts of 128 x 256 fp32 do not fit
    assert not sm90.streams(tight, spec, 132)
