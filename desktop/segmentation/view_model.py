"""What the Segmentation tab shows, as numpy arrays and plain values, without Qt (so it is testable alone).

Why a view model: the canvas, the legend, the compare bar and the exports must agree on which labels are
on screen (which iteration, unaries or CRF, which classes hidden, which colours). Keeping that state and
the array work here leaves the widgets thin and lets tests check the pictures' pixels directly.

Label maps: the final CRF labels come at the photo's size (`result.labels`); the intermediate mean-field
steps and the unaries are shown at the CRF's working resolution (argmax of `result.iteration_q[i]`, a few
milliseconds) and scaled up by the canvas, so the iteration slider stays instant on large photos.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

View = Literal["crf", "unaries", "split"]
DISPLAY_PIXELS = 2_000_000  # label maps larger than this are drawn (and counted) on a strided grid
RGB = tuple[int, int, int]


def parse_colours(text: str, count: int) -> dict[int, RGB]:
    """User colours stored as "index:#rrggbb;..." -> {index: rgb}; unreadable entries are skipped."""
    colours: dict[int, RGB] = {}
    for part in (text or "").split(";"):
        index, _, value = part.partition(":")
        value = value.strip().lstrip("#")
        if not index.strip().isdigit() or len(value) != 6:
            continue
        try:
            rgb = tuple(int(value[i : i + 2], 16) for i in (0, 2, 4))
        except ValueError:
            continue
        if int(index) < count:
            colours[int(index)] = rgb  # type: ignore[assignment]
    return colours


def format_colours(colours: dict[int, RGB]) -> str:
    return ";".join(f"{i}:#{r:02x}{g:02x}{b:02x}" for i, (r, g, b) in sorted(colours.items()))


def outline(labels: np.ndarray) -> np.ndarray:
    """True where a pixel's right or lower neighbour has another label (a one-pixel class boundary)."""
    edge = np.zeros(labels.shape, bool)
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edge[:-1, :] |= labels[:-1, :] != labels[1:, :]
    edge[:, 1:] |= labels[:, :-1] != labels[:, 1:]  # both sides: the line stays visible when scaled down
    edge[1:, :] |= labels[:-1, :] != labels[1:, :]
    return edge


@dataclass(frozen=True)
class LegendEntry:
    index: int
    name: str
    colour: RGB
    share: float  # fraction of the shown labels' pixels, 0..1
    visible: bool


