"""Every kernel instance compiles with NVRTC for sm_80, sm_90 and sm_90a (no GPU needed), and the loader reports
failures well."""

import subprocess
import sys
from pathlib import Path

import pytest

from cupy_fused import loader
from cupy_fused.backends import instances

ARCHS = ["sm_80", "sm_90", "sm_90a"]


def test_every_source_file_has_instances_to_check():
    assert sorted(instances()) == loader.kernel_files()


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("filename", loader.kernel_files())
def test_kernel_compiles(filename, arch):
    names = instances()[filename]
    assert names, f"no instances listed for {filename}"
    cubin = loader.compile_for_arch(filename, names, arch)
    assert cubin[:4] == b"\x7fELF"


def test_compile_error_carries_the_log_and_the_file(monkeypatch):
    monkeypatch.setattr(loader, "source", lambda f: f'#line 1 "kernels/{f}"\n__global__ void k() {{ undefined_name; }}')
    with pytest.raises(loader.KernelCompileError, match=r"kernels/broken.cu\(1\).*undefined_name") as info:
        loader.compile_for_arch("broken.cu", ["k"], "sm_80")
    assert "undefined_name" in info.value.log


def test_sources_carry_a_line_directive():
    for filename in loader.kernel_files():
        assert loader.source(filename).startswith(f'#line 1 "kernels/{filename}"\n')


def test_generated_wgmma_header_is_current():
    script = Path(__file__).resolve().parents[1] / "scripts" / "gen_ptx_wgmma.py"
    result = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
