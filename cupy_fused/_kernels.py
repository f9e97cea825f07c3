"""Find, compile and cache the CUDA sources in ``kernels/``.

Kernels are compiled lazily, once per (file, template instance, device architecture), with NVRTC through
``cupy.RawModule``. Each source gets a ``#line`` directive so that compiler messages point at the real file.
``compile_for_arch`` compiles the same way without a GPU (NVRTC directly), which is how CI checks every kernel.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


class KernelCompileError(RuntimeError):
    """NVRTC rejected a kernel; ``log`` holds the compiler's output."""

    def __init__(self, filename: str, name_expression: str, arch: str, log: str):
        self.log = log
        super().__init__(f"compiling {name_expression} from kernels/{filename} for {arch} failed:\n{log}")


def kernel_dir() -> Path:
    """Folder of the .cu sources: inside the installed package (wheel), else the repository's kernels/."""
    for candidate in (_PACKAGE_DIR / "kernels", _PACKAGE_DIR.parent / "kernels"):
        if (candidate / "common.cuh").is_file():
            return candidate
    raise FileNotFoundError(f"no CUDA sources found in {_PACKAGE_DIR / 'kernels'} or {_PACKAGE_DIR.parent / 'kernels'}")


def kernel_files() -> list[str]:
    return sorted(p.name for p in kernel_dir().glob("*.cu"))


@functools.lru_cache(maxsize=None)
def _source(filename: str) -> str:
    text = (kernel_dir() / filename).read_text()
    return f'#line 1 "kernels/{filename}"\n{text}'


def _options(arch: str, extra_include: str | None = None) -> tuple[str, ...]:
    options = ["-std=c++17", f"-I{kernel_dir()}", f"-arch={arch}"]
    if extra_include:
        options.append(f"-I{extra_include}")
    return tuple(options)


@functools.lru_cache(maxsize=None)
def has_tensor_cores(device_id: int) -> bool:
    """Whether the device has the mma.sync tensor-core instructions the fused kernels use (compute capability 8.0+)."""
    import cupy

    return int(cupy.cuda.Device(device_id).compute_capability) >= 80


@functools.lru_cache(maxsize=None)
def arch_of(device_id: int) -> str:
    """NVRTC target for a device: sm_XY, with the 'a' suffix on sm_90 so that wgmma is available there."""
    import cupy

    major, minor = divmod(int(cupy.cuda.Device(device_id).compute_capability), 10)
    return f"sm_{major}{minor}" + ("a" if (major, minor) == (9, 0) else "")


@functools.lru_cache(maxsize=None)
def _module(filename: str, name_expression: str, arch: str):
    import cupy

    module = cupy.RawModule(
        code=_source(filename), options=_options(arch), name_expressions=(name_expression,), backend="nvrtc"
    )
    try:
        module.compile()
    except cupy.cuda.compiler.CompileException as exc:
        raise KernelCompileError(filename, name_expression, arch, exc.get_message()) from None
    return module


_functions: dict = {}  # (filename, name_expression, device_id) -> kernel: the per-call lookup stays one dict hit


def get_function(filename: str, name_expression: str, device_id: int | None = None):
    """The compiled kernel ``name_expression`` (a template instance such as ``sigmoid_sum<float>``) of ``filename``
    for the given (default: current) device; compiled on first use, then cached."""
    import cupy

    if device_id is None:
        device_id = cupy.cuda.Device().id
    key = (filename, name_expression, device_id)
    kernel = _functions.get(key)
    if kernel is None:
        with cupy.cuda.Device(device_id):
            kernel = _module(filename, name_expression, arch_of(device_id)).get_function(name_expression)
        _functions[key] = kernel
    return kernel


def cuda_include_dir() -> str | None:
    """CUDA headers (cuda_fp16.h) for compiling without a GPU: $CUDA_PATH/include, else the nvidia-cuda-runtime wheel."""
    candidates = []
    if os.environ.get("CUDA_PATH"):
        candidates.append(Path(os.environ["CUDA_PATH"]) / "include")
    try:
        import nvidia.cuda_runtime  # nvidia-cuda-runtime-cu12, pulled in by cupy-cuda12x[ctk]

        candidates += [Path(p) / "include" for p in nvidia.cuda_runtime.__path__]
    except ImportError:
        pass
    candidates.append(Path("/usr/local/cuda/include"))
    for path in candidates:
        if (path / "cuda_fp16.h").is_file():
            return str(path)
    return None


def compile_for_arch(filename: str, name_expressions: list[str], arch: str) -> bytes:
    """Compile with NVRTC for ``arch`` (e.g. sm_80, sm_90a) to a cubin, with no GPU needed. A real target runs ptxas,
    so inline-PTX mistakes are caught. Raises KernelCompileError with the log."""
    from cupy.cuda import nvrtc

    program = nvrtc.createProgram(_source(filename), filename, [], [])
    try:
        for name in name_expressions:
            nvrtc.addNameExpression(program, name)
        try:
            nvrtc.compileProgram(program, list(_options(arch, cuda_include_dir())))
        except nvrtc.NVRTCError:
            raise KernelCompileError(filename, ", ".join(name_expressions), arch, nvrtc.getProgramLog(program)) from None
        return nvrtc.getCUBIN(program)
    finally:
        nvrtc.destroyProgram(program)


def instances() -> dict[str, list[str]]:
    """Every template instance the launchers can ask for, by source file (the compile check builds them all)."""
    from . import _fused, _gpu

    return {"sigmoid_sum.cu": _gpu.sigmoid_sum_instances(), _fused.FILENAME: _fused.name_expressions()}
