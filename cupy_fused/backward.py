"""The backward of out = sum_j sigmoid(x @ W.T + b): one implementation for both faces (the torch custom op and the
plain-array layer), planned once per signature like the forward.

With g the gradient of the output, s' = sigmoid'(x @ W.T + b):

    gz = g * s'     grad_x = gz @ W     grad_W = gz.T @ x     grad_b = gz.T @ 1

A training forward (``forward``) saves s' when its (B, N) block in x's dtype fits ``save_bytes`` (default: the workspace
bound, and any size for half inputs: ``save_budget``): the forward kernels write it in their epilogue, and the backward
then runs two GEMMs per chunk and no recompute. Otherwise z is recomputed: for float32 "tf32x3" (and the default) on
sm_90a with 16-byte aligned rows fused with sigmoid' (backends/fused.py: SigmoidGradGemm, whose epilogue writes gz, gz.T
and grad_b's column sums: z never reaches memory), elsewhere by a GEMM whose z a second kernel turns into gz. Either way
the backward works over chunks of N whose (B, chunk) blocks (z or gz, and gz.T when grad_W is asked for: the K-major
operand of grad_W = gz.T @ x, written by the kernel that forms gz) fit ``workspace_bytes``; the (B, N) matrix is never
formed beyond the saved s'. sigmoid' is taken as e / (1 + e)^2 with e = exp(-|z|) on the GPU and as 1 / (4 cosh(z /
2)^2) on the host (both accurate for every z). Only the gradients asked for are computed; the saved s' is only read.

Half inputs (float16, bfloat16) on the GPU: z (when recomputed), sigmoid' and gz are formed in float32 (a saved s' is
stored in the input type), gz is rounded to the input type once, as the GEMMs' operand, and the GEMMs run on half tensor
cores with float32 accumulation, reading x and W as they are (cuBLASLt); grad_x is summed over the chunks of N in
float32 (when there are several) and every gradient rounded to the input type once, grad_b from float32 sums. On the
host half inputs are computed in float32 and the gradients rounded at the end.

Precision of the GEMMs, chosen per call with no global state read or changed: the forward precision's row of
precision.TABLE. "tf32x3" for the fp32-accurate default and "tf32x3": float32 grad_W = gz.T @ x and
grad_x = gz @ W run on our wgmma kernels (sm_90a): the tile GEMM (backends/fused.py: X3Gemm) over K-major operands
(gz.T; x.T copied once; W.T copied per chunk from X3_GRAD_X_COPY_ROWS rows, below that the GEMM reads W as it is
when its rows are 16-byte aligned); at batches up to 128 grad_x runs on the small-batch kernel instead
(SmallBatchGradX: W as it is, streamed once; 16-byte aligned rows), and with enough tiles grad_W on the
shallow-reduction kernel (ShallowGemm: it reads x as it is, no x.T); everything else through strict fp32 cuBLASLt
(also the whole backward on other GPUs). "ieee": strict fp32; "tf32": TF32; "bf16":
bf16-rounded operands, all through cuBLASLt. cuBLAS's own TF32 GEMM on stacked hi / lo operands was measured and
refused: its tensor-core accumulation made the error 6.7x strict fp32's (benchmarks/NOTES.md). grad_b is summed in
the accumulator dtype by our kernels (per 64-row tile as gz is formed, then over the tiles), in a fixed order. The
NumPy backend is always strict.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import arrays, backends, checks
from .backends import CTYPE, ITEMSIZE, acc_dtype, cpp_bool, round_up
from .backends.host import compute_dtype, dsigmoid_into, store, widen
from .checks import MethodName
from .plans import CACHE, DEFAULT_WORKSPACE_BYTES, linear_key, resolve_linear
from .precision import TABLE, PrecisionName

HALF = ("float16", "bfloat16")
SIGMOID_GRAD_TILE_ROWS = 64  # rows of kernels/backward.cu's sigmoid_grad tiles: one partial column sum per tile
# grad_x in tf32x3 on X3Gemm (above SmallBatchGradX.MAX_M rows) reads W as it is below X3_GRAD_X_COPY_ROWS (needs
# 16-byte aligned rows), from there on a copy of W.T (the copy is cheaper than the GEMM's transposing loads). H100,
# benchmarks/NOTES.md session 6.
X3_GRAD_X_COPY_ROWS = 1024


def operand_dtype(dtype: str) -> str:
    """The dtype gz is rounded to as the GEMMs' operand: the input type for half inputs (their GEMMs run on half
    tensor cores with float32 accumulation, reading x and W as they are), else the accumulator dtype."""
    return dtype if dtype in HALF else acc_dtype(dtype)


def backward_precision(precision: str | None) -> str:
    """The precision of the backward GEMMs for a forward ``precision``: the table's backward column (None, the
    fp32-accurate default, as "tf32x3")."""
    return TABLE["tf32x3" if precision is None else precision].backward


def chunk_columns(rows: int, n: int, k: int, itemsize: int, half: bool, workspace_bytes: int) -> int:
    """Columns of N per backward chunk: the (rows, chunk) block of z, and for half inputs the float32 copies of the
    chunk's weight rows and of its weight gradient (2 x (chunk, k)), fit ``workspace_bytes`` (``itemsize`` is the
    compute dtype's). At least 1, a multiple of 8 when it is 8 or more (aligned slices), at most n."""
    return backends.chunk_columns(n, itemsize * (max(rows, 1) + (2 * k if half else 0)), workspace_bytes)


