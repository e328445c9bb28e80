"""DTensor (FSDP2) support: which tensors are shards, over which process groups their local
values are summed, and that sum as a differentiable all-reduce.

Nothing here imports ``torch.distributed`` until a DTensor is met.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["PLAIN_TYPES", "all_reduce_sum", "is_dtensor", "local", "shard_groups"]

# Tensors that are no subclass (no DTensor, no tensor of another library's making).
PLAIN_TYPES = (torch.Tensor, torch.nn.Parameter)


def is_dtensor(tensor: torch.Tensor) -> bool:
    """True for a ``torch.distributed.tensor.DTensor`` (FSDP2 parameters), without importing it."""
    return type(tensor).__name__ == "DTensor" and hasattr(tensor, "to_local")


def local(tensor: torch.Tensor) -> torch.Tensor:
    """This rank's shard of a DTensor; any other tensor itself."""
    return tensor.to_local() if is_dtensor(tensor) else tensor


def shard_groups(tensor: torch.Tensor, reduced_dims: Sequence[int] | None = None) -> list[object]:
    """The process groups over which local values of DTensor ``tensor`` must be summed.

    With ``reduced_dims`` None, every mesh dimension that shards the tensor (or holds partial
    values); otherwise only the mesh dimensions that shard one of ``reduced_dims``.
    """
    mesh = tensor.device_mesh
    groups = []
    ndim = tensor.dim()
    for mesh_dim, placement in enumerate(tensor.placements):
        if placement.is_replicate():
            continue
        if (
            placement.is_shard()
            and reduced_dims is not None
            and placement.dim % ndim not in reduced_dims
        ):
            continue
        groups.append(mesh.get_group(mesh_dim))
    return groups


class _AllReduceSum(torch.autograd.Function):
    """Sum a 0-d tensor over a process group; the gradient passes through unchanged.

    Every rank holds the same global value, and the derivative of that value with respect to this
    rank's shard is the derivative of this rank's local term: no communication on the way back.
    """

    @staticmethod
    def forward(ctx, value: torch.Tensor, group) -> torch.Tensor:
        import torch.distributed as dist

        reduced = value.clone()
        dist.all_reduce(reduced, op=dist.ReduceOp.SUM, group=group)
        return reduced

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return grad_output, None


def all_reduce_sum(value: torch.Tensor, groups: Sequence[object]) -> torch.Tensor:
    """``value`` summed over each process group in ``groups`` in turn (differentiable)."""
    for group in groups:
        value = _AllReduceSum.apply(value, group)
    return value
