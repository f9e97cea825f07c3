"""Registers, spills and shared memory of kernel instances, without a GPU: NVRTC to PTX, then `ptxas -v`.

python benchmarks/lab/resources.py small_batch.cu sm_90 "sb::small_batch<float, 8, 4, 8, true>" ...
"""

import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from cupy.cuda import nvrtc  # noqa: E402

from cupy_fused import loader  # noqa: E402


def ptx_of(filename: str, names: list[str], arch: str) -> tuple[str, dict]:
    virtual = arch.replace("sm_", "compute_")
    program = nvrtc.createProgram(loader.source(filename), filename, [], [])
    for name in names:
        nvrtc.addNameExpression(program, name)
    options = [
        o if not o.startswith("-arch=") else f"-arch={virtual}" for o in loader.options(arch, loader.cuda_include_dir())
    ]
    try:
        nvrtc.compileProgram(program, options)
    except nvrtc.NVRTCError:
        sys.exit(nvrtc.getProgramLog(program))
    mangled = {name: nvrtc.getLoweredName(program, name) for name in names}
    ptx = nvrtc.getPTX(program).decode()
    nvrtc.destroyProgram(program)
    return ptx, mangled


def main(argv):
    filename, arch, names = argv[0], argv[1], argv[2:]
    ptx, mangled = ptx_of(filename, names, arch)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "k.ptx"
        path.write_text(ptx)
        log = subprocess.run(
            ["ptxas", "-v", f"-arch={arch}", str(path), "-o", str(Path(tmp) / "k.cubin")],
            capture_output=True,
            text=True,
        )
    text = log.stderr
    for name, low in mangled.items():
        block = re.search(rf"Compiling entry function '{re.escape(low)}'.*?(?=Compiling entry|\Z)", text, re.S)
        info = " ".join(block.group(0).split("\n", 1)[1].split()) if block else "?"
        print(f"{name}: {info}")


if __name__ == "__main__":
    main(sys.argv[1:])
