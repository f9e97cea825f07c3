"""Find, compile and cache the CUDA sources in ``kernels/``; imports no launcher.

Kernels are compiled lazily, once per (file, template instance, architecture), with NVRTC through
``cupy.RawModule`` (whose disk cache makes later processes fast). Each source gets a ``#line`` directive so that
compiler messages point at the real file. ``compile_for_arch`` compiles the same way without a GPU (NVRTC directly,
to a cubin, so ptxas checks the inline PTX too): that is how CI checks every kernel instance.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
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


@functools.cache
def sources_digest() -> str:
    """12 hex digits of a SHA-256 over every source in kernel_dir() (names and bytes): what the tuning cache is kept
    per, beside the package version, so that a kernel changed between versions is timed again."""
    digest = hashlib.sha256()
    for path in sorted(kernel_dir().glob("*.cu*")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


@functools.cache
def source(filename: str) -> str:
    text = (kernel_dir() / filename).read_text()
    return f'#line 1 "kernels/{filename}"\n{text}'


def options(arch: str, extra_include: str | None = None) -> tuple[str, ...]:
    opts = ["-std=c++17", f"-I{kernel_dir()}", f"-arch={arch}"]
    if extra_include:
        opts.append(f"-I{extra_include}")
    return tuple(opts)


@functools.cache
def compute_capability(device_id: int) -> int:
    import cupy

    return int(cupy.cuda.Device(device_id).compute_capability)


@dataclass(frozen=True)
class DeviceInfo:
    """What the planner needs to know of a GPU."""

    name: str
    arch: str  # NVRTC target, e.g. "sm_90a"
    sms: int
    tensor_cores: bool  # mma.sync (compute capability 8.0+)
    peak_bytes_per_s: float  # from the memory clock and bus width
    clock_khz: int = 1_500_000  # SM clock


@functools.cache
def device_info(device_id: int) -> DeviceInfo:
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(device_id)
    peak = 2 * props["memoryClockRate"] * 1e3 * props["memoryBusWidth"] / 8
    return DeviceInfo(
        props["name"].decode(),
        arch_of(device_id),
        props["multiProcessorCount"],
        has_tensor_cores(device_id),
        peak,
        props["clockRate"],
    )


def has_tensor_cores(device_id: int) -> bool:
    """Whether the device has the mma.sync tensor-core instructions the fused kernels use (compute capability 8.0+)."""
    return compute_capability(device_id) >= 80


def arch_of(device_id: int) -> str:
    """NVRTC target for a device: sm_XY, with the 'a' suffix on sm_90 so that wgmma is available there."""
    major, minor = divmod(compute_capability(device_id), 10)
    return f"sm_{major}{minor}" + ("a" if (major, minor) == (9, 0) else "")


@functools.cache
def _module(filename: str, name_expression: str, arch: str):
    import cupy

    module = cupy.RawModule(
        code=source(filename), options=options(arch), name_expressions=(name_expression,), backend="nvrtc"
    )
    try:
        module.compile()
    except cupy.cuda.compiler.CompileException as exc:
        raise KernelCompileError(filename, name_expression, arch, exc.get_message()) from None
    return module


_functions: dict = {}  # (filename, name_expression, device_id) -> kernel: a lookup is one dict hit


def function(filename: str, name_expression: str, device_id: int):
    """The compiled kernel ``name_expression`` (a template instance such as ``sigmoid_sum<float>``) of ``filename``
    for device ``device_id``; compiled on first use, then cached."""
    key = (filename, name_expression, device_id)
    kernel = _functions.get(key)
    if kernel is None:
        import cupy

        with cupy.cuda.Device(device_id):  # the driver-level Function of this device (its .ptr is the CUfunction)
            kernel = _module(filename, name_expression, arch_of(device_id)).get_function(name_expression).kernel
        _functions[key] = kernel
    return kernel


def cuda_include_dir() -> str | None:
    """CUDA headers (cuda_fp16.h) for compiling without a GPU: $CUDA_PATH/include, the nvidia wheels' include
    folders (CUDA 12: nvidia/cuda_runtime/include; CUDA 13: nvidia/cu13/include), else /usr/local/cuda/include."""
    candidates = []
    if os.environ.get("CUDA_PATH"):
        candidates.append(Path(os.environ["CUDA_PATH"]) / "include")
    try:
        import nvidia  # the namespace package of the CUDA wheels that cupy-cuda1Xx[ctk] pulls in

        for root in nvidia.__path__:
            candidates += sorted(Path(root).glob("*/include"))
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

    program = nvrtc.createProgram(source(filename), filename, [], [])
    try:
        for name in name_expressions:
            nvrtc.addNameExpression(program, name)
        try:
            nvrtc.compileProgram(program, list(options(arch, cuda_include_dir())))
        except nvrtc.NVRTCError:
            raise KernelCompileError(
                filename, ", ".join(name_expressions), arch, nvrtc.getProgramLog(program)
            ) from None
        return nvrtc.getCUBIN(program)
    finally:
        nvrtc.destroyProgram(program)