class SegmentationViewModel:
    """State of the viewer for one result: view mode, iteration, colours, visibility, opacity, outlines."""

    def __init__(self) -> None:
        self.result: Any = None
        self.view: View = "crf"
        self.iteration = 0
        self.opacity = 0.6
        self.overlay_shown = True
        self.contours = False
        self.split = 0.5  # the divider's position, a fraction of the photo's width
        self.colours: list[RGB] = []
        self.visible: list[bool] = []
        self.user_colours: dict[int, RGB] = {}
        self._labels_cache: dict[int, np.ndarray] = {}

    # --- the result ------------------------------------------------------------------------------------
    def set_result(self, result: Any, keep_iteration: bool = False) -> None:
        """Show a new result: the last iteration, unless a CRF re-run keeps the slider where the user left it."""
        same_classes = self.result is not None and list(self.result.classes) == list(result.classes)
        self.result = result
        self._labels_cache = {}
        self.iteration = min(self.iteration, self.last_iteration) if keep_iteration else self.last_iteration
        if not same_classes:
            self.visible = [index != 0 for index in range(len(result.classes))]  # background: photo shows through
        self._apply_colours()

    def snapshot(self) -> SegmentationViewModel:
        """A copy whose state the UI can no longer change (for exports on a worker thread)."""
        copy = SegmentationViewModel()
        copy.__dict__.update(self.__dict__)
        copy.colours, copy.visible = list(self.colours), list(self.visible)
        copy.user_colours, copy._labels_cache = dict(self.user_colours), dict(self._labels_cache)
        return copy

    def clear(self) -> None:
        self.result = None
        self._labels_cache = {}

    @property
    def has_result(self) -> bool:
        return self.result is not None

    @property
    def last_iteration(self) -> int:
        return len(self.result.iteration_q) - 1 if self.result is not None else 0

    @property
    def classes(self) -> list[str]:
        return list(self.result.classes) if self.result is not None else []

    @property
    def photo_size(self) -> tuple[int, int]:
        return tuple(self.result.photo_size)  # type: ignore[return-value]

    # --- colours and visibility -----------------------------------------------------------------------
    def set_user_colours(self, colours: dict[int, RGB]) -> None:
        self.user_colours = dict(colours)
        self._apply_colours()

    def set_colour(self, index: int, rgb: RGB) -> None:
        self.user_colours[index] = tuple(int(v) for v in rgb)  # type: ignore[assignment]
        self._apply_colours()

    def reset_colours(self) -> None:
        self.user_colours = {}
        self._apply_colours()

    def _apply_colours(self) -> None:
        if self.result is None:
            return
        palette = [tuple(int(v) for v in c) for c in self.result.palette][: len(self.result.classes)]
        fallback = (255, 0, 255)
        self.colours = [
            self.user_colours.get(i, palette[i] if i < len(palette) else fallback)
            for i in range(len(self.result.classes))
        ]

    def set_visible(self, index: int, visible: bool) -> None:
        self.visible[index] = bool(visible)

    # --- labels ------------------------------------------------------------------------------------------
    def labels_at(self, iteration: int) -> np.ndarray:
        """The labels after `iteration` mean-field steps: the photo-size final labels for the last one, else
        the argmax of that step's Q at working resolution (cached)."""
        if iteration >= self.last_iteration:
            return self.result.labels
        if iteration not in self._labels_cache:
            steps = self.result.iteration_q
            labels = steps.labels(iteration) if hasattr(steps, "labels") else np.asarray(steps[iteration]).argmax(0)
            self._labels_cache[iteration] = labels.astype(np.uint8)
        return self._labels_cache[iteration]

    def shown_labels(self, side: Literal["main", "left"] = "main") -> np.ndarray:
        """The labels on screen: the split view's left half shows the unaries, the rest the chosen view."""
        if side == "left" or self.view == "unaries":
            return self.unary_labels()
        return self.labels_at(self.iteration)

    def display_labels(self, side: Literal["main", "left"] = "main") -> np.ndarray:
        """The shown labels, every k-th pixel when they exceed DISPLAY_PIXELS: the canvas scales them to the
        photo anyway, and colouring 12 megapixels on the UI thread would freeze it for a few hundred ms."""
        labels = self.shown_labels(side)
        step = max(1, int(np.ceil(np.sqrt(labels.size / DISPLAY_PIXELS))))
        return labels[::step, ::step] if step > 1 else labels

    def unary_labels(self) -> np.ndarray:
        """The network's own labels (no CRF): step 0 is the softmax of the unaries."""
        return self.labels_at(0)

    def full_labels(self, side: Literal["main", "left"] = "main") -> np.ndarray:
        """The shown labels at the photo's size (for exports): the engine's `labels_at` for intermediate steps."""
        iteration = 0 if side == "left" or self.view == "unaries" else self.iteration
        if iteration >= self.last_iteration:
            return self.result.labels
        return self.result.labels_at(iteration)

    # --- pictures ------------------------------------------------------------------------------------------
    def lut(self) -> np.ndarray:
        """256 x 4 uint8 RGBA per class id: the class colour, alpha 0 for hidden classes (and unknown ids)."""
        table = np.zeros((256, 4), np.uint8)
        for index, (colour, visible) in enumerate(zip(self.colours, self.visible, strict=False)):
            table[index, :3] = colour
            table[index, 3] = 255 if visible else 0
        return table

    def overlay_rgba(self, labels: np.ndarray) -> np.ndarray:
        """H x W x 4 uint8: class colours where visible (outlines only in contour mode), else transparent.

        Opacity is not baked in: the canvas applies it to the whole layer, so the slider costs nothing.
        """
        table = self.lut().view(np.uint32).ravel()  # one 32-bit lookup per pixel: 5x faster than a (256, 4) one
        return self._masked(np.take(table, labels), labels).view(np.uint8).reshape(*labels.shape, 4)

    def overlay_argb32(self, labels: np.ndarray) -> np.ndarray:
        """The same overlay as H x W uint32 premultiplied 0xAARRGGBB values: what a Qt pixmap draws directly."""
        rgba = self.lut().astype(np.uint32)
        table = (rgba[:, 3] << 24) | (rgba[:, 0] << 16) | (rgba[:, 1] << 8) | rgba[:, 2]
        table[rgba[:, 3] == 0] = 0  # premultiplied: a transparent pixel has no colour
        return self._masked(np.take(table, labels), labels)

    def _masked(self, pixels: np.ndarray, labels: np.ndarray) -> np.ndarray:
        if self.contours:
            pixels[~outline(labels)] = 0
        return pixels

    def colour_image(self, labels: np.ndarray) -> np.ndarray:
        """H x W x 3 uint8: every pixel in its class colour (hidden classes too): the plain label picture."""
        return np.asarray(self.colours, np.uint8)[np.minimum(labels, len(self.colours) - 1)]

    def legend(self) -> list[LegendEntry]:
        """Each class with its colour, visibility and share of the pixels in the labels now shown."""
        if self.result is None:
            return []
        labels = self.display_labels()
        counts = np.bincount(labels.ravel(), minlength=len(self.classes))[: len(self.classes)]
        total = max(int(labels.size), 1)
        return [
            LegendEntry(i, name, self.colours[i], float(counts[i]) / total, self.visible[i])
            for i, name in enumerate(self.classes)
        ]

    # --- hover ---------------------------------------------------------------------------------------------
    def hover_text(self, x: float, y: float) -> str:
        """'cat 93.1 % (x 120, y 45)' for a point in photo pixels; '' outside the photo or before a result."""
        if self.result is None:
            return ""
        width, height = self.photo_size
        px, py = int(x), int(y)
        if not (0 <= x < width and 0 <= y < height):
            return ""
        left = self.view == "unaries" or (self.view == "split" and x < self.split * width)
        iteration = 0 if left else self.iteration
        class_id, probability = self.result.probability_at(iteration, px, py)
        where = "unaries" if iteration == 0 else f"CRF step {iteration}/{self.last_iteration}"
        return f"{self.classes[class_id]} {100 * probability:.1f} % ({where}; x {px}, y {py})"
