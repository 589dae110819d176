"""Writing what the viewer shows to PNG files: class ids, the coloured overlay, a side-by-side comparison.

Qt-free (numpy + Pillow) and atomic (encoded in memory, then `engine.atomic.atomic_write_bytes`: a temp
file beside the target and os.replace), so a full disk or a crash never leaves half a PNG where a
previous export was.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from desktop.segmentation.view_model import SegmentationViewModel
from engine.atomic import atomic_write_bytes

GAP = 8  # pixels of white between the side-by-side panels


def _write_png(path: str | Path, image: Image.Image) -> Path:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def class_id_image(labels: np.ndarray, palette: list[tuple[int, int, int]]) -> Image.Image:
    """A palette ("P") PNG whose pixel values are the class ids (VOC ground-truth format)."""
    image = Image.fromarray(np.ascontiguousarray(labels, np.uint8), "P")
    flat = [int(v) for colour in palette for v in colour][:768]
    image.putpalette(flat + [0] * (768 - len(flat)))
    return image


def blend(photo: np.ndarray, rgba: np.ndarray, opacity: float) -> np.ndarray:
    """The photo (H x W x 3 uint8) with the overlay layer (H x W x 4 uint8) composited at `opacity`."""
    alpha = (rgba[..., 3:4].astype(np.float32) / 255.0) * float(opacity)
    mixed = photo.astype(np.float32) * (1 - alpha) + rgba[..., :3].astype(np.float32) * alpha
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def overlay_array(model: SegmentationViewModel, photo: np.ndarray, side: str = "main") -> np.ndarray:
    """What the canvas shows for one view, at the photo's size (hidden classes, outlines, opacity applied)."""
    if not model.overlay_shown:
        return photo
    return blend(photo, model.overlay_rgba(model.full_labels(side)), model.opacity)  # type: ignore[arg-type]


def export_class_ids(model: SegmentationViewModel, path: str | Path) -> Path:
    """The shown labels at the photo's size, pixel value = class id, with the model's (VOC) palette."""
    palette = [tuple(int(v) for v in c) for c in model.result.palette]
    return _write_png(path, class_id_image(model.full_labels(), palette))


def export_overlay(model: SegmentationViewModel, photo: np.ndarray, path: str | Path) -> Path:
    """The photo with the overlay as it looks on screen (colours, hidden classes, outlines, opacity)."""
    return _write_png(path, Image.fromarray(overlay_array(model, photo), "RGB"))


def side_by_side(model: SegmentationViewModel, photo: np.ndarray) -> np.ndarray:
    """Photo | unaries alone | after the CRF (the iteration shown), in a row with white gaps."""
    panels = [photo, overlay_array(model, photo, "left"), overlay_array(model, photo, "main")]
    height, width = photo.shape[:2]
    row = np.full((height, 3 * width + 2 * GAP, 3), 255, np.uint8)
    for i, panel in enumerate(panels):
        row[:, i * (width + GAP) : i * (width + GAP) + width] = panel
    return row


def export_side_by_side(model: SegmentationViewModel, photo: np.ndarray, path: str | Path) -> Path:
    saved_view = model.view
    model.view = "crf" if saved_view == "unaries" else saved_view  # the right panel is always the CRF's
    try:
        return _write_png(path, Image.fromarray(side_by_side(model, photo), "RGB"))
    finally:
        model.view = saved_view
