"""A sheet of paper that shows lines of handwriting while they are being written."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPaintEvent, QPen, QTransform
from PySide6.QtWidgets import QSizePolicy, QWidget

INK = QColor("#1a1a40")
PAPER = QColor("#ffffff")
DESK = QColor("#e4e5ea")
PLACEHOLDER = QColor("#8a8c99")

# While a job writes, the page is fitted to at least this many line heights of width, so the first letters
# do not fill the page and then shrink away as the line grows; finished pages are fitted exactly.
NOMINAL_LINE_WIDTH = 5.0
LINE_SPACING = 1.35  # line-to-line distance, in multiples of the tallest line's ink height
PEN_WIDTH = 0.025  # stroke width as a fraction of the line spacing on screen, close to the SVG export


def _path_of(strokes: Sequence[np.ndarray]) -> QPainterPath:
    path = QPainterPath()
    _append(path, strokes)
    return path


def _append(path: QPainterPath, strokes: Sequence[np.ndarray]) -> None:
    # y is flipped here, once, so painting needs no per-point work: the engine's units are y-up.
    for stroke in strokes:
        path.moveTo(float(stroke[0, 0]), -float(stroke[0, 1]))
        for x, y in stroke[1:].tolist():
            path.lineTo(x, -y)


class _Line:
    """One line's ink: closed strokes grow by appending; the open stroke is replaced on every update."""

    def __init__(self) -> None:
        self.closed = QPainterPath()
        self.open = QPainterPath()
        self.lo = np.array([np.inf, np.inf])
        self.hi = np.array([-np.inf, -np.inf])
        self.strokes = 0
        self.points = 0  # closed strokes' points (the open stroke's are counted in open_points)
        self.open_points = 0
        self._ys: list[np.ndarray] = []  # the closed strokes' y, for the line's centre
        self._open_ys: list[np.ndarray] = []
        self.fixed_centre: float | None = None  # the complete line's centre during playback

    def add(self, closed: Sequence[np.ndarray], open_: Sequence[np.ndarray]) -> None:
        _append(self.closed, closed)
        self.open = _path_of(open_)
        self._ys += [np.asarray(stroke)[:, 1] for stroke in closed if len(stroke)]
        self._open_ys = [np.asarray(stroke)[:, 1] for stroke in open_ if len(stroke)]
        self.strokes += len(closed)
        self.points += sum(len(stroke) for stroke in closed)
        self.open_points = sum(len(stroke) for stroke in open_)
        for stroke in (*closed, *open_):
            self.lo = np.minimum(self.lo, stroke.min(axis=0))
            self.hi = np.maximum(self.hi, stroke.max(axis=0))

    @property
    def empty(self) -> bool:
        return not np.isfinite(self.lo).all()

    @property
    def centre(self) -> float:
        """The median height of the line's ink: lines are stacked by it, not by where the pen started (a primed
        line starts wherever the network took up the new text, above or below the writing's middle)."""
        if self.fixed_centre is not None:
            return self.fixed_centre
        ys = self._ys + self._open_ys
        return float(np.median(np.concatenate(ys))) if ys else 0.0


def _bounds(strokes: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, float]:
    """(lower-left, upper-right, median y) of the ink."""
    points = [np.asarray(stroke)[:, :2] for stroke in strokes if len(stroke)]
    if not points:
        return np.array([np.inf, np.inf]), np.array([-np.inf, -np.inf]), 0.0
    every = np.concatenate(points)
    return every.min(axis=0), every.max(axis=0), float(np.median(every[:, 1]))


def _framed(line: _Line, lo: np.ndarray, hi: np.ndarray, centre: float) -> _Line:
    """The line with the complete line's bounds and centre, so layout does not change as ink appears."""
    line.lo, line.hi = np.minimum(line.lo, lo), np.maximum(line.hi, hi)
    line.fixed_centre = centre
    return line


