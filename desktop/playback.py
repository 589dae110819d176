"""Replay a written page as the pen drew it: play, pause, replay, speed and a scrubber over its points.

The controller only slices finished strokes (no model maths): position k shows the first k pen positions,
line after line, the way a person would write the page.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QSlider, QToolButton, QWidget

from desktop.stroke_view import StrokeView

POINTS_PER_SECOND = 120.0  # at 1x: roughly the pace of the recorded pens the model learned from
TICK_MS = 30
SPEEDS = (0.5, 1.0, 2.0, 4.0)


def first_points(lines: Sequence[Sequence[np.ndarray]], count: int) -> list[list[np.ndarray]]:
    """The first ``count`` points of the page, in writing order, split into the same lines and strokes."""
    shown: list[list[np.ndarray]] = []
    left = max(int(count), 0)
    for strokes in lines:
        line: list[np.ndarray] = []
        for stroke in strokes:
            if left <= 0:
                break
            part = stroke[:left]
            left -= len(part)
            line.append(part)
        shown.append(line)
    return shown


class Playback(QObject):
    """Drives a :class:`StrokeView` through a finished page, one timer tick at a time."""

    position_changed = Signal(int)
    playing_changed = Signal(bool)
    loaded = Signal(int)  # the total number of points (0: nothing to play)

    def __init__(self, view: StrokeView, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self._lines: list[list[np.ndarray]] = []
        self._total = 0
        self._position = 0
        self._carry = 0.0  # fractional points owed by slow speeds
        self.speed = 1.0
        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)

    @property
    def total(self) -> int:
        return self._total

    @property
    def position(self) -> int:
        return self._position

    @property
    def playing(self) -> bool:
        return self.timer.isActive()

    def load(self, lines: Sequence[Sequence[np.ndarray]]) -> None:
        """Take a finished page; it stays shown complete (position at the end) until played or scrubbed."""
        self.stop()
        self._lines = [[np.asarray(s) for s in strokes if len(s)] for strokes in lines]
        self._total = sum(len(s) for strokes in self._lines for s in strokes)
        self.loaded.emit(self._total)
        self.seek(self._total)

    def clear(self) -> None:
        """Forget the page (a new job is writing)."""
        self.stop()
        self._lines, self._total, self._position = [], 0, 0
        self.loaded.emit(0)

    def seek(self, position: int) -> None:
        """Show exactly the first ``position`` points."""
        if not self._total:
            return
        self._position = min(max(int(position), 0), self._total)
        self.view.show_partial(first_points(self._lines, self._position), self._lines)
        self.position_changed.emit(self._position)

    def play(self) -> None:
        """Play from here (from the start when at the end)."""
        if not self._total or self.playing:
            return
        if self._position >= self._total:
            self.seek(0)
        self._carry = 0.0
        self.timer.start()
        self.playing_changed.emit(True)

    def pause(self) -> None:
        if self.playing:
            self.timer.stop()
            self.playing_changed.emit(False)

    stop = pause

    def toggle(self) -> None:
        self.pause() if self.playing else self.play()

    def replay(self) -> None:
        """From the first point again."""
        if not self._total:
            return
        self.pause()
        self.seek(0)
        self.play()

    def set_speed(self, speed: float) -> None:
        self.speed = float(speed)

    def _tick(self) -> None:
        self._carry += POINTS_PER_SECOND * self.speed * TICK_MS / 1000
        steps, self._carry = int(self._carry), self._carry - int(self._carry)
        if steps:
            self.seek(self._position + steps)
        if self._position >= self._total:
            self.pause()


class PlaybackBar(QWidget):
    """Play/pause, replay, speed and the scrubber, under the page; disabled until a page is written."""

    def __init__(self, playback: Playback, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.playback = playback
        self.play_button = QToolButton()
        self.play_button.setToolTip("Play the page as the pen wrote it.")
        self.play_button.clicked.connect(playback.toggle)
        self.replay_button = QToolButton()
        self.replay_button.setText("⟲")
        self.replay_button.setToolTip("Replay from the start.")
        self.replay_button.clicked.connect(playback.replay)
        self.speed_box = QComboBox()
        for speed in SPEEDS:
            self.speed_box.addItem(f"{speed:g}×", speed)
        self.speed_box.setCurrentIndex(SPEEDS.index(1.0))
        self.speed_box.setToolTip("Playback speed.")
        self.speed_box.currentIndexChanged.connect(lambda i: playback.set_speed(self.speed_box.itemData(i)))
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setToolTip("Drag to see the page at any point of its writing.")
        self.slider.valueChanged.connect(self._scrubbed)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(14, 0, 14, 0)
        layout.addWidget(self.play_button)
        layout.addWidget(self.replay_button)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.speed_box)
        playback.loaded.connect(self._loaded)
        playback.position_changed.connect(self._moved)
        playback.playing_changed.connect(self._show_playing)
        self._show_playing(False)
        self._loaded(0)

    def _loaded(self, total: int) -> None:
        self.slider.blockSignals(True)
        self.slider.setRange(0, total)
        self.slider.setValue(total)
        self.slider.blockSignals(False)
        for widget in (self.play_button, self.replay_button, self.slider, self.speed_box):
            widget.setEnabled(total > 0)

    def _moved(self, position: int) -> None:
        if self.slider.value() != position:
            self.slider.blockSignals(True)
            self.slider.setValue(position)
            self.slider.blockSignals(False)

    def _scrubbed(self, value: int) -> None:
        self.playback.pause()
        self.playback.seek(value)

    def _show_playing(self, playing: bool) -> None:
        self.play_button.setText("⏸" if playing else "▶")
