"""One executable of the GEMM core (``kernels/sm90_gemm.cu``): a spec names the instance, the executable builds its
tensor maps, persistent schedule (whole tiles, then stream-K over the tail) and workspace layout, and launches it
with one parameter block (``Args``, the mirror of ``sm90::Args`` in ``kernels/sm90_epilogues.cuh``: the same fields
in the same order).

A tile is BM = 128 rows of a by ``bn`` rows of b. The forward (``RowSigmoidSum``) maps x to a and W to b; the swapped
form for small batches (``ColSigmoidSum``) maps W to a and the batch to b, so the tensor cores do no work on padding
rows of a 64-row tile and W streams through as it is. The ring takes as many stages as fit ``RING_BYTES``.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass

from .. import loader
from ..backends import round_up
from ..backends.launch import I32, I64, U64, Launch, TensorMap, TiledMap, zero_words
from .operands import Operand

FILENAME = "sm90_gemm.cu"
BM = 128  # rows of a per tile (kernels/sm90_mainloop.cuh)
THREADS = 384  # a producer warpgroup and two consumer warpgroups
CONSUMERS = 256
RING_BYTES = 208 * 1024  # the stages' shared memory at most (the epilogue's static shared memory comes on top)
MAX_STAGES = 12
MIN_RANGE = 4  # k tiles a block's stream-K range holds at least
# The last part of a cut tile to arrive sums all parts alone: their bytes at most this (4 parts of a 128 x 256 fp32
# tile, 128 of 128 x 8), a few microseconds of one SM's reads.
MAX_PARTS_BYTES = 512 * 1024
GROUP_BYTES = 24 * 2**20  # a raster group's out tiles read at most this much of x (kernels/sm90_scheduler.cuh)
SWAPPED_BN = (8, 16, 32, 64, 128)  # batch tiles of the swapped form
TILE_BN = (128, 256)  # W tiles of the forward form


class Args(ctypes.Structure):
    """sm90::Args: the kernel's parameter block."""

    _fields_ = [
        ("bias", U64),
        ("out", U64),
        ("saved", U64),
        ("workspace", U64),
        ("row_counters_off", I64),
        ("zpart_off", I64),
        ("row_part_off", I64),
        ("rows", I32),
        ("n", I32),
        ("num_out", I32),
        ("num_red", I32),
        ("group", I32),
        ("k_tiles", I32),
        ("dp_tiles", I32),
    ]


def stage_bytes(bn: int) -> int:
    """One k tile of a (BM rows) and b (bn rows), 128 bytes a row (sm90::stage_bytes)."""
    return (BM + bn) * 128


