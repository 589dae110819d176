"""The pen canvas: tablet pressure, the eraser end, mouse ink, undo and clear, autosave that survives a crash."""

from __future__ import annotations

import json
import math

import pytest
from desktop_helpers import LINE_WORDS, loops, mouse_stroke, tablet_device, tablet_stroke
from PySide6.QtGui import QKeySequence, qGray
from PySide6.QtTest import QTest

from desktop.pen_canvas import AUTOSAVE_NAME, INK, MOUSE_WIDTH, PenCanvas
from engine.paths import data_dir


@pytest.fixture
def canvas(qtbot):
    widget = PenCanvas()
    qtbot.addWidget(widget)
    widget.resize(640, 300)
    widget.show()
    return widget


@pytest.fixture
def pen():
    return tablet_device()


def test_tablet_strokes_keep_pressure_and_draw_it_as_width(canvas, pen) -> None:
    points = loops(40, 2)
    pressures = [0.1 + 0.8 * i / (len(points) - 1) for i in range(len(points))]
    tablet_stroke(canvas, pen, points, pressures)
    assert canvas.stroke_count == 1 and canvas.device == "tablet"
    stroke = canvas.strokes[0]
    assert len(stroke) == len(points)
    assert stroke[0][3] == pytest.approx(0.1) and stroke[-1][3] == pytest.approx(0.9)
    times = [p[2] for p in stroke]
    assert times == sorted(times)
    widths = canvas.widths(0)
    assert widths[-1] > 3 * widths[0]  # firm pressure draws a much thicker line than a light touch
    assert all(a <= b for a, b in zip(widths, widths[1:], strict=False))


def test_the_eraser_end_removes_whole_strokes_it_touches(canvas, pen) -> None:
    for word in LINE_WORDS:
        tablet_stroke(canvas, pen, word, [0.5] * len(word))
    eraser = tablet_device(eraser=True)
    x, y = LINE_WORDS[1][10]
    tablet_stroke(canvas, eraser, [(x - 3, y), (x, y), (x + 3, y)], [0.5, 0.5, 0.5])
    assert canvas.stroke_count == 1
    assert canvas.strokes[0][0][:2] == pytest.approx(LINE_WORDS[0][0])
    canvas.undo()
    assert canvas.stroke_count == 2


def test_mouse_draws_without_pressure(canvas) -> None:
    mouse_stroke(canvas, loops(40, 2))
    assert canvas.stroke_count == 1 and canvas.device == "mouse"
    assert all(math.isnan(p[3]) for p in canvas.strokes[0])
    assert set(canvas.widths(0)) == {MOUSE_WIDTH}


def test_mouse_events_qt_makes_from_tablet_input_are_ignored(canvas, pen) -> None:
    mouse_stroke(canvas, loops(40, 2), device=pen)
    assert canvas.stroke_count == 0


def test_undo_and_clear(canvas, pen) -> None:
    for word in LINE_WORDS:
        mouse_stroke(canvas, word)
    canvas.undo()
    assert canvas.stroke_count == 1
    mouse_stroke(canvas, LINE_WORDS[1])
    canvas.clear()
    assert canvas.stroke_count == 0
    QTest.keySequence(canvas, QKeySequence.StandardKey.Undo)  # Ctrl+Z brings a cleared line back
    assert canvas.stroke_count == 2


def test_ink_is_painted(canvas, pen) -> None:
    tablet_stroke(canvas, pen, LINE_WORDS[0], [0.8] * len(LINE_WORDS[0]))
    image = canvas.grab().toImage()
    dark = sum(qGray(image.pixel(x, y)) < qGray(INK.rgb()) + 60 for y in range(80, 140) for x in range(20, 200))
    assert dark > 100


def test_autosave_is_valid_json_after_every_stroke_and_restores(qtbot, canvas, pen) -> None:
    path = data_dir() / AUTOSAVE_NAME
    for n, word in enumerate(LINE_WORDS, 1):
        tablet_stroke(canvas, pen, word, [0.5] * len(word))
        qtbot.waitUntil(lambda n=n: path.exists() and len(json.loads(path.read_text())["strokes"]) == n, timeout=3000)
    mouse_stroke(canvas, loops(400, 1))
    canvas.flush()  # what closing the window does
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []
    again = PenCanvas()
    qtbot.addWidget(again)
    assert again.stroke_count == 3
    for got, want in zip(again.strokes, canvas.strokes, strict=True):
        assert [v for p in got for v in p[:2]] == pytest.approx([v for p in want for v in p[:2]], abs=1e-3)
    assert math.isnan(again.strokes[2][0][3]) and again.strokes[0][0][3] == pytest.approx(0.5)


def test_a_damaged_autosave_is_set_aside_not_lost(qtbot) -> None:
    path = data_dir() / AUTOSAVE_NAME
    path.write_text('{"format": "penwright-canvas", "strokes": [[[1, 2')
    widget = PenCanvas()
    qtbot.addWidget(widget)
    assert widget.stroke_count == 0
    assert (path.parent / "canvas-autosave.damaged.json").exists() and not path.exists()