def saved_bytes(x_shape: tuple, n: int, dtype) -> int:
    """Bytes of sigmoid'(z)'s (B, N) block in x's dtype (x_shape: x's shape, at least 1-d; dtype: any library's
    float dtype)."""
    name = str(dtype)
    item = 8 if "float64" in name else 2 if "float16" in name else 4  # "float16" matches bfloat16 too
    return math.prod(x_shape[:-1]) * n * item


def save_budget(save_bytes: int | None, workspace_bytes: int, x_shape: tuple, n: int, dtype) -> int:
    """What a training forward may spend on saving sigmoid'(z): ``save_bytes`` when given, else the workspace bound,
    and for half inputs the saved block whatever its size. In x's dtype that block is the size of what torch autograd
    keeps of sigmoid's output, so saving it costs no more memory than torch's own step, where the recompute costs a
    fourth GEMM (benchmarks/NOTES.md, session 17)."""
    if save_bytes is not None:
        return save_bytes
    if any(h in str(dtype) for h in HALF):
        return max(workspace_bytes, saved_bytes(x_shape, n, dtype))
    return workspace_bytes


def saves(x_shape: tuple, n: int, dtype, budget: int) -> bool:
    """Whether a training forward saves sigmoid'(z): its (B, N) block in x's dtype fits ``budget`` bytes."""
    return len(x_shape) > 0 and saved_bytes(x_shape, n, dtype) <= budget


def forward(
    x: Any,
    weight: Any,
    bias: Any = None,
    *,
    precision: PrecisionName | None = None,
    method: MethodName = "auto",
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
    save_bytes: int | None = None,
) -> tuple[Any, Any]:
    """A training step's forward: (out, saved), saved being sigmoid'(z) as a (B, N) array of x's dtype
    in the operands' library when it fits ``save_bytes`` (None: ``save_budget``'s default; 0: never), else None (the
    backward then recomputes z). Same arguments and result as linear_sigmoid_sum otherwise."""
    n = weight.shape[0] if len(weight.shape) == 2 else 0
    shape, dtype = tuple(x.shape), getattr(x, "dtype", "")
    if not saves(shape, n, dtype, save_budget(checks.save_bytes(save_bytes), workspace_bytes, shape, n, dtype)):
        from .api import linear_sigmoid_sum

        return linear_sigmoid_sum(
            x, weight, bias, precision=precision, method=method, workspace_bytes=workspace_bytes
        ), None
    key: tuple[Any, ...] | None
    try:
        key = linear_key(x, weight, bias, precision, method, True, workspace_bytes) + ("saving",)
        found = CACHE.get(key)
    except TypeError:
        key = found = None
    if found is None:
        found = resolve_linear(key, x, weight, bias, precision, method, True, workspace_bytes, save=True)
    return found._run(x, weight, bias, None)


