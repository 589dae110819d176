"""Getting a photo into the tab: from a file (on the worker), the clipboard, a drop, or the shipped sample.

Files are decoded by the engine's `load_photo` (EXIF rotation, 16-bit, transparency, damaged files, size
limits), off the UI thread: a 12-megapixel JPEG takes a few hundred milliseconds to decode.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtGui import QImage

import resources
from desktop.segmentation.canvas import rgb_to_qimage

SAMPLE_PHOTO = Path(resources.__file__).resolve().parent / "samples" / "chelsea.png"
SAMPLE_CREDIT = "Chelsea the cat, photo by Stefan van der Walt (CC0), from scikit-image"
PREVIEW_SIDE = 1280
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
IMAGE_FILTER = "Images (" + " ".join(f"*{s}" for s in IMAGE_SUFFIXES) + ");;All files (*)"


@dataclass
class LoadedPhoto:
    """An upright 8-bit RGB photo, its pixels for exports and a QImage for the canvas (made off-thread)."""

    image: Image.Image
    pixels: np.ndarray  # H x W x 3 uint8
    qimage: QImage
    name: str  # for titles and export file names
    preview: QImage | None = None  # at most PREVIEW_SIDE pixels a side, for large photos


def from_pil(image: Image.Image, name: str) -> LoadedPhoto:
    from engine.segmentation.photo import to_rgb

    rgb = to_rgb(image)
    pixels = np.asarray(rgb, np.uint8)
    preview = None
    if max(rgb.size) > PREVIEW_SIDE:
        small = rgb.copy()
        small.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
        preview = rgb_to_qimage(np.asarray(small, np.uint8))
    return LoadedPhoto(rgb, pixels, rgb_to_qimage(pixels), name, preview)


def load_file(path: str | Path) -> LoadedPhoto:
    """Decode a photo file (runs on the worker); SegmentationInputError says what is wrong with it."""
    from engine.segmentation.photo import load_photo

    path = Path(path)
    return from_pil(load_photo(path), path.stem)


def from_qimage(image: QImage, name: str = "pasted") -> LoadedPhoto:
    """A pasted or dropped QImage (any format) as a photo."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    width, height, stride = rgb.width(), rgb.height(), rgb.bytesPerLine()
    buffer = np.frombuffer(rgb.constBits(), np.uint8, count=stride * height).reshape(height, stride)
    pixels = np.ascontiguousarray(buffer[:, : 3 * width].reshape(height, width, 3))
    return from_pil(Image.fromarray(pixels, "RGB"), name)


def is_image_path(path: str) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES
