"""PyTorch adapter of l1reg. Importing this module imports torch."""

from ._fused import l1_norm

__all__ = ["l1_norm"]