def grad(
    x: Any,
    weight: Any,
    bias: Any,
    grad_out: Any,
    *,
    precision: str | None = None,
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
    need: tuple[bool, bool, bool] = (True, True, True),
    saved: Any = None,
) -> tuple[Any, Any, Any]:
    """(grad_x like x, grad_weight (N, K), grad_bias (N,)) of ``sum(grad_out * linear_sigmoid_sum(x, weight, bias))``
    in the operands' library, device and dtype; a gradient not asked for in ``need`` (or grad_bias without a bias)
    is None. grad_out: (..., 1) or (...), x's leading shape. saved: what ``forward`` saved (None: recompute z)."""
    need = (bool(need[0]), bool(need[1]), bool(need[2]))
    key: tuple[Any, ...] | None
    try:
        key = (
            "backward",
            arrays.key(x),
            arrays.key(weight),
            arrays.key(bias),
            arrays.key(grad_out),
            arrays.key(saved),
            precision,
            workspace_bytes,
            type(workspace_bytes),
            need,
        )
        found = CACHE.get(key)
    except TypeError:
        key = found = None
    if found is None:
        found = _resolve(key, x, weight, bias, grad_out, saved, precision, workspace_bytes, need)
    return found(x, weight, bias, grad_out, saved)


def _resolve(key, x, weight, bias, grad_out, saved, precision, workspace_bytes, need):
    ops = [arrays.describe("x", x), arrays.describe("weight", weight)]
    if bias is not None:
        ops.append(arrays.describe("bias", bias))
    g_op = arrays.describe("grad_out", grad_out)
    checks.same_kind(ops + [g_op])
    checks.trainable(ops[0])
    checks.linear_shapes(ops[0], ops[1], ops[2] if bias is not None else None)
    precision = checks.precision(precision)
    workspace_bytes = checks.workspace_bytes(workspace_bytes)
    xo, wo = ops[0], ops[1]
    lead = xo.shape[:-1]
    if g_op.shape not in (lead + (1,), lead):
        raise ValueError(f"grad_out must have shape {lead + (1,)} or {lead} (x.shape[:-1] == {lead}), got {g_op.shape}")
    n, k = wo.shape
    rows = math.prod(lead)
    s_op = None
    if saved is not None:
        s_op = arrays.describe("saved", saved)
        if (
            (s_op.library, s_op.device, s_op.dtype, s_op.shape) != (xo.library, xo.device, xo.dtype, (rows, n))
            or (n > 1 and s_op.strides[-1] != 1)
            or not s_op.plain
            or (rows > 1 and n > 1 and s_op.strides[0] != n)
        ):
            raise ValueError(
                f"saved must be the contiguous ({rows}, {n}) {xo.dtype} array that forward() returned with "
                f"these operands, got a {s_op.library} {s_op.dtype} array of shape {s_op.shape}"
            )
    need_x, need_w, need_b = need[0], need[1], need[2] and bias is not None
    adapter = arrays.adapter_for(x)
    if xo.device == "cpu":
        run = _host_runner(adapter, xo, rows, k, n, need_x, need_w, need_b, workspace_bytes)
    else:
        checks.gpu_sizes(rows, k, n)
        run = _gpu_runner(
            adapter,
            ops,
            g_op,
            rows,
            k,
            n,
            need_x,
            need_w,
            need_b,
            backward_precision(precision if xo.dtype == "float32" else "ieee"),  # precision is float32's only
            workspace_bytes,
            saved is not None,
        )
    if key is not None:
        CACHE.add(key, run)
    return run