class StrokeView(QWidget):
    """Paints lines of strokes (sensor units, y up) stacked down a white page, scaled to fit the widget.

    Strokes arrive incrementally (:meth:`add`), so a streaming job repaints from cached paths instead of
    rebuilding the whole page on every chunk.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 200)
        self._lines: list[_Line] = []
        self._message = ""
        self._writing = False
        self._frame: list[tuple[np.ndarray, np.ndarray, float]] | None = None  # per-line bounds fixed in playback
        self._centres: list[tuple[int, float]] = []  # (line, y on screen of its middle), as last painted
        self.ink = QColor(INK)
        self.width_factor = 1.0  # the pen's width relative to the default (the studio's pen width / 0.4 mm)
        self.updates_received = 0

    # --- content -------------------------------------------------------------------------------------

    def begin(self, line_count: int) -> None:
        """Start a fresh page for ``line_count`` lines."""
        self._lines = [_Line() for _ in range(line_count)]
        self._message = ""
        self._writing = True
        self._frame = None
        self.updates_received = 0
        self.update()

    def finish(self) -> None:
        """The job is done: fit the page to the ink exactly."""
        self._writing = False
        self.update()

    def add(self, line: int, closed: Sequence[np.ndarray], open_: Sequence[np.ndarray] = ()) -> None:
        """Append strokes that are finished and replace the line's stroke in progress."""
        while line >= len(self._lines):
            self._lines.append(_Line())
        self._lines[line].add(closed, open_)
        self.updates_received += 1
        self.update()

    def restart_line(self, line: int) -> None:
        """Empty one line for writing it again; the others stay as they are."""
        while line >= len(self._lines):
            self._lines.append(_Line())
        self._lines[line] = _Line()
        self._frame = None
        self._message = ""
        self._writing = True
        self.update()

    def set_lines(self, lines: Sequence[Sequence[np.ndarray]]) -> None:
        """Show complete lines at once."""
        self.begin(len(lines))
        for i, strokes in enumerate(lines):
            self.add(i, strokes)
        self.finish()

    def show_partial(self, lines: Sequence[Sequence[np.ndarray]], frame: Sequence[Sequence[np.ndarray]]) -> None:
        """Show ``lines`` (part of a page) laid out as the complete ``frame`` lines would be.

        Playback draws a growing prefix of the page; fitting the page to the full ink keeps the letters
        still instead of zooming as they appear.
        """
        self._frame = [_bounds(strokes) for strokes in frame]
        self._lines = []
        self._message = ""
        self._writing = False
        for strokes in lines:
            line = _Line()
            line.add(strokes, ())
            self._lines.append(line)
        self.updates_received += 1
        self.update()

    def show_message(self, text: str) -> None:
        """Clear the page and show a short message on it (a hint, or why there is nothing to show)."""
        self._frame = None
        self._lines = []
        self._message = text
        self._writing = False
        self.update()

    @property
    def line_count(self) -> int:
        return len(self._lines)

    @property
    def stroke_count(self) -> int:
        """Strokes on the page, counting each line's stroke in progress."""
        return sum(line.strokes + (0 if line.open.isEmpty() else 1) for line in self._lines)

    @property
    def point_count(self) -> int:
        """Pen positions drawn on the page (what playback counts)."""
        return sum(line.points + line.open_points for line in self._lines)

    @property
    def message(self) -> str:
        return self._message

    def set_pen(self, colour: QColor, width_factor: float = 1.0) -> None:
        """Ink colour and width (relative to the default) of the writing on screen."""
        self.ink = QColor(colour)
        self.width_factor = width_factor
        self.update()

    def line_at(self, y: float) -> int | None:
        """The line painted nearest to ``y`` (widget pixels), None when no ink is shown."""
        if not self._centres:
            return None
        return min(self._centres, key=lambda item: abs(item[1] - y))[0]

    # --- painting ------------------------------------------------------------------------------------

    def paper_rect(self) -> QRectF:
        return QRectF(self.rect()).adjusted(14, 14, -14, -14)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt's name)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), DESK)
        paper = self.paper_rect()
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 28))
        painter.drawRoundedRect(paper.translated(0, 2), 3, 3)
        painter.setBrush(PAPER)
        painter.drawRoundedRect(paper, 3, 3)
        inked = [(i, line) for i, line in enumerate(self._lines) if not line.empty]
        self._centres = []
        if self._frame is not None:  # every line of the complete page takes its place, inked yet or not
            lines = self._lines + [_Line() for _ in range(len(self._frame) - len(self._lines))]
            inked = [
                (i, _framed(lines[i], lo, hi, centre))
                for i, (lo, hi, centre) in enumerate(self._frame)
                if np.isfinite(lo).all()
            ]
        if inked:
            self._paint_ink(painter, paper.adjusted(28, 24, -28, -24), inked)
        elif self._message:
            painter.setPen(PLACEHOLDER)
            flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
            painter.drawText(paper.adjusted(40, 40, -40, -40), flags, self._message)
        painter.end()

    def _paint_ink(self, painter: QPainter, area: QRectF, inked: list[tuple[int, _Line]]) -> None:
        spacing = LINE_SPACING * max(max(float(line.hi[1] - line.lo[1]) for _, line in inked), 1e-6)
        # Each line left-aligned at its own ink and stacked by its centre (see _Line.centre), in line units.
        shift = {i: (float(line.lo[0]), line.centre) for i, line in inked}
        right = max(float(line.hi[0]) - shift[i][0] for i, line in inked)
        top = min(i * spacing - (float(line.hi[1]) - shift[i][1]) for i, line in inked)
        bottom = max(i * spacing - (float(line.lo[1]) - shift[i][1]) for i, line in inked)
        width = max(right, NOMINAL_LINE_WIDTH * spacing if self._writing else 1e-6)
        height = max(bottom - top, 1e-6)
        scale = min(area.width() / width, area.height() / height)
        # Left-aligned so a growing line does not slide about; centred vertically on the page.
        origin = QPointF(area.left(), area.center().y() - (top + height / 2) * scale)
        k = self.width_factor
        pen = QPen(self.ink, min(max(PEN_WIDTH * spacing * scale * k, 1.2 * k, 0.6), 3.2 * k))
        pen.setCosmetic(True)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for i, line in inked:
            x0, centre = shift[i]
            mid = (float(line.lo[1] + line.hi[1]) / 2) - centre
            self._centres.append((i, origin.y() + (i * spacing - mid) * scale))
            painter.setTransform(
                QTransform()
                .translate(origin.x() - x0 * scale, origin.y() + (i * spacing + centre) * scale)
                .scale(scale, scale)
            )
            painter.drawPath(line.closed)
            painter.drawPath(line.open)
        painter.resetTransform()
