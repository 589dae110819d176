"""The one error a segmentation model file raises, importable without torch."""

from __future__ import annotations


class SegmentationModelError(ValueError):
    """A segmentation checkpoint is missing, corrupt, or not the network it claims to be; the message says which."""