# ----------------------------------------------------------------------------------------------------------- host


def _host_runner(adapter, xo, rows, k, n, need_x, need_w, need_b, workspace_bytes):
    dtype = xo.dtype
    compute = compute_dtype(dtype)
    half = dtype in HALF
    step = chunk_columns(rows, n, k, np.dtype(compute).itemsize, half, workspace_bytes)
    empty = adapter.empty_fn(dtype, None)
    view, shape = adapter.host_view, xo.shape

    def run(x, w, b, g, saved):
        grad_x = empty(shape) if need_x else None
        grad_w = empty((n, k)) if need_w else None
        grad_b = empty((n,)) if need_b else None
        x2 = widen(view(x).reshape(rows, k), dtype)
        w2 = view(w)
        g2 = widen(view(g).reshape(rows, 1), dtype).astype(compute)
        sp = None if saved is None else view(saved)
        gx = np.zeros((rows, k), compute) if need_x else None
        gw = view(grad_w) if need_w else None
        gb = view(grad_b) if need_b else None
        block = np.empty((rows, step), compute)
        with np.errstate(all="ignore"):  # inf and NaN propagate quietly, as in torch
            for start in range(0, n, step):
                stop = min(start + step, n)
                wc = widen(w2[start:stop], dtype)
                z = block[:, : stop - start]
                if sp is None:
                    np.matmul(x2, wc.T, out=z)
                    dsigmoid_into(z, z, None if b is None else widen(view(b)[start:stop], dtype))
                else:
                    z[...] = widen(sp[:, start:stop], dtype)
                z *= g2  # gz = g * sigmoid'(z)
                if need_x:
                    gx += z @ wc
                if need_w:
                    store(z.T @ x2, gw[start:stop], dtype)
                if need_b:
                    store(z.sum(axis=0, dtype=compute), gb[start:stop], dtype)
        if need_x:
            store(gx, view(grad_x).reshape(rows, k), dtype)
        return grad_x, grad_w, grad_b

    return run


# ------------------------------------------------------------------------------------------------------------ GPU


