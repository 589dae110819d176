"""A sheet to write on with a tablet pen, a mouse or a touchpad: the raw ink a style is made from.

Points are kept as the pen gave them (x, y in canvas pixels with y down, time in seconds, pressure 0..1 or
NaN when the device has none), because the engine's styles normalise scale and sampling rate themselves.
Nothing written is lost: every change is autosaved (atomically) shortly after it happens and restored when
a canvas is created again, clear and erase are undoable. In prediction mode a heat map (computed elsewhere,
see desktop.prediction) is painted under the ink: where the prediction network expects the pen to go.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from itertools import pairwise
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPointingDevice,
    QShortcut,
    QTabletEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from engine.atomic import atomic_write_text
from engine.handwriting.prediction_heatmap import HeatMap
from engine.paths import data_dir

AUTOSAVE_NAME = "canvas-autosave.json"
AUTOSAVE_FORMAT = "penwright-canvas"
AUTOSAVE_DELAY_MS = 400  # after the last change: a burst of strokes costs one write, a crash loses < 0.5 s
INK = QColor("#1a1a40")
PAPER = QColor("#fffdf7")
GUIDE = QColor("#9bb3d6")
GUIDE_FAINT = QColor("#d5e0ef")
MIN_WIDTH, MAX_WIDTH = 0.8, 5.0  # pen width in pixels at pressure 0 and 1
MOUSE_WIDTH = 2.2  # devices without pressure
ERASER_RADIUS = 8.0  # pixels: how close the eraser must come to a stroke to remove it
# One line of guides (a style is one line of writing), in pixels: the baseline, the x-height above it and a
# fainter ascender line; a size that gives the model enough points per letter even from a mouse.
BASELINE = 150.0
X_HEIGHT = 36.0
# The letter height the engine measures (the interquartile band of the ink's y, engine.handwriting.style_metrics)
# is about 0.6 x-heights for ink written on these guides: the scale assumed until there is enough ink to measure.
GUIDE_LETTER_HEIGHT = 0.6 * X_HEIGHT
CANVAS_HEIGHT = 250

Point = tuple[float, float, float, float]  # x, y (down), time s, pressure (NaN: unknown)


def pen_width(pressure: float) -> float:
    """Line width for a pressure: light touches draw thin lines, firm ones thick (mouse ink a fixed width)."""
    if not math.isfinite(pressure):
        return MOUSE_WIDTH
    return MIN_WIDTH + (MAX_WIDTH - MIN_WIDTH) * min(max(pressure, 0.0), 1.0)


class PenCanvas(QWidget):
    """Records strokes; ``changed`` fires after every stroke, erase, undo, clear or restore."""

    changed = Signal()
    inking = Signal()  # the stroke in progress grew (prediction mode follows the pen while it writes)

    def __init__(self, autosave_path: str | Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.autosave_path = Path(autosave_path) if autosave_path else data_dir() / AUTOSAVE_NAME
        self._strokes: list[list[Point]] = []
        self._current: list[Point] | None = None
        self._erasing: list[list[Point]] | None = None  # the strokes before this eraser touch, while erasing
        self._undo: list[list[list[Point]]] = []  # the stroke list before each change (strokes are shared)
        self._tablet_down = False  # while the pen touches, mouse events are Qt's copies of tablet events
        self._clock = time.monotonic()
        self.device = "mouse"  # the last device that drew: a style records it as its source
        self.guides_visible = True
        self.heatmap: HeatMap | None = None
        self._heat_image: QImage | None = None
        self.setAttribute(Qt.WidgetAttribute.WA_StaticContents)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(480)
        self.setFixedHeight(CANVAS_HEIGHT)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setToolTip("Write with a pen or the mouse. The eraser end of a pen erases whole strokes. Ctrl+Z undoes.")
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(AUTOSAVE_DELAY_MS)
        self._save_timer.timeout.connect(self.save_now)
        QShortcut(QKeySequence.StandardKey.Undo, self, activated=self.undo)
        self.restore()

    # --- the ink -------------------------------------------------------------------------------------

    @property
    def strokes(self) -> list[list[Point]]:
        """Finished strokes (copies are cheap to take; the canvas keeps its own)."""
        return [list(s) for s in self._strokes]

    @property
    def stroke_count(self) -> int:
        return len(self._strokes)

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    def ink(self) -> list[np.ndarray]:
        """Every stroke as (n, 2) pixel points, y down, the one being written included (for prediction)."""
        strokes = [*self._strokes, *([self._current] if self._current else [])]
        return [np.array([(p[0], p[1]) for p in stroke]) for stroke in strokes]

    def set_heatmap(self, heatmap: HeatMap | None) -> None:
        """Show (or with None, hide) the prediction heat map under the ink."""
        self.heatmap = heatmap
        self._heat_image = heat_image(heatmap) if heatmap is not None else None
        self.update()

    def widths(self, index: int) -> list[float]:
        """The drawn width of each segment of stroke ``index`` (from the mean pressure of its two ends)."""
        stroke = self._strokes[index]
        return [pen_width(_mean_pressure(a, b)) for a, b in pairwise(stroke)]

    def set_strokes(self, strokes: list[list[Point]]) -> None:
        """Replace the ink (undoable); used for restoring and for demos."""
        before, self._strokes = self._strokes, [[_point(p) for p in s] for s in strokes if s]
        self._commit(before)

    def clear(self) -> None:
        """Remove all strokes; Ctrl+Z brings them back."""
        if self._strokes:
            before, self._strokes = self._strokes, []
            self._commit(before)

    def undo(self) -> None:
        """Take back the last stroke, erase or clear."""
        if not self._undo:
            return
        self._strokes = self._undo.pop()
        self._changed()

    def set_guides_visible(self, visible: bool) -> None:
        self.guides_visible = visible
        self.update()

    def _commit(self, before: list[list[Point]]) -> None:
        """After a change: remember the strokes as they were before it (for undo) and announce it."""
        self._undo.append(before)
        self._changed()

    def _changed(self) -> None:
        self.update()
        self._save_timer.start()
        self.changed.emit()

    # --- autosave ------------------------------------------------------------------------------------

    def save_now(self) -> None:
        """Write the strokes to the autosave file (atomically: it is valid JSON whenever it exists)."""
        self._save_timer.stop()
        data = {
            "format": AUTOSAVE_FORMAT,
            "version": 1,
            "device": self.device,
            "strokes": [[[_json_number(v) for v in p] for p in s] for s in self._strokes],
        }
        with contextlib.suppress(OSError):  # the ink stays on screen; the next change tries again
            atomic_write_text(self.autosave_path, json.dumps(data, separators=(",", ":"), allow_nan=False) + "\n")

    def flush(self) -> None:
        """Save now if a save is pending (before the window closes)."""
        if self._save_timer.isActive():
            self.save_now()

    def restore(self) -> bool:
        """Load the autosaved strokes, if any; a damaged file is set aside, never overwritten blindly."""
        try:
            data = json.loads(self.autosave_path.read_text(encoding="utf-8"))
            strokes = [[_point(p) for p in s] for s in data["strokes"] if s]
            device = str(data.get("device", "mouse"))
        except FileNotFoundError:
            return False
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            with contextlib.suppress(OSError):
                self.autosave_path.replace(self.autosave_path.with_name(self.autosave_path.stem + ".damaged.json"))
            return False
        self._strokes, self.device = strokes, device
        self.update()
        self.changed.emit()
        return True

    # --- input ---------------------------------------------------------------------------------------

    def _now(self) -> float:
        return time.monotonic() - self._clock

    def tabletEvent(self, event: QTabletEvent) -> None:  # noqa: N802 (Qt's name)
        pos = event.position()
        eraser = event.pointerType() == QPointingDevice.PointerType.Eraser
        kind = event.type()
        if kind == QTabletEvent.Type.TabletPress:
            self._tablet_down = True
            self.device = "tablet"
            self._begin(pos, event.pressure(), eraser)
        elif kind == QTabletEvent.Type.TabletMove and self._tablet_down:
            self._extend(pos, event.pressure(), eraser)
        elif kind == QTabletEvent.Type.TabletRelease:
            self._tablet_down = False
            if event.pressure() > 0:  # most tablets report 0 on lifting: that point would end in a hairline
                self._extend(pos, event.pressure(), eraser)
            self._end()
        event.accept()

    def _from_tablet(self, event: QMouseEvent) -> bool:
        device = event.pointingDevice()
        tablet = device is not None and device.type() in (
            QPointingDevice.DeviceType.Stylus,
            QPointingDevice.DeviceType.Airbrush,
            QPointingDevice.DeviceType.Puck,
        )
        return tablet or self._tablet_down

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt's name)
        if event.button() != Qt.MouseButton.LeftButton or self._from_tablet(event):
            event.ignore()
            return
        self.device = "mouse"
        self._begin(event.position(), math.nan, False)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt's name)
        if self._from_tablet(event) or not event.buttons() & Qt.MouseButton.LeftButton:
            event.ignore()
            return
        self._extend(event.position(), math.nan, False)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt's name)
        if event.button() != Qt.MouseButton.LeftButton or self._from_tablet(event):
            event.ignore()
            return
        self._extend(event.position(), math.nan, False)
        self._end()

    def _begin(self, pos: QPointF, pressure: float, eraser: bool) -> None:
        self._end()
        if eraser:
            self._erasing = list(self._strokes)
            self._erase_at(pos)
        else:
            self._current = [(pos.x(), pos.y(), self._now(), pressure)]
            self.update()

    def _extend(self, pos: QPointF, pressure: float, eraser: bool) -> None:
        if self._erasing is not None:
            self._erase_at(pos)
        elif self._current is not None:
            last = self._current[-1]
            if (pos.x(), pos.y()) != (last[0], last[1]):
                self._current.append((pos.x(), pos.y(), self._now(), pressure))
                self.inking.emit()
                # Repaint only around the new segment: a long line of ink stays smooth to write on.
                margin = MAX_WIDTH + 2
                dirty = QRectF(QPointF(last[0], last[1]), pos).normalized().adjusted(-margin, -margin, margin, margin)
                self.update(dirty.toAlignedRect())

    def _end(self) -> None:
        if self._erasing is not None:
            before, self._erasing = self._erasing, None
            if len(before) != len(self._strokes):
                self._commit(before)
        elif self._current is not None:
            stroke, self._current = self._current, None
            if len(stroke) == 1:  # a dot: give it a second point so it is a stroke with some ink
                x, y, t, p = stroke[0]
                stroke.append((x + 0.5, y + 0.5, t, p))
            before, self._strokes = self._strokes, [*self._strokes, stroke]
            self._commit(before)

    def _erase_at(self, pos: QPointF) -> None:
        kept = [s for s in self._strokes if not _near(s, pos.x(), pos.y(), ERASER_RADIUS)]
        if len(kept) != len(self._strokes):
            self._strokes = kept
            self.update()

    # --- painting ------------------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt's name)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), PAPER)
        if self._heat_image is not None and self.heatmap is not None:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            cell = self.heatmap.cell
            target = QRectF(0, 0, self._heat_image.width() * cell, self._heat_image.height() * cell)
            painter.drawImage(target, self._heat_image)
        if self.guides_visible:
            self._paint_guides(painter)
        for stroke in self._strokes:
            _paint_stroke(painter, stroke)
        if self._current:
            _paint_stroke(painter, self._current)
        if not self._strokes and not self._current:
            painter.setPen(QColor("#8a8c99"))
            hint = QRectF(self.rect()).adjusted(20, BASELINE + 16, -20, -10)
            painter.drawText(hint, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, "Write a line here")
        painter.end()

    def _paint_guides(self, painter: QPainter) -> None:
        left, right = 24.0, self.width() - 24.0
        painter.setPen(QPen(GUIDE_FAINT, 1, Qt.PenStyle.DashLine))
        painter.drawLine(QPointF(left, BASELINE - 2 * X_HEIGHT), QPointF(right, BASELINE - 2 * X_HEIGHT))
        painter.setPen(QPen(GUIDE, 1, Qt.PenStyle.DashLine))
        painter.drawLine(QPointF(left, BASELINE - X_HEIGHT), QPointF(right, BASELINE - X_HEIGHT))
        painter.setPen(QPen(GUIDE, 1.4))
        painter.drawLine(QPointF(left, BASELINE), QPointF(right, BASELINE))


TRAIL_RGB = (59, 111, 214)  # the predictions along the writing: a soft blue
NEXT_RGB = (255, 110, 20)  # the prediction after the last point: orange, where the pen should go next


def heat_image(heatmap: HeatMap) -> QImage:
    """The heat map as an RGBA image, one pixel per cell: brighter where more probability mass lies."""
    trail, upcoming = heatmap.trail, heatmap.next
    top = float(np.quantile(trail[trail > 0], 0.98)) if (trail > 0).any() else 1.0
    a_trail = np.sqrt(np.clip(trail / max(top, 1e-12), 0, 1)) * 0.75
    peak = float(upcoming.max()) if upcoming.size else 0.0
    a_next = (np.clip(upcoming / peak, 0, 1) ** 0.7) * 0.9 if peak > 0 else np.zeros_like(upcoming)
    alpha = a_next + a_trail * (1 - a_next)
    rgba = np.zeros((*trail.shape, 4), np.uint8)
    with np.errstate(invalid="ignore", divide="ignore"):
        for k in range(3):
            mixed = (NEXT_RGB[k] * a_next + TRAIL_RGB[k] * a_trail * (1 - a_next)) / np.where(alpha > 0, alpha, 1)
            rgba[..., k] = np.clip(mixed, 0, 255).astype(np.uint8)
    rgba[..., 3] = np.clip(alpha * 255, 0, 255).astype(np.uint8)
    rows, cols = trail.shape
    return QImage(rgba.tobytes(), cols, rows, 4 * cols, QImage.Format.Format_RGBA8888).copy()


def _paint_stroke(painter: QPainter, stroke: list[Point]) -> None:
    pen = QPen(INK)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    for a, b in pairwise(stroke):
        pen.setWidthF(pen_width(_mean_pressure(a, b)))
        painter.setPen(pen)
        painter.drawLine(QPointF(a[0], a[1]), QPointF(b[0], b[1]))


def _mean_pressure(a: Point, b: Point) -> float:
    return (a[3] + b[3]) / 2


def _near(stroke: list[Point], x: float, y: float, radius: float) -> bool:
    """Whether the point comes within ``radius`` of any segment of the stroke."""
    r2 = radius * radius
    if len(stroke) == 1:
        return (stroke[0][0] - x) ** 2 + (stroke[0][1] - y) ** 2 <= r2
    for a, b in pairwise(stroke):
        dx, dy = b[0] - a[0], b[1] - a[1]
        length2 = dx * dx + dy * dy
        t = 0.0 if length2 == 0 else min(max(((x - a[0]) * dx + (y - a[1]) * dy) / length2, 0.0), 1.0)
        if (a[0] + t * dx - x) ** 2 + (a[1] + t * dy - y) ** 2 <= r2:
            return True
    return False


def _point(p) -> Point:
    values = [math.nan if v is None else float(v) for v in p]
    values += [math.nan] * (4 - len(values))
    x, y, t, pressure = values[:4]
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError("a point without finite coordinates")
    return (x, y, t, pressure)


def _json_number(v: float) -> float | None:
    return round(v, 4) if math.isfinite(v) else None
