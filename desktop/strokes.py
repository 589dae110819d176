"""Pen steps arriving chunk by chunk, turned into strokes without re-walking the whole line each time."""

from __future__ import annotations

import numpy as np

from engine.handwriting.writer import offsets_to_strokes


class LineStrokes:
    """One line's strokes while it is being written.

    A stroke that ended with a pen lift never changes again (``closed``); only the stroke in progress
    (``open``) is rebuilt, from the steps since the last lift. So each chunk costs time in proportion to
    its own size, and the view can append closed strokes instead of redrawing the line.
    """

    def __init__(self, pen_down_at_start: bool = True) -> None:
        self.closed: list[np.ndarray] = []
        self.open: list[np.ndarray] = []
        self._tail = np.zeros((0, 3), np.float64)
        self._tail_start = np.zeros(2, np.float64)
        self._tail_pen_down = pen_down_at_start

    def add(self, offsets: np.ndarray) -> list[np.ndarray]:
        """Take the next steps (n, 3: dx, dy-up, eos); return the strokes they closed (``open`` is updated)."""
        steps = np.concatenate([self._tail, np.asarray(offsets, np.float64).reshape(-1, 3)])
        lifts = np.flatnonzero(steps[:, 2] > 0.5)
        newly_closed: list[np.ndarray] = []
        if len(lifts):
            end = int(lifts[-1]) + 1
            start = (float(self._tail_start[0]), float(self._tail_start[1]))
            newly_closed = offsets_to_strokes(steps[:end], start, self._tail_pen_down)
            self._tail_start = self._tail_start + steps[:end, :2].sum(axis=0)
            self._tail_pen_down = False
            steps = steps[end:]
        self._tail = steps
        start = (float(self._tail_start[0]), float(self._tail_start[1]))
        self.open = offsets_to_strokes(steps, start, self._tail_pen_down) if len(steps) else []
        self.closed.extend(newly_closed)
        return newly_closed

    @property
    def strokes(self) -> list[np.ndarray]:
        """Every stroke so far, the open one included (what export writes once the line is done)."""
        return self.closed + self.open
