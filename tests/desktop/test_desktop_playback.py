"""Playback of a written page: scrubbing shows exactly the first k points; play, pause and replay."""

from __future__ import annotations

import numpy as np
import pytest
from desktop_helpers import write_and_wait
from PySide6.QtCore import Qt

from desktop.playback import Playback, PlaybackBar, first_points
from desktop.stroke_view import StrokeView


def page() -> list[list[np.ndarray]]:
    """Two lines: strokes of 5 and 3 points, then one of 4 (12 points)."""
    line = np.cumsum(np.ones((12, 2)), axis=0)
    return [[line[:5], line[5:8]], [line[8:] + [0, 3]]]


@pytest.fixture
def player(qtbot):
    view = StrokeView()
    qtbot.addWidget(view)
    view.resize(400, 300)
    playback = Playback(view)
    bar = PlaybackBar(playback)
    qtbot.addWidget(bar)
    playback.load(page())
    yield playback, bar
    playback.stop()


def test_first_points_keeps_order_lines_and_strokes() -> None:
    shown = first_points(page(), 7)
    assert [len(s) for s in shown[0]] == [5, 2] and shown[1] == []
    np.testing.assert_array_equal(shown[0][1], page()[0][1][:2])
    assert sum(len(s) for line in first_points(page(), 99) for s in line) == 12


@pytest.mark.parametrize("k", [0, 1, 5, 6, 9, 12])
def test_scrubbing_to_k_shows_exactly_the_first_k_points(player, k) -> None:
    playback, bar = player
    assert bar.slider.maximum() == 12 and bar.slider.value() == 12
    bar.slider.setValue(k)
    assert playback.position == k and playback.view.point_count == k


def test_play_advances_and_stops_at_the_end(qtbot, player) -> None:
    playback, bar = player
    bar.slider.setValue(0)
    playback.set_speed(4.0)
    qtbot.mouseClick(bar.play_button, Qt.MouseButton.LeftButton)
    assert playback.playing
    qtbot.waitUntil(lambda: playback.position > 0, timeout=2000)
    qtbot.waitUntil(lambda: not playback.playing, timeout=3000)
    assert playback.position == 12 and bar.slider.value() == 12 and playback.view.point_count == 12


def test_pause_stops(qtbot, player) -> None:
    playback, bar = player
    playback.load([[np.zeros((2000, 2))]])
    playback.seek(0)
    playback.play()
    qtbot.waitUntil(lambda: playback.position > 0, timeout=2000)
    qtbot.mouseClick(bar.play_button, Qt.MouseButton.LeftButton)
    stopped = playback.position
    qtbot.wait(120)
    assert not playback.playing and playback.position == stopped < 2000


def test_replay_restarts_from_the_first_point(qtbot, player) -> None:
    playback, bar = player
    playback.load([[np.zeros((2000, 2))]])
    seen: list[int] = []
    playback.position_changed.connect(seen.append)
    qtbot.mouseClick(bar.replay_button, Qt.MouseButton.LeftButton)
    assert seen[0] == 0 and playback.playing
    qtbot.waitUntil(lambda: playback.position > 0, timeout=2000)
    playback.pause()


def test_playback_is_disabled_until_a_page_is_written(qtbot, tab) -> None:
    assert not tab.playback_bar.slider.isEnabled() and not tab.playback_bar.play_button.isEnabled()
    write_and_wait(qtbot, tab, "abc cab")
    points = sum(len(s) for line in tab.result.lines for s in line)
    assert tab.playback.total == points and tab.playback_bar.slider.maximum() == points
    assert tab.playback_bar.play_button.isEnabled()
    tab.playback_bar.slider.setValue(points // 2)
    assert tab.view.point_count == points // 2
