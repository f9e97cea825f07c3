"""The GEMM core's host side without a GPU: the parameter block mirrors the kernel's, the operand table, specs and
their shared memory, the split counts and the workspace layout, and what the forward offers for each dtype."""

import ctypes
import re
from pathlib import Path

import pytest

from cupy_fused import loader
from cupy_fused.backends import Problem, sm90
from cupy_fused.gemm.kernel import (
    SWAPPED_BN,
    TILE_BN,
    Args,
    GemmSpec,
    balanced_splits,
    k_split_of,
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


def test_split_counts_fill_the_sms_in_whole_waves():
    assert balanced_splits(1056, 132, 4096) == 1  # 8 whole waves
    assert balanced_splits(32, 132, 4096) == 4  # 128 units: one wave
    assert balanced_splits(224, 132, 8192) == 4  # 7 waves of a quarter tile against 2 whole waves
    assert balanced_splits(32, 132, 256) == 1  # each split at least 256 long
    assert k_split_of(8192, 7) == (1216, 7) and k_split_of(100, 3) == (64, 2) and k_split_of(0, 4) == (64, 1)


def test_workspace_layout():
    assert workspace_layout(10, 1, 256, 10, 1, 1000)[4] == 0  # one split, one red tile: none
    rows_off, zpart, part, counters, total = workspace_layout(10, 3, 256, 2, 5, 200)
    assert rows_off == 10 * 4 and counters == 48  # the counters, zeroed by the host: 10 split tiles, 2 out tiles
    assert zpart >= counters and part >= zpart + 10 * 3 * 128 * 256 * 4
    assert total == part + 200 * 5 * 4 and all(v % 256 == 0 for v in (zpart, part))


def test_the_core_is_offered_on_sm90a_only_and_for_aligned_rows():
    half = Problem(32, 4096, 14336, "bfloat16", True, 4096, 4096, True, 0, 256 * 2**20)
    assert sm90.candidates(half, None, H100, False)[0].kernel == "sm90:bf16:sw32:s1"  # 112 tiles: no split
    few = Problem(128, 4096, 2048, "bfloat16", True, 4096, 4096, True, 0, 256 * 2**20)
    assert sm90.candidates(few, None, H100, False)[0].kernel == "sm90:bf16:sw128:s4"  # 16 tiles: 4 splits
    old = loader.DeviceInfo("A100", "sm_80", 108, True, 2e12)
    assert sm90.candidates(half, None, old, False) == []
    unaligned = Problem(32, 4095, 14336, "bfloat16", True, 4095, 4095, False, 0, 256 * 2**20)
    assert sm90.candidates(unaligned, None, H100, False) == []
    fp32 = Problem(512, 4096, 4096, "float32", True, 4096, 4096, True, 0, 256 * 2**20)
    assert sm90.candidates(fp32, "tf32", H100, True) == []
    f16 = Problem(512, 4096, 4096, "float16", True, 4096, 4096, True, 0, 256 * 2**20)
    assert {c.kernel.split(":s")[0] for c in sm90.candidates(f16, None, H100, True)} == {
        "sm90:f16:t256",
        "sm90:f16:t128",
    }


def test_split_counts_respect_the_workspace_bound():
    p = Problem(256, 65536, 256, "bfloat16", True, 65536, 65536, True, 0, 1 << 20)  # 2 tiles: split-K wanted
    spec = sm90.specs(p, None)[0]
    splits = sm90.split_count(p, spec, 132)
    num_out, num_red = spec.tiles(p.rows, p.n)
    assert workspace_layout(num_out * num_red, splits, spec.bn, num_out, num_red, p.rows)[4] <= 1 << 20
