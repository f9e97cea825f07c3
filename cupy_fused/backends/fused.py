"""One-pass tile kernels: x @ W.T tile by tile in registers, bias + sigmoid + row sums in the epilogue, one launch.

Kernels (kernels/fused_mma.cu, fused_wgmma_sm90.cu, wgmma_small_batch_sm90.cu, fused_fma.cu) by dtype and precision:

* float32 "tf32" / "tf32x3": on sm_90a with 16-byte aligned operands the warp-specialised wgmma kernel (tf32: BN 256,
  4 stages; tf32x3: hi / lo tiles, BN 128, 3 stages; up to 128 rows first the small-batch wgmma kernel, W as wgmma's
  M and the batch as its N, and up to 64 rows then a 64-row tile, which computes half the padding rows of a 128-row
  one); elsewhere mma.sync (m16n8k8). "bf16": mma.sync m16n8k16 on operands rounded to bf16. Without tensor cores
  (compute capability below 8.0) every float32 precision runs the CUDA-core kernel, which is exact.
* float32 "ieee", float64: the CUDA-core kernel (fp32 / fp64 FMA).
* float16 / bfloat16: mma.sync m16n8k16 with fp32 accumulation (the CUDA-core kernel without tensor cores).

When the tiles cannot fill the GPU, K is split (S splits of k_split values, a multiple of 64): the tile's splits
meet in a fixed order inside the launch (kernels/epilogue.cuh), as do the row sums of a row's N tiles. The workspace
(flags, row sums, z partials of the early splits) comes from the caller's allocator; none when one N tile and one
split do. Results are bit-identical from run to run. Offsets are 64-bit; B, N and K must each be below 2**31.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .. import loader
from . import CTYPE, Candidate, Problem, cpp_bool, round_up
from .launch import I32, I64, U64, Launch, LinearKernel, TensorMap, TiledMap, next_epoch

GROUP_M = 8  # M tiles per raster group (L2 reuse of x and W rows among resident blocks)
K_GRANULE = 64  # k_split is a multiple of every kernel's k tile (32 fp32 values, 64 16-bit values)


@dataclass(frozen=True)
class TileConfig:
    """A kernel configuration: file, template and its arguments, block tile, threads, dynamic shared memory, blocks
    per SM. Its instances differ in SAVE (whether the kernel also stores sigmoid'(z) for a training step)."""

    filename: str
    template: str
    args: tuple[str, ...]
    bm: int
    bn: int
    threads: int
    smem: int
    per_sm: int
    label: str

    @property
    def name(self) -> str:
        """The configuration's name (labels, the tuner's cache)."""
        return f"{self.template}<{', '.join(self.args)}>"

    def instance(self, saves: bool) -> str:
        """The name expression of the kernel instance that does (not) store sigmoid'(z)."""
        return f"{self.template}<{', '.join(self.args + (cpp_bool(saves),))}>"


def _mma(
    dtype: str, mode: str, bm: int, bn: int, wm: int, wn: int, stages: int, minb: int, aligned: bool
) -> TileConfig:
    args = (CTYPE[dtype], f"fused::Mode::{mode}", *map(str, (bm, bn, wm, wn, stages, minb)), cpp_bool(aligned))
    return TileConfig(
        "fused_mma.cu",
        "fused::mma_tile",
        args,
        bm,
        bn,
        (bm // wm) * (bn // wn) * 32,
        stages * (bm + bn) * 128,
        minb,
        f"mma.sync {mode} {bm}x{bn} (warp {wm}x{wn}, {stages} stages)" + ("" if aligned else ", element loads"),
    )


def _wgmma_smem(x3: bool, bn: int, stages: int, b_kmajor: bool = True, bm: int = 128) -> int:
    staging = 0 if b_kmajor else (stages - 1) * 32 * bn * 4  # an N-major b lands in LAG + 1 (32 x bn) tiles
    return stages * (bm + bn) * 128 * (2 if x3 else 1) + staging + 1024 + 256  # 1 KiB to align the ring, barriers


def _wgmma(x3: bool, bn: int, stages: int, bm: int = 128) -> TileConfig:
    smem = _wgmma_smem(x3, bn, stages, bm=bm)
    return TileConfig(
        "fused_wgmma_sm90.cu",
        "fused::wgmma_tile",
        (cpp_bool(x3), str(bn), str(stages), str(bm)),
        bm,
        bn,
        384,
        smem,
        1,
        f"wgmma warp-specialised {'TF32X3' if x3 else 'TF32'} {bm}x{bn} ({stages} stages)",
    )


def _wgmma_small_batch(x3: bool, bp: int, presplit: bool = False) -> TileConfig:
    """The small-batch wgmma kernel (wgmma_small_batch_sm90.cu): 128 rows of W by a batch of up to bp, as many
    64-wide k stages as fit (its stage_bytes<X3, BP>()); ``presplit`` (X3): x split into hi / lo once per call."""
    stage = (2 if x3 else 1) * bp * 256 + 128 * 256
    stages = min(6, 220 * 1024 // stage)
    return TileConfig(
        "wgmma_small_batch_sm90.cu",
        SmallBatchWgmma.TEMPLATE,
        (cpp_bool(x3), str(bp), str(stages), cpp_bool(presplit)),
        bp,
        128,
        384,
        stages * stage + 1024 + 256,
        1,
        f"wgmma small-batch {'TF32X3' if x3 else 'TF32'} W 128 rows x batch {bp} ({stages} stages"
        + (", x split once per call)" if presplit else ")"),
    )


def _fma(dtype: str) -> TileConfig:
    return TileConfig(
        "fused_fma.cu",
        "fused::fma_tile",
        (CTYPE[dtype],),
        64,
        64,
        256,
        0,
        2,
        f"CUDA-core FMA 64x64 ({'fp64' if dtype == 'float64' else 'fp32'})",
    )


_SMALL_B = 256  # batches up to this use the wide N tile where there is one (W is streamed once; x re-read from L2)
_HALF_TILE_ROWS = 64  # batches up to this try the 64-row wgmma tiles first
_SWAPPED_BATCHES = (8, 16, 32, 64, 128)  # the small-batch wgmma kernel's batch widths (x as wgmma's N)
# X3 at a batch width of 128 splits x once per call (a second launch) first where W has more elements than this:
# 128 x 4096 x 11008 144 against 150 us, 128 x 32768^2 2.24 against 2.66 ms; 128 x 1024^2 33 against 31 us (H100)
_PRESPLIT_MIN_KN = 1 << 24


def tile_configs(dtype: str, precision: str, rows: int, tensor_cores: bool, sm90a: bool, aligned: bool):
    """The kernels for a dtype / precision, preferred first (float32 precision; others ignore it)."""
    if dtype == "float64" or not tensor_cores or (dtype == "float32" and precision == "ieee"):
        return [_fma(dtype)]
    if dtype != "float32":
        wide = rows <= _SMALL_B
        return [_mma(dtype, "NATIVE16", 128, 256 if wide else 128, 64, 64, 3, 1 if wide else 2, aligned)]
    configs = []
    if sm90a and aligned and precision in ("tf32", "tf32x3"):
        x3 = precision == "tf32x3"
        bn, stages = (128, 3) if x3 else (256, 4)
        if rows <= _SWAPPED_BATCHES[-1]:
            bp = next(bp for bp in _SWAPPED_BATCHES if bp >= rows)
            configs.append(_wgmma_small_batch(x3, bp))
            if x3 and bp == _SWAPPED_BATCHES[-1]:
                configs.append(_wgmma_small_batch(x3, bp, presplit=True))
        if rows <= _HALF_TILE_ROWS:  # the shared memory of 128 + BN rows per stage holds one more stage
            configs.append(_wgmma(x3, bn, stages + 1, bm=64))
        configs.append(_wgmma(x3, bn, stages))
    if precision == "tf32":
        configs.append(
            _mma(dtype, "TF32", 128, 256, 64, 64, 3, 1, aligned)
            if rows <= _SMALL_B
            else _mma(dtype, "TF32", 128, 128, 64, 64, 3, 2, aligned)
        )
    elif precision == "tf32x3":
        configs.append(_mma(dtype, "TF32X3", 128, 128, 64, 32, 3, 1, aligned))
    else:
        configs.append(_mma(dtype, "BF16", 128, 128, 64, 32, 3, 2, aligned))
    return configs


def instances() -> dict[str, list[str]]:
    """Every instance this backend can launch, by source file (the CI compile check builds them all)."""
    names: dict[str, list[str]] = {}
    for dtype in CTYPE:
        for precision in ("ieee", "tf32", "tf32x3", "bf16"):
            for rows in (*_SWAPPED_BATCHES, _SMALL_B + 1):
                for aligned in (True, False):
                    for tc in (True, False):
                        for cfg in tile_configs(dtype, precision, rows, tc, True, aligned):
                            for saves in (False, True):
                                names.setdefault(cfg.filename, [])
                                if cfg.instance(saves) not in names[cfg.filename]:
                                    names[cfg.filename].append(cfg.instance(saves))
    names["fused_wgmma_sm90.cu"] += [X3Gemm.instance(True), X3Gemm.instance(False)]
    names["fused_wgmma_sm90.cu"].append(SigmoidGradGemm.INSTANCE)
    names["wgmma_shallow_sm90.cu"] = [ShallowGemm.INSTANCE]
    names["wgmma_grad_x_sm90.cu"] = [SmallBatchGradX.instance(bp) for bp in (64, 128)]
    names["wgmma_small_batch_sm90.cu"].append(SmallBatchWgmma.SPLIT_X)
    return names


def split_count(p: Problem, cfg: TileConfig, sms: int) -> int:
    """Splits of K so that the tiles fill the GPU, each split at least four k granules long."""
    return _splits(-(-p.rows // cfg.bm) * -(-p.n // cfg.bn), cfg.per_sm * sms, p.k)


def _splits(tiles: int, slots: int, k: int) -> int:
    """No split when the tiles fill the GPU; else the split count (at most twice what one wave needs) with the fewest
    waves per unit of a tile's work: 32 tiles on 132 SMs split 4 ways run in one wave, 5 ways in two."""
    if tiles >= slots:
        return 1
    most = max(1, min(2 * -(-slots // tiles), k // (4 * K_GRANULE)))
    return min(range(1, most + 1), key=lambda s: (-(-tiles * s // slots) / s, s))


def _k_split(k: int, splits: int) -> tuple[int, int]:
    """(k_split, splits): each split's K length rounded up to the k granule, and the splits that leaves."""
    if not k:
        return K_GRANULE, 1
    k_split = round_up(-(-k // splits), K_GRANULE)
    return k_split, -(-k // k_split)


def _split_workspace_bytes(tiles: int, splits: int, rows: int, num_n: int, bm: int, bn: int, acc: int) -> int:
    """The tile kernels' workspace (kernels/epilogue.cuh): flags, row-sum partials, the early splits' tiles."""
    return round_up(tiles * splits * 8, 16) + round_up(rows * num_n * acc, 16) + tiles * (splits - 1) * bm * bn * acc


class TileKernel(LinearKernel):
    def __init__(self, p: Problem, cfg: TileConfig, splits: int):
        k_split, splits = _k_split(p.k, splits)
        self.splits = splits
        num_m, num_n = -(-p.rows // cfg.bm), -(-p.n // cfg.bn)
        tiles = num_m * num_n
        acc = p.acc_itemsize
        self.workspace_bytes = (
            0
            if (num_n == 1 and splits == 1)
            else _split_workspace_bytes(tiles, splits, p.rows, num_n, cfg.bm, cfg.bn, acc)
        )
        self._cfg = cfg
        self._make_launch(
            p,
            loader.function(cfg.filename, cfg.instance(p.saves), p.device_id),
            cfg.instance(p.saves),
            tiles * splits,
            cfg.threads,
            cfg.smem,
            k_split,
            splits,
            GROUP_M,
            self._operands(),
        )

    def _operands(self) -> list | None:
        """The kernel's parameters before (bias, ...): None for (x, ldx, w, ldw), given per call."""
        return None

    def describe(self) -> str:
        return f"{self._launch!r} {self._cfg.label}, split-K S={self.splits}"


def split_copy_bytes(rows: int, k: int) -> int:
    """sbw::split_x's copy of a (rows x k) float32 array: hi and lo rows of k rounded up to 4 floats (16-byte rows
    for a tensor map)."""
    return 2 * rows * round_up(k, 4) * 4


def _split_x_launch(rows: int, k: int, ld: int, device_id: int) -> Launch:
    """sbw::split_x over a (rows x k) array of row stride ``ld`` into its split copy (row stride k rounded up to 4):
    ``launch(stream, src, dst)``."""
    blocks = max(1, min(-(-rows * k // 1024), 4 * loader.device_info(device_id).sms))
    name = SmallBatchWgmma.SPLIT_X
    params = [(U64, None), (I64, ld), (U64, None), (I32, rows), (I32, k), (I32, round_up(k, 4))]
    return Launch(
        loader.function("wgmma_small_batch_sm90.cu", name, device_id), name, blocks, 256, 0, params, device_id
    )


class SmallBatchWgmma(TileKernel):
    """The small-batch wgmma kernel (wgmma_small_batch_sm90.cu, sm_90a): a tile kernel (one tile of rows: the batch)
    whose x and W reach it through TMA tensor maps instead of (x, ldx, w, ldw), each re-encoded when its array's
    address changes (a layer's weight: once), so it takes 16-byte aligned rows. A presplit configuration first
    writes x's hi / lo split (2B rows of K, rounded up to 4) into the workspace, after the split-K section, and
    maps that."""

    TEMPLATE = "sbw::wgmma_small_batch"
    SPLIT_X = "sbw::split_x"

    @classmethod
    def presplits(cls, cfg: TileConfig) -> bool:
        """Whether ``cfg`` is this kernel splitting x once per call (its last template argument, PRESPLIT)."""
        return cfg.template == cls.TEMPLATE and cfg.args[-1] == "true"

    def __init__(self, p: Problem, cfg: TileConfig, splits: int):
        if p.rows > cfg.bm:  # one tile of rows: the kernel reads batch rows 0..BP-1 only
            raise ValueError(f"{cfg.name} takes a batch of at most {cfg.bm} rows, got {p.rows}")
        self._presplit = self.presplits(cfg)
        if self._presplit:
            self._x_map = TiledMap(2 * p.rows, p.k, round_up(p.k, 4), cfg.bm)
        else:
            self._x_map = TiledMap(p.rows, p.k, p.ldx, cfg.bm)
        self._w_map = TiledMap(p.n, p.k, p.ldw, cfg.bn)
        self._lock = threading.Lock()  # a call's maps and the launch that reads them
        super().__init__(p, cfg, splits)
        if self._presplit:
            self._split_offset = round_up(self.workspace_bytes, 256)
            self.workspace_bytes = self._split_offset + split_copy_bytes(p.rows, p.k)
            self._split = _split_x_launch(p.rows, p.k, p.ldx, p.device_id)

    def _operands(self) -> list:
        return [(TensorMap, self._x_map.value), (TensorMap, self._w_map.value)]

    def run(self, x, w, b, out, workspace, stream, saved=0):
        with self._lock:
            if self._presplit:
                split = workspace + self._split_offset
                self._split(stream, x, split)
                x = split
            self._x_map.point_at(x)
            self._w_map.point_at(w)
            self._launch(stream, b, workspace, out, saved, next_epoch())


def tile_kernel(p: Problem, cfg: TileConfig, splits: int):
    """The executable of a tile configuration at a split count."""
    return (SmallBatchWgmma if cfg.template == SmallBatchWgmma.TEMPLATE else TileKernel)(p, cfg, splits)


class X3Gemm:
    """c (m x n, row stride ldc) = a (m x k) . b.T, or c += it, in tf32x3 (fp32-accurate) on the wgmma main loop of
    the forward (fused_wgmma_sm90.cu: wgmma_gemm), K split when the tiles cannot fill the GPU. a row-major (m x k);
    b row-major (n x k) with ``b_kmajor``, else b.T given as a row-major (k x n) array (ldb its row stride: the
    kernel transposes tiles as it loads them, slower per tile than a K-major b but with no copy to make).
    16-byte aligned addresses and row strides that are multiples of 4. sm_90a only.
    ``run(a, b, c, workspace, stream, accumulate=False)``."""

    BN, STAGES = 128, 3

    @classmethod
    def instance(cls, b_kmajor: bool) -> str:
        return f"fused::wgmma_gemm<{cls.BN}, {cls.STAGES}, {cpp_bool(b_kmajor)}>"

    def __init__(self, m: int, n: int, k: int, lda: int, ldb: int, ldc: int, device_id: int, b_kmajor: bool = True):
        if lda % 4 or ldb % 4:
            raise ValueError(f"X3Gemm needs row strides that are multiples of 4, got lda={lda}, ldb={ldb}")
        num_m, num_n = -(-m // 128), -(-n // self.BN)
        tiles = num_m * num_n
        k_split, splits = _k_split(k, _splits(tiles, loader.device_info(device_id).sms, k))
        self.splits = splits
        self.workspace_bytes = 0 if splits == 1 else _split_workspace_bytes(tiles, splits, m, num_n, 128, self.BN, 4)
        scalars = [(I32, m), (I32, n), (I32, k), (I32, splits), (I64, k_split), (I32, GROUP_M)]
        params = [(U64, None), (I64, lda), (U64, None), (I64, ldb), (U64, None), (U64, None), (I64, ldc)]
        params += scalars + [(I32, None), (U64, None)]
        name = self.instance(b_kmajor)
        self._launch = Launch(
            loader.function("fused_wgmma_sm90.cu", name, device_id),
            name,
            tiles * splits,
            384,
            _wgmma_smem(True, self.BN, self.STAGES, b_kmajor),
            params,
            device_id,
        )

    def run(self, a: int, b: int, c: int, workspace: int, stream: int, accumulate: bool = False) -> None:
        self._launch(stream, a, b, workspace, c, int(accumulate), next_epoch())

    def __repr__(self) -> str:
        return f"{self._launch!r} tf32x3 GEMM, split-K S={self.splits}"


class SigmoidGradGemm:
    """The backward's recompute fused with sigmoid' (fused_wgmma_sm90.cu: wgmma_sigmoid_grad): gz = g * sigmoid'(x .
    w.T + bias) in tf32x3 for x (m x k) and a chunk w (n x k) of W's rows, written row-major to z (row stride ldz),
    transposed to zt (row stride ldzt) and as column sums per 64-row tile to partial (row stride ldp), each where its
    address is not 0; z itself is never stored. On X3Gemm's main loop and tile, K split when the tiles cannot fill
    the GPU. 16-byte aligned rows of x and w. sm_90a only. ``run(x, w, bias, g, z, zt, partial, workspace, stream)``
    (bias may be 0)."""

    BN, STAGES = X3Gemm.BN, X3Gemm.STAGES
    INSTANCE = f"fused::wgmma_sigmoid_grad<{BN}, {STAGES}>"

    def __init__(self, m, n, k, ldx, ldw, ldz, ldzt, ldp, device_id: int):
        if ldx % 4 or ldw % 4:
            raise ValueError(f"SigmoidGradGemm needs row strides that are multiples of 4, got ldx={ldx}, ldw={ldw}")
        num_n = -(-n // self.BN)
        tiles = -(-m // 128) * num_n
        k_split, splits = _k_split(k, _splits(tiles, loader.device_info(device_id).sms, k))
        self.splits = splits
        self.workspace_bytes = 0 if splits == 1 else _split_workspace_bytes(tiles, splits, m, num_n, 128, self.BN, 4)
        params = [(U64, None), (I64, ldx), (U64, None), (I64, ldw), (U64, None), (U64, None), (U64, None)]
        params += [(U64, None), (I64, ldz), (U64, None), (I64, ldzt), (U64, None), (I64, ldp)]
        params += [(I32, m), (I32, n), (I32, k), (I32, splits), (I64, k_split), (I32, GROUP_M), (U64, None)]
        self._launch = Launch(
            loader.function("fused_wgmma_sm90.cu", self.INSTANCE, device_id),
            self.INSTANCE,
            tiles * splits,
            384,
            _wgmma_smem(True, self.BN, self.STAGES),
            params,
            device_id,
        )

    def run(self, x, w, bias, g, z, zt, partial, workspace, stream) -> None:
        self._launch(stream, x, w, bias, g, workspace, z, zt, partial, next_epoch())

    def __repr__(self) -> str:
        return f"{self._launch!r} recompute + sigmoid', split-K S={self.splits}"


class ShallowGemm:
    """c (m x n, row stride ldc) = a (m x k) . bt (k x n) in tf32x3 for k <= MAX_K, on a resident wgmma kernel
    (wgmma_shallow_sm90.cu): grad_W = gz.T . x at small batches, where X3Gemm stores its tiles with the tensor cores
    idle. a row-major with 16-byte aligned rows (lda a multiple of 4); bt row-major, any row stride; one block an
    SM, so it pays only where the tiles are many (MIN_TILES_PER_SM). sm_90a only. ``run(a, bt, c, workspace,
    stream)`` (no workspace used)."""

    MAX_K = 128
    MIN_TILES_PER_SM = 8  # 64 x 128 tiles; H100: 5.7 a SM (3000 x 2048) slower than X3Gemm, 15.5 (4096^2) faster
    INSTANCE = "shallow::wgmma_shallow"
    SMEM = 1024 + 2 * 64 * 1024  # 1 KiB to align; B's hi and lo values for 128 columns and k <= 128

    @classmethod
    def pays(cls, m: int, n: int, k: int, sms: int) -> bool:
        """Whether the kernel applies and beats X3Gemm for c (m x n) over a reduction of k."""
        return 0 < k <= cls.MAX_K and -(-m // 64) * -(-n // 128) >= cls.MIN_TILES_PER_SM * sms

    def __init__(self, m: int, n: int, k: int, lda: int, ldb: int, ldc: int, device_id: int):
        if not 0 < k <= self.MAX_K or lda % 4:
            raise ValueError(f"ShallowGemm needs 0 < k <= {self.MAX_K} and lda % 4 == 0, got k={k}, lda={lda}")
        self.workspace_bytes = 0
        params = [(U64, None), (I64, lda), (U64, None), (I64, ldb), (U64, None), (I64, ldc), (I32, m), (I32, n)]
        self._launch = Launch(
            loader.function("wgmma_shallow_sm90.cu", self.INSTANCE, device_id),
            self.INSTANCE,
            loader.device_info(device_id).sms,
            256,
            self.SMEM,
            params + [(I32, k)],
            device_id,
        )

    def run(self, a: int, bt: int, c: int, workspace: int, stream: int) -> None:
        self._launch(stream, a, bt, c)

    def __repr__(self) -> str:
        return f"{self._launch!r} tf32x3 shallow GEMM"


class SmallBatchGradX:
    """c (m x n, row stride ldc) = a (m x k) . b (k x n) (+ c), m <= MAX_M, in tf32x3 on a wgmma kernel that reads b
    as it is, N-major (wgmma_grad_x_sm90.cu): grad_x = gz . W at small batches, W streamed once. It first writes a's
    hi / lo split into its workspace (SmallBatchWgmma's split_x), after the split-K section. a and b row-major with
    16-byte aligned rows (row strides multiples of 4, 16-byte aligned addresses: both are read through tensor maps,
    re-encoded when an address changes). sm_90a only. ``run(a, b, c, workspace, stream, accumulate=False)``."""

    MAX_M = 128
    TEMPLATE = "sbx::wgmma_grad_x"
    BM, RING_BYTES = 128, 192 * 1024  # columns of c a block; the stages' shared memory (the kernel's)

    @classmethod
    def instance(cls, bp: int) -> str:
        return f"{cls.TEMPLATE}<{bp}>"

    def __init__(self, m: int, n: int, k: int, lda: int, ldb: int, ldc: int, device_id: int):
        if not 0 < m <= self.MAX_M or lda % 4 or ldb % 4:
            raise ValueError(
                f"SmallBatchGradX needs 0 < m <= {self.MAX_M} and row strides that are multiples of 4, "
                f"got m={m}, lda={lda}, ldb={ldb}"
            )
        bp = 64 if m <= 64 else 128
        sms = loader.device_info(device_id).sms
        tiles = -(-n // self.BM)
        n_split, splits = _k_split(k, _splits(tiles, sms, k))
        self.splits = splits
        split_ws = 0 if splits == 1 else _split_workspace_bytes(tiles, splits, n, 1, self.BM, bp, 4)
        self._split_offset = round_up(split_ws, 256)
        self.workspace_bytes = self._split_offset + split_copy_bytes(m, k)
        self._a_map = TiledMap(2 * m, k, round_up(k, 4), bp)
        self._b_map = TiledMap(k, n, ldb, 64)
        self._lock = threading.Lock()  # a call's maps and the launch that reads them
        self._split = _split_x_launch(m, k, lda, device_id)
        name = self.instance(bp)
        stage_bytes = 2 * bp * 64 * 4 + 64 * self.BM * 4
        self._launch = Launch(
            loader.function("wgmma_grad_x_sm90.cu", name, device_id),
            name,
            tiles * splits,
            384,
            self.RING_BYTES // stage_bytes * stage_bytes + 1024 + 256,  # 1 KiB to align the ring, barriers
            [(TensorMap, self._a_map.value), (TensorMap, self._b_map.value), (U64, None), (U64, None), (I64, ldc)]
            + [(I32, m), (I32, k), (I32, n), (I32, splits), (I64, n_split), (I32, None), (U64, None)],
            device_id,
        )

    def run(self, a: int, b: int, c: int, workspace: int, stream: int, accumulate: bool = False) -> None:
        with self._lock:
            split = workspace + self._split_offset
            self._split(stream, a, split)
            self._a_map.point_at(split)
            self._b_map.point_at(b)
            self._launch(stream, workspace, c, int(accumulate), next_epoch())

    def __repr__(self) -> str:
        return f"{self._launch!r} tf32x3 small-batch grad_x GEMM, split-K S={self.splits}"


def candidates(p: Problem, precision: str, info, tuning: bool) -> list[Candidate]:
    """The static choice first (the preferred kernel with its split count); with tuning, the other kernel of the
    precision and neighbouring split counts too. ``info``: the device (loader.DeviceInfo)."""
    configs = tile_configs(p.dtype, precision, p.rows, info.tensor_cores, info.arch == "sm_90a", p.aligned)
    presplit = [c for c in configs if SmallBatchWgmma.presplits(c)]
    if presplit:
        configs = [c for c in configs if c not in presplit]
        if split_copy_bytes(p.rows, p.k) <= p.workspace_limit:
            configs.insert(0 if p.k * p.n > _PRESPLIT_MIN_KN else 1, presplit[0])
    choices = [(configs[0], split_count(p, configs[0], info.sms))]
    if tuning:
        for cfg in configs:
            base = split_count(p, cfg, info.sms)
            for splits in sorted({base, 1, 2 * base, max(1, base // 2)}):
                if (cfg, splits) not in choices and (splits == 1 or p.k >= splits * K_GRANULE):
                    choices.append((cfg, splits))
    return [
        Candidate(
            "fused",
            "ieee" if cfg.filename == "fused_fma.cu" else precision,
            f"{cfg.name}:s{splits}",
            lambda cfg=cfg, s=splits: tile_kernel(p, cfg, s),
        )
        for cfg, splits in choices
    ]
