"""The session 1-2 fused kernel family (benchmarks/lab/kernels/fused_v5.cu) and its launcher, as they were when
the package shipped them (commit 67ad261), kept so that fused_lab.py can re-run the comparisons in NOTES.md. Lab code:
the package's own kernels are in kernels/ (fused_mma.cu, fused_fma.cu, fused_wgmma_sm90.cu) and are launched by
cupy_fused.backends.fused. Modes keep their old integer names here.

Launcher for the fused linear -> sigmoid -> row-sum kernels of ``kernels/fused_linear_sigmoid_sum.cu``.

``run(x, w, bias, out, precision, stream)`` computes ``out[b] = sum_n sigmoid(x[b] . w[n] + bias[n])`` in one pass
over x and W: each block computes a BM x BN tile of ``x @ w.T`` in registers, applies bias + sigmoid, and writes one
partial sum per row into a ``(B, ceil(N/BN))`` workspace (accumulator dtype); a second kernel sums each row of it in
a fixed order. With a single N tile the first kernel writes ``out`` itself. Results are bit-identical run to run.

Kernels by dtype / precision (compute capability >= 8.0 for the tensor-core ones):

* float32 ``"tf32"``: operands rounded to nearest, ties away (as ``cvt.rna``). On sm_90a with 16-byte aligned operands
  a ``wgmma`` kernel (m64n256k8, operands rounded in shared memory); elsewhere ``mma.sync`` m16n8k8 (rounded in
  registers).
* float32 ``"tf32x3"``: each operand split into hi = tf32(v) and lo = tf32(v - hi); hi*lo + lo*hi + hi*hi on tensor
  cores, each k tile (32 values of k) accumulated from zero and then added to the running sums with a plain fp32
  add (the tensor cores' own accumulation is not round-to-nearest; without this step the error over K = 32768 was
  60x cuBLAS fp32's, with it about 1x).
* float32 ``"bf16"``: operands rounded to bf16, ``mma.sync`` m16n8k16, fp32 accumulation.
* float32 ``"ieee"``: CUDA-core FMA kernel (also every float32 precision on GPUs below compute capability 8.0).
* float16 / bfloat16: ``mma.sync`` m16n8k16 with fp32 accumulation (FMA kernel below 8.0); ``precision`` ignored.
* float64: FMA kernel with double accumulation; ``precision`` ignored.
* Tiny problems (B*N*K <= 2**20) take the FMA kernel for every dtype and precision: they are launch-bound, the FMA
  kernel needs no large shared-memory carve-out, and its fp32 result is at least as accurate as the requested mode.

The tensor-core kernel reads tiles with 16-byte ``cp.async`` when both x and w have 16-byte aligned base pointers and
row strides (``K % 4 == 0`` for fp32 contiguous rows); otherwise a variant with element loads (same results, slower)
is launched. Offsets are 64-bit; B, N and K must each be below 2**31.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from pathlib import Path

from cupy_fused import loader

PRECISIONS = ("ieee", "tf32", "tf32x3", "bf16")
_SOURCE = Path(__file__).resolve().parent / "kernels" / "fused_v5.cu"


class _kernels:  # the old loader's interface, over the lab source
    has_tensor_cores = staticmethod(loader.has_tensor_cores)
    arch_of = staticmethod(loader.arch_of)

    @staticmethod
    @functools.lru_cache(maxsize=None)
    def get_function(filename, name, device_id=None):
        import cupy

        device_id = cupy.cuda.Device().id if device_id is None else device_id
        with cupy.cuda.Device(device_id):
            module = cupy.RawModule(code=_SOURCE.read_text(), name_expressions=(name,), backend="nvrtc",
                                    options=("-std=c++17", f"-I{loader.kernel_dir()}", f"-arch={loader.arch_of(device_id)}"))
            return module.get_function(name)

    @staticmethod
    def kernel_dir():
        return loader.kernel_dir()

FILENAME = "fused_v5.cu"
_NATIVE16 = 4
_CTYPE = {"float32": "float", "float64": "double", "float16": "__half", "bfloat16": "__nv_bfloat16"}
_ITEMSIZE = {"float32": 4, "float64": 8, "float16": 2, "bfloat16": 2}
_GROUP_M = 8  # M tiles per raster group (L2 reuse of x and W rows among resident blocks)


@dataclass(frozen=True)
class TileConfig:
    """Tensor-core tile: block BM x BN, warp tile WM x WN, pipeline depth, min blocks per SM (launch bounds)."""

    bm: int
    bn: int
    wm: int
    wn: int
    stages: int
    minb: int

    @property
    def threads(self) -> int:
        return (self.bm // self.wm) * (self.bn // self.wn) * 32

    def smem_bytes(self) -> int:
        # every smem row holds 128 bytes (BK = 128 / itemsize); stages * (BM + BN) rows
        return self.stages * (self.bm + self.bn) * 128


# Tile table (H100 measurements in benchmarks/NOTES.md). Kernel modes: 1 tf32, 2 tf32x3 (accumulates straight into
# the tensor-core accumulators: NOT fp32-accurate over long K, kept for the lab), 3 bf16 from fp32, 4 native fp16 /
# bf16, 5 tf32x3 with an fp32 add per k tile (the "tf32x3" precision).
_T128x128_W64x32_M2 = TileConfig(128, 128, 64, 32, 3, 2)  # 8 warps of 64 x 32, 96 KiB smem, 2 blocks / SM
_T128x128_W64x64_M2 = TileConfig(128, 128, 64, 64, 3, 2)  # 4 warps of 64 x 64, 96 KiB smem, 2 blocks / SM
_T128x256_W64x64_M1 = TileConfig(128, 256, 64, 64, 3, 1)  # 8 warps of 64 x 64, 144 KiB smem, 1 block / SM
_T128x128_W64x32_M1 = TileConfig(128, 128, 64, 32, 3, 1)  # 8 warps of 64 x 32, 96 KiB smem, <= 255 registers
_FLOAT_MODE = {"tf32": 1, "tf32x3": 5, "bf16": 3}  # float32 precision -> kernel mode
_SMALL_B = 256  # B at or below this: the wide N tile (x is re-read from L2 once per N tile; W streamed once)
CONFIGS: dict[int, tuple[TileConfig, TileConfig]] = {  # mode -> (config for B <= _SMALL_B, config for larger B)
    1: (_T128x256_W64x64_M1, _T128x128_W64x64_M2),
    2: (_T128x256_W64x64_M1, _T128x128_W64x64_M2),
    3: (_T128x128_W64x32_M2, _T128x128_W64x32_M2),
    4: (_T128x256_W64x64_M1, _T128x128_W64x64_M2),
    5: (_T128x128_W64x32_M1, _T128x128_W64x32_M1),
}
# Mode 6: the sm_90a wgmma TF32 kernel (fls_wgmma, BM = 128, BN = cfg.bn, cfg.stages; wm / wn / minb unused);
# mode 7: the same without rounding (tensor cores truncate; lab only). Used for "tf32" on sm_90a (H100) with 16-byte
# aligned operands when USE_WGMMA: 5-13 % faster than the mma.sync kernel at the three large target shapes.
WGMMA_CONFIG = TileConfig(128, 256, 64, 256, 4, 1)
USE_WGMMA = True
# Modes 8-11: the warp-specialised sm_90a kernel fls_wgmma_ws (producer warpgroup + 2 consumer warpgroups, mbarrier
# ring of cfg.stages 32-wide k tiles; BM = 128, BN = cfg.bn). 8: tf32 rounded by the producer, L2::256B prefetch hint;
# 9: as 8 without rounding (truncation, lab only); 10: as 8 without the prefetch hint (lab only); 11: tf32x3 with
# hi / lo tiles split by the producer and the per-k-tile fp32 promotion; 12 / 13: tf32 / tf32x3 with the producer
# copying through registers (ld.global, round / split, st.shared: no second shared-memory pass) and L2 prefetch.
WGMMA_WS_CONFIG = TileConfig(128, 256, 64, 256, 4, 1)
WGMMA_X3_CONFIG = TileConfig(128, 128, 64, 128, 3, 1)
_WS_MODES = {8: (0, True), 9: (1, True), 10: (0, False), 11: (2, True), 12: (3, True), 13: (4, True)}
_WS_X3_MODES = (11, 13)
WGMMA_TF32_MODE = 8  # mode used for "tf32" on sm_90a with aligned operands (6: the older fls_wgmma)
USE_WGMMA_X3 = True  # "tf32x3" on sm_90a with aligned operands: WGMMA_X3_MODE (else mode 5, mma.sync)
WGMMA_X3_MODE = 11
_TINY_MACS = 1 << 20  # B*N*K at or below this: the FMA kernel (launch-bound; exact fp32, no large smem carve-out)


def config_for(mode: int, B: int) -> TileConfig:
    small, large = CONFIGS[mode]
    return small if B <= _SMALL_B else large


_NAMES: dict = {}


def _dtype_name(dtype, logical_dtype: str | None = None) -> str:
    if logical_dtype is not None:
        if logical_dtype != "bfloat16":
            raise ValueError(f"unsupported logical_dtype {logical_dtype!r}")
        return "bfloat16"
    name = _NAMES.get(dtype) or _NAMES.setdefault(dtype, np.dtype(dtype).name)  # numpy's .name is slow per call
    if name not in _CTYPE or name == "bfloat16":
        raise TypeError(f"unsupported dtype {name}")
    return name


def mma_name(ctype: str, mode: int, cfg: TileConfig, aligned: bool) -> str:
    return (
        f"fls::fls_mma<{ctype}, {mode}, {cfg.bm}, {cfg.bn}, {cfg.wm}, {cfg.wn}, {cfg.stages}, {cfg.minb}, "
        f"{'true' if aligned else 'false'}>"
    )


def wgmma_name(cfg: TileConfig, rounding: bool = True) -> str:
    return f"fls::fls_wgmma<{cfg.bn}, {cfg.stages}, {'true' if rounding else 'false'}>"


def wgmma_ws_name(cfg: TileConfig, mode: int) -> str:
    kmode, pf = _WS_MODES[mode]
    return f"fls::fls_wgmma_ws<{kmode}, {cfg.bn}, {cfg.stages}, {'true' if pf else 'false'}>"


def fma_name(ctype: str) -> str:
    return f"fls::fls_fma<{ctype}>"


def reduce_name(ctype: str) -> str:
    return f"fls::fls_reduce<{ctype}>"


def name_expressions() -> list[str]:
    """Every template instance ``run`` can launch (for the CI compile check)."""
    names = []
    for ctype, modes in (("float", sorted(set(_FLOAT_MODE.values()))), ("__half", [_NATIVE16]),
                         ("__nv_bfloat16", [_NATIVE16])):
        for mode in modes:
            for cfg in dict.fromkeys(CONFIGS[mode]):
                for aligned in (True, False):
                    names.append(mma_name(ctype, mode, cfg, aligned))
    names.append(wgmma_name(WGMMA_CONFIG))
    names.append(wgmma_ws_name(WGMMA_WS_CONFIG, WGMMA_TF32_MODE))
    names.append(wgmma_ws_name(WGMMA_X3_CONFIG, WGMMA_X3_MODE))
    for ctype in _CTYPE.values():
        names.append(fma_name(ctype))
        names.append(reduce_name(ctype))
    return names


def _aligned16(a) -> bool:
    return a.data.ptr % 16 == 0 and (a.strides[0] % 16 == 0 or a.shape[0] == 1)


def plan(B: int, N: int, K: int, dtype_name: str, precision: str, tensor_cores: bool = True,
         aligned: bool = True, cfg: TileConfig | None = None, mode: int | None = None, arch: str = ""):
    """(kernel name, threads, dynamic smem bytes, block tile (BM, BN), accumulator dtype) that ``run`` launches."""
    ctype = _CTYPE[dtype_name]
    tiny = B * N * K <= _TINY_MACS and cfg is None and mode is None
    if dtype_name == "float64" or not tensor_cores or tiny or (dtype_name == "float32" and precision == "ieee"):
        return fma_name(ctype), 256, 0, (64, 64), (np.float64 if dtype_name == "float64" else np.float32)
    if mode is None:
        mode = _FLOAT_MODE[precision] if dtype_name == "float32" else _NATIVE16
        if mode == 1 and USE_WGMMA and arch == "sm_90a":
            mode = WGMMA_TF32_MODE
        if mode == 5 and USE_WGMMA_X3 and arch == "sm_90a":
            mode = WGMMA_X3_MODE
    if mode in _WS_MODES:
        if aligned and arch == "sm_90a" and dtype_name == "float32":
            cfg = cfg or (WGMMA_X3_CONFIG if mode in _WS_X3_MODES else WGMMA_WS_CONFIG)
            smem = cfg.stages * (128 + cfg.bn) * 128 * (2 if mode in _WS_X3_MODES else 1) + 1024 + 256
            return wgmma_ws_name(cfg, mode), 384, smem, (128, cfg.bn), np.float32
        mode, cfg = (5 if mode in _WS_X3_MODES else 1), None  # unaligned operands or no wgmma: the mma.sync kernels
    if mode in (6, 7):
        if aligned and arch == "sm_90a" and dtype_name == "float32":
            cfg = cfg or WGMMA_CONFIG
            smem = cfg.stages * (128 + cfg.bn) * 128 + 1024
            return wgmma_name(cfg, mode == 6), 256, smem, (128, cfg.bn), np.float32
        mode, cfg = 1, None  # unaligned operands or no wgmma: the mma.sync TF32 kernel
    cfg = cfg or config_for(mode, B)
    return mma_name(ctype, mode, cfg, aligned), cfg.threads, cfg.smem_bytes(), (cfg.bm, cfg.bn), np.float32


@functools.lru_cache(maxsize=256)
def _launch(B: int, N: int, K: int, name: str, precision: str, aligned: bool, device_id: int, cfg, mode):
    """Everything run() needs to launch for one problem, computed once per shape (the per-call cost is a lookup):
    (kernel, threads, dynamic smem, blocks, N tiles, partials dtype name, reduce kernel or None)."""
    tensor_cores, arch = _kernels.has_tensor_cores(device_id), _kernels.arch_of(device_id)
    kname, threads, smem, (bm, bn), acc_dtype = plan(B, N, K, name, precision, tensor_cores, aligned, cfg, mode, arch)
    num_n = -(-N // bn)
    blocks = -(-B // bm) * num_n
    if blocks >= 2**31:
        raise ValueError("problem too large for one grid")
    kernel = _kernels.get_function(FILENAME, kname, device_id)
    if smem > 48 * 1024 and kernel.max_dynamic_shared_size_bytes < smem:
        kernel.max_dynamic_shared_size_bytes = smem
    reduce = _kernels.get_function(FILENAME, reduce_name(_CTYPE[name]), device_id) if num_n > 1 else None
    return kernel, threads, smem, blocks, num_n, np.dtype(acc_dtype).name, reduce


def run(x, w, bias, out, precision: str, stream, logical_dtype: str | None = None, *, new_array=None,
        _cfg: TileConfig | None = None, _mode: int | None = None):
    """out[b] = sum_n sigmoid(x[b] . w[n] + bias[n]).

    x: (B, K) cupy array, unit inner stride; w: (N, K), unit inner stride; bias: contiguous (N,) or None;
    out: contiguous (B,), written (not accumulated). All of one dtype (float32, float64, float16, or bfloat16 passed
    as uint16 views with ``logical_dtype="bfloat16"``), on the current device. Launched on ``stream``; the partials
    workspace (B x ceil(N/BN), float32, or float64 for float64 inputs) is allocated inside ``with stream:``, by
    ``new_array(shape, dtype_name)`` when given (the caller's library's allocator), else by cupy.
    ``_cfg`` / ``_mode`` override the tile configuration / kernel mode (benchmarks only)."""
    import cupy

    name = _dtype_name(x.dtype, logical_dtype)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    B, K = x.shape
    N, K2 = w.shape
    if K2 != K or out.shape != (B,) or (bias is not None and bias.shape != (N,)):
        raise ValueError("shape mismatch")
    if B < 1 or N < 1 or K < 1:
        raise ValueError("B, N, K must be >= 1")
    item = _ITEMSIZE[name]
    if x.strides[1] != item or w.strides[1] != item or out.strides[0] != item:
        raise ValueError("x and w need a unit inner stride and out must be contiguous")
    if bias is not None and bias.shape[0] > 1 and bias.strides[0] != item:
        raise ValueError("bias must be contiguous")
    if max(B, N, K) >= 2**31:
        raise ValueError("B, N and K must each be below 2**31")

    device_id = cupy.cuda.Device().id
    aligned = _aligned16(x) and _aligned16(w)
    kernel, threads, smem, blocks, num_n, acc_name, reduce = _launch(B, N, K, name, precision, aligned, device_id,
                                                                     _cfg, _mode)
    ldx = np.int64(x.strides[0] // item if B > 1 else K)
    ldw = np.int64(w.strides[0] // item if N > 1 else K)
    with stream:
        partial = None
        if num_n > 1:
            partial = (new_array or cupy.empty)((B, num_n), acc_name)
        args = (
            x, ldx, w, ldw,
            bias if bias is not None else np.uintp(0),
            partial if partial is not None else np.uintp(0),
            out, np.int32(B), np.int32(N), np.int32(K), np.int32(_GROUP_M),
        )
        kernel((blocks,), (threads,), args, shared_mem=smem, stream=stream)
        if num_n > 1:
            reduce((-(-B // 8),), (256,), (partial, out, np.int32(B), np.int32(num_n)), stream=stream)
