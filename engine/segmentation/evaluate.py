"""Mean IoU and pixel accuracy of a segmentation pipeline on images with ground-truth masks.

The protocol (PASCAL VOC's): images and masks paired by file stem; ONE confusion matrix summed over all
images (not a mean of per-image IoUs); IoU per class = TP / (TP + FP + FN); the mean is over the classes
present in the ground truth; mask value 255 is ignored (boundaries, unlabelled objects). Masks are read
as class ids (palette PNGs: the palette indices, not the colours).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from engine.segmentation.manifest import VOC_IGNORE
from engine.segmentation.photo import SegmentationInputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def image_files(folder: str | Path) -> dict[str, Path]:
    """stem -> file for the images in `folder` (not recursive); an error when two share a stem."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SegmentationInputError(f"{folder}: no such folder")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            if path.stem in found:
                raise SegmentationInputError(f"{folder}: {found[path.stem].name} and {path.name} share a stem")
            found[path.stem] = path
    return found


def pair_by_stem(images: str | Path, masks: str | Path) -> list[tuple[str, Path, Path]]:
    """(stem, image, mask) for every stem found in both folders; an error when none pair up."""
    image_map, mask_map = image_files(images), image_files(masks)
    stems = sorted(set(image_map) & set(mask_map))
    if not stems:
        raise SegmentationInputError(f"no image in {images} has a mask of the same name in {masks}")
    return [(stem, image_map[stem], mask_map[stem]) for stem in stems]


def read_mask(path: Path) -> np.ndarray:
    """H x W uint8 class ids (255 = ignore)."""
    with Image.open(path) as mask:
        if mask.mode not in ("P", "L"):
            raise SegmentationInputError(f"{path}: a mask must be a palette or greyscale PNG of class ids")
        return np.asarray(mask, np.uint8)


def confusion(truth: np.ndarray, predicted: np.ndarray, num_classes: int, ignore: int = VOC_IGNORE) -> np.ndarray:
    """num_classes x num_classes counts, rows = truth, columns = prediction; `ignore` pixels left out."""
    if truth.shape != predicted.shape:
        raise SegmentationInputError(f"mask {truth.shape} and prediction {predicted.shape} differ in size")
    keep = truth != ignore
    t, p = truth[keep].astype(np.int64), predicted[keep].astype(np.int64)
    if t.size and t.max() >= num_classes:
        raise SegmentationInputError(f"mask holds class {int(t.max())}, the model has {num_classes} classes")
    return np.bincount(t * num_classes + p, minlength=num_classes**2).reshape(num_classes, num_classes)


@dataclass
class Scores:
    matrix: np.ndarray
    images: int

    @property
    def present(self) -> np.ndarray:
        return self.matrix.sum(axis=1) > 0

    @property
    def iou(self) -> np.ndarray:
        """Per-class IoU (NaN for classes absent from the ground truth)."""
        tp = np.diag(self.matrix).astype(np.float64)
        union = self.matrix.sum(0) + self.matrix.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = tp / union
        return np.where(self.present, iou, np.nan)

    @property
    def miou(self) -> float:
        return float(np.nanmean(self.iou)) if self.present.any() else float("nan")

    @property
    def pixel_accuracy(self) -> float:
        total = self.matrix.sum()
        return float(np.trace(self.matrix) / total) if total else float("nan")


def evaluate(
    pairs: list[tuple[str, Path, Path]],
    predict: Callable[[Path], np.ndarray],
    num_classes: int,
    on_image: Callable[[str, np.ndarray], None] | None = None,
) -> Scores:
    """Scores of `predict` (image file -> H x W labels) over the pairs; `on_image(stem, matrix)` per image."""
    total = np.zeros((num_classes, num_classes), np.int64)
    for stem, image, mask in pairs:
        matrix = confusion(read_mask(mask), predict(image), num_classes)
        total += matrix
        if on_image is not None:
            on_image(stem, matrix)
    return Scores(total, len(pairs))


def iter_images(paths: list[str]) -> Iterator[Path]:
    """Files as given, and the images (by suffix) inside folders, sorted."""
    for item in paths:
        path = Path(item)
        if path.is_dir():
            yield from image_files(path).values()
        else:
            yield path