@dataclass(frozen=True)
class GemmSpec:
    """A kernel instance: operand type, b rows per tile, ring depth, epilogue (swapped or not, saving sigmoid' or
    not, which logistic function)."""

    operand: Operand
    bn: int
    swapped: bool
    save: bool

    @property
    def stages(self) -> int:
        return min(MAX_STAGES, RING_BYTES // stage_bytes(self.bn))

    @property
    def smem(self) -> int:
        """Dynamic shared memory: 1 KiB to align the ring, its stages and barriers (sm90::Ring::BYTES)."""
        return 1024 + self.stages * stage_bytes(self.bn) + 16 * self.stages

    @property
    def epilogue(self) -> str:
        kind = "ColSigmoidSum" if self.swapped else "RowSigmoidSum"
        save = "true" if self.save else "false"
        return f"sm90::{kind}<{self.bn}, {save}, sm90::Sig::{self.operand.sigmoid}>"

    @property
    def instance(self) -> str:
        return f"sm90::gemm<{self.operand.traits}, {self.bn}, {self.stages}, {self.epilogue}>"

    @property
    def label(self) -> str:
        form = f"W 128 rows x batch {self.bn} (swapped)" if self.swapped else f"{BM}x{self.bn}"
        return f"GEMM core {self.operand.name} {form}, {self.stages} stages, persistent"

    def tiles(self, rows: int, n: int) -> tuple[int, int]:
        """(out tiles, red tiles): along the result's index and along the reduced N."""
        if self.swapped:
            return -(-rows // self.bn), -(-n // BM)
        return -(-rows // BM), -(-n // self.bn)


def tail_tiles(spec: GemmSpec, tiles: int, sms: int) -> int:
    """The tiles stream-K applies to: every tile of the swapped form (its parts are small: BN columns of the batch)
    and of a grid that one wave holds; else those past the last whole wave."""
    return tiles if spec.swapped or tiles <= sms else tiles % sms


def stream_grid(streamed: int, k_tiles: int, sms: int, bn: int) -> int:
    """Blocks of a stream-K schedule of ``streamed`` tiles: the SMs, or fewer where each block's range would hold
    fewer than MIN_RANGE k tiles or a tile would be cut into more parts than MAX_PARTS_BYTES holds (about: a range
    of at least k_tiles / (parts - 1) cuts a tile into at most parts, give or take one); 0 where even one block
    would be too many (then the tiles run whole)."""
    if not streamed or k_tiles < 2:
        return 0
    parts = max(2, MAX_PARTS_BYTES // (BM * bn * 4))
    return min(sms, streamed * k_tiles // MIN_RANGE, streamed * (parts - 1))


def schedule(spec: GemmSpec, tiles: int, k_tiles: int, sms: int, stream: bool) -> tuple[int, int]:
    """(streamed tiles, grid) of a launch: with ``stream``, the tail tiles (``tail_tiles``) run stream-K where
    ``stream_grid`` finds blocks for them (and, past whole waves, one for every SM: the whole tiles are dealt out
    evenly); otherwise, or where it finds none, every tile runs whole on at most ``sms`` blocks."""
    streamed = tail_tiles(spec, tiles, sms) if stream else 0
    grid = stream_grid(streamed, k_tiles, sms, spec.bn)
    if not grid or (streamed < tiles and grid < sms):
        return 0, min(tiles, sms)
    return streamed, grid


def workspace_layout(streamed: int, grid: int, bn: int, num_out: int, num_red: int, rows: int) -> tuple[int, ...]:
    """(row_counters_off, zpart_off, row_part_off, counter_bytes, total bytes) of sm90::Args's workspace: 32-bit
    arrival counters first (one a streamed tile, then one an out tile where N spans several red tiles; the host
    zeroes these ``counter_bytes`` before each launch), two tiles of accumulators a block (the parts of its first and
    last units), and the parked sums (rows x red tiles, fp32). 256-byte aligned sections; 0 bytes when nothing is
    streamed or handed over."""
    part_counters = streamed * 4
    row_counters = num_out * 4 if num_red > 1 else 0
    counter_bytes = round_up(part_counters + row_counters, 16)
    zpart_off = round_up(counter_bytes, 256)
    zpart = 2 * grid * BM * bn * 4 if streamed else 0
    row_part_off = round_up(zpart_off + zpart, 256)
    row_part = rows * num_red * 4 if num_red > 1 else 0
    total = row_part_off + row_part if counter_bytes else 0
    return part_counters, zpart_off, row_part_off, counter_bytes, total


def group_of(spec: GemmSpec, num_out: int, k: int) -> int:
    """Out tiles per raster group: as many as keep their rows of x within GROUP_BYTES (those of a wave then stay
    in L2 while W streams), at least one. Wide groups also spread the tiles of one out tile over time, so that few
    of them arrive on its counter at once."""
    rows = spec.bn if spec.swapped else BM
    return max(1, min(num_out, GROUP_BYTES // max(1, rows * k * spec.operand.itemsize)))


class GemmKernel:
    """The forward on the core for one signature: ``run(x, w, b, out, workspace, stream, saved=0)`` with the backends'
    calling convention. x (rows x k, row stride ldx) and W (n x k, row stride ldw) with 16-byte aligned rows: both
    are read through tensor maps, re-encoded when an address changes. ``stream``: the tail tiles run stream-K where
    ``schedule`` allows, else every tile runs whole. ``blocks``: the persistent grid's size at most (default the
    device's SMs; the tests cut tiles into many parts with few)."""

    def __init__(
        self, spec: GemmSpec, rows: int, n: int, k: int, ldx: int, ldw: int, device_id: int, stream: bool,
        blocks: int | None = None,
    ):  # fmt: skip
        dtype = spec.operand.dtype
        box_x, box_w = (spec.bn, BM) if spec.swapped else (BM, spec.bn)
        self._x_map = TiledMap(rows, k, ldx, box_x, dtype)
        self._w_map = TiledMap(n, k, ldw, box_w, dtype)
        a_map, b_map = (self._w_map, self._x_map) if spec.swapped else (self._x_map, self._w_map)
        num_out, num_red = spec.tiles(rows, n)
        tiles, sms = num_out * num_red, min(loader.device_info(device_id).sms, blocks or 2**31)
        if tiles >= 2**31:
            raise ValueError(f"{spec.instance}: {tiles} tiles are more than the schedule counts")
        k_tiles = -(-k // spec.operand.bk)
        streamed, grid = schedule(spec, tiles, k_tiles, sms, stream)
        self.streamed = streamed
        row_counters_off, zpart_off, row_part_off, counter_bytes, self.workspace_bytes = workspace_layout(
            streamed, grid, spec.bn, num_out, num_red, rows
        )
        self._counter_words = counter_bytes // 4
        self._args = Args(
            0, 0, 0, 0, row_counters_off, zpart_off, row_part_off, rows, n,
            num_out, num_red, group_of(spec, num_out, k), k_tiles, tiles - streamed,
        )  # fmt: skip
        self._spec = spec
        self._lock = threading.Lock()  # a call's maps and parameter block, and the launch that reads them
        self._launch = Launch(
            loader.function(FILENAME, spec.instance, device_id),
            spec.instance,
            grid,
            THREADS,
            spec.smem,
            [(TensorMap, a_map.value), (TensorMap, b_map.value), (Args, self._args)],
            device_id,
        )

    def run(self, x, w, b, out, workspace, stream, saved=0):
        with self._lock:
            self._x_map.point_at(x)
            self._w_map.point_at(w)
            args = self._args
            args.bias, args.out, args.saved, args.workspace = b, out, saved, workspace
            if self._counter_words:
                zero_words(workspace, self._counter_words, stream)
            self._launch(stream)

    def describe(self) -> str:
        cut = f"stream-K over the last {self.streamed} tiles" if self.streamed else "whole tiles"
        return f"{self._launch!r} {self._spec.label}, {cut}"
