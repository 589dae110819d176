"""The one error a segmentation model file raises, importable without torch."""

from __future__ import annotations


class SegmentationModelError(ValueError):
    """A segmentation checkpoint is missing, corrupt, or not the network it claims to be; the message says which."""


class SegmentationDownloadError(OSError):
    """A checkpoint could not be fetched (offline, server error, bad transfer); the message says what to do instead."""
