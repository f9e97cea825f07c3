"""torch.distributed: W's rows split across the ranks of a process group, x on every rank (tensor parallelism over N).
Its names are ``cupy_fused.torch``'s: ``sharded_linear_sigmoid_sum``, ``ShardedLinearSigmoidSum``, ``shard_rows``.

The sum over N is a sum of per-shard sums: each rank runs ``cupy_fused.torch.linear_sigmoid_sum`` on its rows of W
(and b), then one ``all_reduce(SUM)`` adds the B numbers, in float64, on every rank. The backward follows the
tensor-parallel convention that every rank computes the same loss from the same result: each rank's local sum gets
the upstream gradient as it is, grad_weight and grad_bias are the shard's own rows and stay local, and grad_x, a sum
of every shard's part, is all-reduced (in float32 for half inputs). Any backend with all_reduce works: gloo for CPU
tensors, NCCL for CUDA tensors.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from . import checks
from .api import Method, Precision
from .torch import DEFAULT_WORKSPACE_BYTES, LinearSigmoidSum, linear_sigmoid_sum

__all__ = ["sharded_linear_sigmoid_sum", "ShardedLinearSigmoidSum", "shard_rows"]


def shard_rows(n: int, rank: int, world_size: int) -> slice:
    """The rows of an N-row matrix that ``rank`` of ``world_size`` holds: contiguous, in rank order, the first
    ``n % world_size`` ranks one row more than the others (a rank may hold none when n < world_size).

    Args:
        n: the number of rows, N.
        rank: this rank, below world_size.
        world_size: the number of ranks.
    """
    n, rank, world_size = checks.count("n", n), checks.count("rank", rank), checks.count("world_size", world_size)
    if not rank < world_size:
        raise ValueError(f"rank must be below world_size == {world_size}, got {rank}")
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


def _all_reduced(t: Tensor, group, dtype: torch.dtype) -> Tensor:
    """The sum over the group's ranks of t, added in ``dtype``, as a new tensor of t's dtype."""
    total = t.to(dtype, copy=True)
    dist.all_reduce(total, op=dist.ReduceOp.SUM, group=group)
    return total.to(t.dtype)


class _SumOverRanks(torch.autograd.Function):
    """Forward: the sum of every rank's tensor; backward: the upstream gradient as it is (the same on every rank)."""

    @staticmethod
    def forward(ctx, local: Tensor, group) -> Tensor:
        return _all_reduced(local, group, torch.float64)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad, None


class _SharedInput(torch.autograd.Function):
    """Forward: x as it is (every rank holds the same x); backward: the sum of every rank's gradient."""

    @staticmethod
    def forward(ctx, x: Tensor, group) -> Tensor:
        ctx.group = group
        return x

    @staticmethod
    def backward(ctx, grad: Tensor):
        return _all_reduced(grad, ctx.group, torch.float64 if grad.dtype == torch.float64 else torch.float32), None


def sharded_linear_sigmoid_sum(
    x: Tensor,
    weight_shard: Tensor,
    bias_shard: Tensor | None = None,
    *,
    group: dist.ProcessGroup | None = None,
    precision: Precision | None = None,
    method: Method = "auto",
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
    save_bytes: int | None = None,
) -> Tensor:
    """``torch.sum(torch.sigmoid(F.linear(x, weight, bias)), dim=-1, keepdim=True)`` with weight's (and bias's) rows
    split across the ranks of ``group``.

    Differentiable with respect to x, weight_shard and bias_shard: grad_x is all-reduced, the shards' gradients stay
    with their rows (``cupy_fused.torch_distributed``). Every rank calls it with the same x.

    Args:
        x: (..., K), the same on every rank.
        weight_shard: this rank's rows of weight, (rows, K), for example ``weight[shard_rows(N, rank, world_size)]``
            (any split of the rows works).
        bias_shard: the same rows of bias, or None.
        group: the process group (None: the default group).
        precision: as for :func:`cupy_fused.torch.linear_sigmoid_sum`, which runs on the shard.
        method: as there.
        workspace_bytes: as there.
        save_bytes: as there.

    Returns:
        (..., 1), the same on every rank.
    """
    local = linear_sigmoid_sum(
        _SharedInput.apply(x, group),
        weight_shard,
        bias_shard,
        precision=precision,
        method=method,
        workspace_bytes=workspace_bytes,
        save_bytes=save_bytes,
    )
    return _SumOverRanks.apply(local, group)


class ShardedLinearSigmoidSum(LinearSigmoidSum):
    """:class:`cupy_fused.torch.LinearSigmoidSum` with its out_features rows split across the ranks of ``group``.

    This rank holds ``weight`` (its rows, in_features) and ``bias`` (its rows,), the rows
    ``self.rows == shard_rows(out_features, rank, world_size)``, initialized as nn.Linear's. ``forward(x)`` maps
    (..., in_features) to (..., 1) through :func:`sharded_linear_sigmoid_sum`; every rank calls it with the same x
    and gets the same result.

    ``load_state_dict`` takes a full nn.Linear state_dict (weight (out_features, in_features), bias (out_features,))
    and keeps this rank's rows; it also takes this module's own ``state_dict()``, which holds only the rank's rows.

    Args:
        in_features: K.
        out_features: N, of the whole layer (this rank holds its rows of them).
        bias: whether the layer has a bias.
        device: as nn.Linear's.
        dtype: as nn.Linear's.
        group: the process group (None: the default group, which must be initialized first).
        options: LinearSigmoidSum's keywords (precision, method, workspace_bytes, save_bytes).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: torch.device | str | int | None = None,
        dtype: torch.dtype | None = None,
        *,
        group: dist.ProcessGroup | None = None,
        **options: Any,
    ) -> None:
        out_features = checks.count("out_features", out_features)
        rows = shard_rows(out_features, dist.get_rank(group), dist.get_world_size(group))
        super().__init__(in_features, rows.stop - rows.start, bias, device, dtype, **options)
        self.out_features = out_features
        self.rows = rows
        self.group = group

    def _function(self, *args: Any, **kwargs: Any) -> Tensor:
        return sharded_linear_sigmoid_sum(*args, group=self.group, **kwargs)

    def _load_from_state_dict(self, state_dict, prefix, *args) -> None:
        """A full nn.Linear entry (weight (out_features, in_features), bias (out_features,)) is cut to this rank's
        rows; anything else goes to nn.Module's loader as it is (``load_state_dict`` hands it a copy of the dict)."""
        full = {"weight": (self.out_features, self.in_features), "bias": (self.out_features,)}
        for name, shape in full.items():
            value = state_dict.get(prefix + name)
            if isinstance(value, Tensor) and tuple(value.shape) == shape:
                state_dict[prefix + name] = value[self.rows]
        super()._load_from_state_dict(state_dict, prefix, *args)

    def extra_repr(self) -> str:
        """LinearSigmoidSum's, and the rows this rank holds."""
        return super().extra_repr() + f", rows={self.rows.start}:{self.rows.stop}"