class _GpuBackward:
    """The chunked backward on raw device addresses: cuBLASLt GEMMs (compute type per plan), our tf32x3 GEMMs
    (``x3``) and the kernels of kernels/backward.cu, everything queued on the caller's stream, workspace from the
    caller's allocator. With ``from_saved`` the chunk's gz comes from the saved s' (no z GEMM)."""

    def __init__(
        self, rows, k, n, dtype, ldx, ldw, aligned, g_stride, need, precision, workspace_limit, device_id, from_saved
    ):
        from . import loader
        from .backends.cublas import compute_type
        from .backends.cublaslt import Gemm, matmul_rows
        from .backends.fused import ShallowGemm, SigmoidGradGemm, SmallBatchGradX, X3Gemm
        from .backends.launch import I64, U64, Launch

        self.rows, self.k, self.n, self.dtype, self.need, self.from_saved = rows, k, n, dtype, need, from_saved
        half = self.half = dtype in HALF
        acc = acc_dtype(dtype)
        operand = operand_dtype(dtype)  # gz is formed in acc, then rounded to it
        self.item, self.acc_item, self.op_item = ITEMSIZE[dtype], ITEMSIZE[acc], ITEMSIZE[operand]
        self.ldx, self.ldw = ldx, ldw
        need_x, need_w, need_b = need
        # gz is written row-major (z) for grad_x and, for float32 and float64, transposed (gz.T, row stride rows4:
        # 16-byte aligned rows) for grad_W, whose GEMM then reads both operands along the batch without transposing
        # tiles (cuBLAS's TF32 GEMM with an N-major operand: 0.52 ms against 0.33 at 4096^3). Half inputs write gz
        # once, to a block of its own (gz_half), which both GEMMs read (16-bit tensor-core GEMMs take either major
        # at full speed). grad_b from column sums per 64-row tile.
        sm90a = dtype == "float32" and k > 0 and loader.device_info(device_id).arch == "sm_90a"
        # the tf32x3 recompute fused with sigmoid' (SigmoidGradGemm: its epilogue writes gz, gz.T and the column sums;
        # TF32 stays on cuBLAS, 3.5x faster than our TF32 main loop: benchmarks/NOTES.md session 13)
        fused_z = sm90a and not from_saved and aligned and precision == "tf32x3"
        # z (acc): an unfused recompute's z, and gz in place for grad_x where gz stays in acc
        z_block = not (from_saved or fused_z) or (need_x and not half)
        gz_half = half and (need_x or need_w)
        gz_t = need_w and not half
        rows4 = round_up(rows, 4)
        row_tiles = self.row_tiles = -(-rows // SIGMOID_GRAD_TILE_ROWS)
        x3 = sm90a and precision == "tf32x3"
        x3_w = x3 and need_w
        x3_x = x3 and need_x and (aligned or rows >= X3_GRAD_X_COPY_ROWS)
        wt_copy = x3_x and rows >= X3_GRAD_X_COPY_ROWS
        small_x = x3_x and rows <= SmallBatchGradX.MAX_M  # grad_x on SmallBatchGradX, over a split copy of gz

        def columns(x_t, wt_copy, gz_split, gx_acc=False):
            """Columns per chunk: each costs its z, gz and gz.T columns and its grad_b partial sums (and W.T's and the
            split copy of gz that SmallBatchGradX reads); x.T (``x_t``) is paid once. 0 when x.T takes more than half
            the workspace. ``gx_acc``: half grad_x accumulates over the chunks in float32 (rows x k, counted in
            the bound up to half of it)."""
            fixed = 4 * k * rows4 if x_t else 0
            if fixed > workspace_limit // 2:
                return 0
            # grad_b's partial sums and W.T share bytes: each chunk's sums are read before its W.T is copied
            column = self.acc_item * rows * z_block + self.op_item * (rows * gz_half + rows4 * gz_t)
            column += 8 * rows * gz_split + max(self.acc_item * row_tiles * need_b, 4 * k * wt_copy)
            fixed += min(4 * rows * k, workspace_limit // 2) * gx_acc
            step = backends.chunk_columns(n, column, max(workspace_limit - fixed, 0))
            if step == n and (workspace_limit - fixed) // column >= round_up(n, 4):
                step = round_up(n, 4)  # one chunk: z's row stride padded to a multiple of 4
            elif 8 <= step < n:  # chunks of equal width (a multiple of 8), no narrow last one
                step = min(step, round_up(-(-n // -(-n // step)), 8))
            return step

        sms = loader.device_info(device_id).sms
        # grad_W on the shallow-reduction kernel (reads x as it is) where it pays, else X3Gemm over a copy of x.T
        shallow = x3_w and rows <= ShallowGemm.MAX_K
        step = columns(x3_w and not shallow, wt_copy, small_x)
        if shallow and not ShallowGemm.pays(step, k, rows, sms):
            shallow, step = False, columns(x3_w, wt_copy, small_x)
        if not step:
            x3_w, step = False, columns(False, wt_copy, small_x)
        if x3_x and step % 4:  # the tf32x3 grad_x reads z with 16-byte aligned rows
            x3_x = wt_copy = small_x = False
            step = columns(x3_w and not shallow, False, False)
        self.gx_acc = half and need_x and step < n and k > 0  # grad_x summed over chunks in float32, rounded once
        if self.gx_acc:
            step = columns(False, False, False, gx_acc=True)
        self.step, self.x3_w, self.x3_x, self.wt_copy, self.small_x = step, x3_w, x3_x, wt_copy, small_x
        self.fused_z = fused_z
        self.x_t = x3_w and not shallow
        compute = compute_type(dtype, "ieee" if precision == "tf32x3" else precision)
        widths = sorted({min(step, n), n % step} - {0})
        # address alignment (bytes) of what the GEMMs read and write: x and W, the buffers in the workspace (16),
        # grad_x, and the chunks of grad_W
        x_al = w_al = 16 if aligned else self.item
        gw_al = 16 if (step * k * self.item) % 16 == 0 else self.item
        gx_out = acc if self.gx_acc or not half else dtype

        def grad_x_gemm(width):  # grad_x (rows x k) += gz (rows x width) . W chunk (width x k)
            if wt_copy:  # as gz . (W.T (k x width)).T
                return X3Gemm(rows, k, width, step, step, k, device_id)
            if small_x:  # W read as it is, streamed once
                return SmallBatchGradX(rows, k, width, step, self.ldw, k, device_id)
            if x3_x:  # W read as it is
                return X3Gemm(rows, k, width, step, self.ldw, k, device_id, b_kmajor=False)
            if need[0] and k:
                return Gemm(
                    k, rows, width, dtype, gx_out, compute, False, False, self.ldw, step, k, device_id, (w_al, 16, 16)
                )
            return None

        def z_gemm(width):  # the recompute: z (rows x width) = x . W chunk.T, or gz straight away (fused_z)
            if fused_z:
                return SigmoidGradGemm(rows, width, k, self.ldx, self.ldw, step, rows4, step, device_id)
            if k and not from_saved:
                return matmul_rows(
                    rows, width, k, dtype, acc, compute, self.ldx, self.ldw, step, device_id, (x_al, w_al, 16)
                )
            return None

        def grad_w_gemm(width):  # grad_W chunk (width x k) = gz.T (width x rows) . x (rows x k)
            if shallow:
                return ShallowGemm(width, k, rows, rows4, self.ldx, k, device_id)
            if x3_w:  # as gz.T . (x.T (k x rows)).T
                return X3Gemm(width, k, rows, rows4, rows4, k, device_id)
            if need[1] and k:  # as x (k x rows, column-major) . gz.T (rows x width, column-major; gz for half)
                align = (x_al, 16, gw_al)
                ldb = step if half else rows4
                return Gemm(k, width, rows, dtype, dtype, compute, False, half, self.ldx, ldb, k, device_id, align)
            return None

        self.gemms = {}
        for width in widths:
            self.gemms[width] = (z_gemm(width), grad_x_gemm(width), grad_w_gemm(width))
        lt = max([g.workspace_bytes for gemms in self.gemms.values() for g in gemms if g is not None] + [0])
        # bw::sigmoid_grad reads the caller's grad_out as it is (any type and row stride); SigmoidGradGemm (float32)
        # reads a contiguous column, copied when grad_out's rows are strided
        self.g_copy = fused_z and g_stride != 1
        sections = [
            ("z", rows * step * self.acc_item * z_block),
            # grad_b's column sums per 64-row tile, and the chunk's W.T copy once they are read
            ("partial", max(self.row_tiles * step * self.acc_item * need_b, 4 * k * step * wt_copy)),
        ]
        if self.g_copy:
            sections.append(("g", rows * self.acc_item))
        if gz_half:
            sections.append(("gz", rows * step * self.op_item))
        if self.gx_acc:
            sections.append(("gx32", rows * k * 4))
        if gz_t:
            sections.append(("gzT", step * rows4 * self.op_item))
        if self.x_t:
            sections.append(("xT", k * rows4 * 4))
        self.rows4 = rows4
        sections.append(("lt", lt))
        self.offsets, total = {}, 0
        for name, size in sections:
            self.offsets[name] = total
            total += round_up(size, 256)
        self.workspace_bytes = total

        def launch(name, grid, params):
            return Launch(loader.function("backward.cu", name, device_id), name, grid, 256, 0, params, device_id)

        t, a, o = CTYPE[dtype], CTYPE[acc], CTYPE[operand]
        convert_params = [(U64, None), (I64, None), (U64, None), (I64, None), (I64, None), (I64, None)]
        blocks = 4 * sms
        self.to_acc = launch(f"bw::convert<{t}, {a}>", blocks, convert_params) if self.g_copy else None
        self.from_acc = launch(f"bw::convert<{a}, {t}>", blocks, convert_params)
        self.sigmoid_grad = launch(
            f"bw::sigmoid_grad<{a}, {t}, {o}, {cpp_bool(from_saved)}>",
            8 * sms,  # a full GPU of 256-thread blocks
            [
                (U64, None),
                (I64, n if from_saved else step),
                (U64, None),
                (I64, step),
                (U64, None),
                (I64, rows4),
                (U64, None),
                (I64, step),
                (U64, None),
                (U64, None),
                (I64, g_stride),
                (I64, rows),
                (I64, None),
            ],
        )
        self.column_sums = launch(
            f"bw::column_sums<{a}, {t}>",
            min(blocks, -(-step // 32)),  # 32 columns a block
            [(U64, None), (I64, step), (I64, self.row_tiles), (U64, None), (I64, None)],
        )
        self.transpose = launch("bw::transpose<float>", 8 * sms, [(U64, None), (I64, None)] * 2 + [(I64, None)] * 2)
        self.g_stride = g_stride

    def run(self, x, w, b, g, saved, grad_x, grad_w, grad_b, ws, stream):
        from cupy.cuda import runtime

        rows, k, n, step, item = self.rows, self.k, self.n, self.step, self.item
        need_x, need_w, need_b = self.need
        off = self.offsets
        z, partial, lt = ws + off["z"], ws + off["partial"], ws + off["lt"]
        gz = ws + off["gz"] if "gz" in off else z  # grad_x's operand (and grad_W's for half inputs)
        gz_out = gz if need_x or "gz" in off else 0  # where bw::sigmoid_grad writes gz row-major, if anywhere
        gz_t = ws + off["gzT"] if "gzT" in off else 0
        gx = ws + off["gx32"] if self.gx_acc else grad_x
        if self.g_copy:
            g_column = ws + off["g"]
            self.to_acc(stream, g, self.g_stride, g_column, 1, rows, 1)
        else:
            g_column = g
        if self.x_t:
            self.transpose(stream, x, self.ldx, ws + off["xT"], self.rows4, rows, k)
        for start in range(0, n, step):
            width = min(step, n - start)
            z_gemm, gx_gemm, gw_gemm = self.gemms[width]
            w_chunk = w + start * self.ldw * item
            bias = b + start * item if b else 0
            if self.fused_z:
                z_gemm.run(x, w_chunk, bias, g_column, z if need_x else 0, gz_t, partial if need_b else 0, lt, stream)
            else:
                if self.from_saved:
                    src = saved + start * item
                elif z_gemm is None:  # K = 0: z is zero
                    runtime.memsetAsync(z, 0, rows * step * self.acc_item, stream)
                    src = z
                else:
                    z_gemm.run(w_chunk, x, z, lt, stream)
                    src = z
                self.sigmoid_grad(stream, src, gz_out, gz_t, partial if need_b else 0, bias, g, width)
            if need_b:
                self.column_sums(stream, partial, grad_b + start * item, width)
            if self.wt_copy:
                self.transpose(stream, w_chunk, self.ldw, partial, step, width, k)  # W.T where the sums were
                gx_gemm.run(z, partial, grad_x, lt, stream, accumulate=start > 0)
            elif self.x3_x:
                gx_gemm.run(z, w_chunk, grad_x, lt, stream, accumulate=start > 0)
            elif gx_gemm is not None:
                gx_gemm.run(w_chunk, gz, gx, lt, stream, accumulate=start > 0)
            if self.x3_w:  # gz.T . (x.T's copy) on X3Gemm, or gz.T . x as it is on the shallow kernel
                gw_gemm.run(gz_t, ws + off["xT"] if self.x_t else x, grad_w + start * k * item, lt, stream)
            elif gw_gemm is not None:
                gw_gemm.run(x, gz_t or gz, grad_w + start * k * item, lt, stream)
        if self.gx_acc:
            self.from_acc(stream, gx, k, grad_x, k, rows, k)


def _gpu_runner(adapter, ops, g_op, rows, k, n, need_x, need_w, need_b, precision, workspace_bytes, from_saved):
    from cupy.cuda import runtime

    from .planner import problem_of

    xo = ops[0]
    device_id = xo.device_id
    problem, (x_copy, w_copy, b_copy) = problem_of(ops, rows, k, n, workspace_bytes)
    g_stride = checks.rows_stride(g_op.shape + (1,), g_op.strides + (1,))
    g_copy = not g_op.plain or g_stride is None
    g_stride = 1 if g_copy or rows <= 1 else g_stride
    empty = adapter.empty_fn(xo.dtype, device_id)
    empty_bytes = adapter.empty_fn("uint8", device_id)
    current = adapter.stream_fn(device_id)
    ptr, prepare, zero = adapter.pointer, adapter.prepare, adapter.zero
    work = rows > 0 and n > 0 and (need_x or need_w or need_b)
    exe = (
        _GpuBackward(
            rows,
            k,
            n,
            xo.dtype,
            problem.ldx,
            problem.ldw,
            problem.aligned,
            g_stride,
            (need_x, need_w, need_b),
            precision,
            workspace_bytes,
            device_id,
            from_saved,
        )
        if work
        else None
    )
    shape = xo.shape
    item = ITEMSIZE[xo.dtype]
    needs = {
        "gradients": (rows * k * need_x + n * k * need_w + n * need_b) * item,
        "workspace": exe.workspace_bytes if work else 0,
        "copies of x, weight and grad_out": (rows * k * x_copy + n * k * w_copy + rows * g_copy) * item,
    }

    def run(x, w, b, g, saved):
        previous = runtime.getDevice()
        if previous != device_id:
            runtime.setDevice(device_id)
        try:
            return body(x, w, b, g, saved)
        except adapter.out_of_memory as exc:
            raise checks.device_memory_error("the backward", device_id, needs) from exc
        finally:
            if previous != device_id:
                runtime.setDevice(previous)

    def body(x, w, b, g, saved):
        grad_x = empty(shape) if need_x else None
        grad_w = empty((n, k)) if need_w else None
        grad_b = empty((n,)) if need_b else None
        if not work:
            for out in (grad_x, grad_w, grad_b):
                if out is not None:
                    zero(out)
            return grad_x, grad_w, grad_b
        if x_copy:
            x = prepare(x.reshape(rows, k))
        if w_copy:
            w = prepare(w)
        if b_copy:
            b = prepare(b)
        if g_copy:
            g = prepare(g.reshape(rows))
        ws = empty_bytes((exe.workspace_bytes,))
        exe.run(
            ptr(x),
            ptr(w),
            0 if b is None else ptr(b),
            ptr(g),
            0 if saved is None else ptr(saved),
            0 if grad_x is None else ptr(grad_x),
            0 if grad_w is None else ptr(grad_w),
            0 if grad_b is None else ptr(grad_b),
            ptr(ws),
            current(),
        )
        return grad_x, grad_w, grad_b

    return run


def instances() -> list[str]:
    """Every instance of kernels/backward.cu the backward can launch (the CI compile check builds them all)."""
    names = []
    for dtype, t in CTYPE.items():
        a, o = CTYPE[acc_dtype(dtype)], CTYPE[operand_dtype(dtype)]
        names += [
            f"bw::column_sums<{a}, {t}>",
            f"bw::convert<{a}, {t}>",  # float32's also copies a strided grad_out for SigmoidGradGemm
            f"bw::sigmoid_grad<{a}, {t}, {o}, false>",
            f"bw::sigmoid_grad<{a}, {t}, {o}, true>",
        ]
    return list(dict.fromkeys(names + ["bw::transpose<float>"]))
