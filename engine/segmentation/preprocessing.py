"""Image -> network input and logits -> label maps, exactly as the EdgeNets evaluation does it (numpy + Pillow).

Kept torch-free so the ONNX runtime path shares it. Bit-exactness matters: PIL's bilinear resize
antialiases when shrinking and PIL's nearest rule differs from torch's at ties, so both resizes go
through Pillow (ARCHITECTURE.md §10).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from engine.segmentation.manifest import Preprocessing, voc_palette

_FILTERS = {"bilinear": Image.Resampling.BILINEAR, "nearest": Image.Resampling.NEAREST}


def preprocess(image: Image.Image, prep: Preprocessing) -> np.ndarray:
    """A 3 x H x W float32 network input (no batch dimension)."""
    if prep.resize != "stretch":
        raise ValueError(f"unknown resize policy {prep.resize!r}")
    rgb = image.convert("RGB")
    if rgb.size != tuple(prep.input_size):
        rgb = rgb.resize(tuple(prep.input_size), _FILTERS[prep.resample])
    x = np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1).astype(np.float32) / np.float32(255)
    mean = np.asarray(prep.mean, np.float32)[:, None, None]
    std = np.asarray(prep.std, np.float32)[:, None, None]
    return (x - mean) / std


def labels_from_logits(logits: np.ndarray) -> np.ndarray:
    """Argmax over the class axis (first of ties): C x H x W (or N x C x H x W) -> uint8 H x W (N x H x W)."""
    if logits.ndim not in (3, 4):
        raise ValueError(f"expected C x H x W or N x C x H x W logits, got shape {logits.shape}")
    return np.argmax(logits, axis=-3).astype(np.uint8)


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An H x W uint8 label map resized to size (W, H) with Pillow NEAREST, as the reference label PNGs are."""
    if labels.shape[::-1] == tuple(size):
        return labels.copy()
    image = Image.frombytes("L", labels.shape[::-1], np.ascontiguousarray(labels, np.uint8).tobytes())
    return np.asarray(image.resize(tuple(size), Image.Resampling.NEAREST))


def label_image(labels: np.ndarray, palette: tuple[tuple[int, int, int], ...] | None = None) -> Image.Image:
    """A palette-mode image (pixel value = class index, VOC colours), the format of VOC ground truth."""
    colours = palette if palette is not None else voc_palette()
    flat = [v for colour in colours for v in colour]
    image = Image.frombytes("P", labels.shape[::-1], np.ascontiguousarray(labels, np.uint8).tobytes())
    image.putpalette(flat + [0] * (768 - len(flat)))
    return image
