"""The page paints ink where strokes are and a message where there are none."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import qGray

from desktop.stroke_view import INK, StrokeView


def ink_pixels(view: StrokeView) -> int:
    """Pixels about as dark as the ink (paper, desk and the grey message text are all much lighter)."""
    image = view.grab().toImage()
    return sum(
        qGray(image.pixel(x, y)) < qGray(INK.rgb()) + 60
        for y in range(0, image.height(), 2)
        for x in range(0, image.width(), 2)
    )


def test_strokes_are_painted_and_scaled_into_the_widget(qtbot) -> None:
    view = StrokeView()
    qtbot.addWidget(view)
    view.resize(400, 240)
    t = np.linspace(0, 6 * np.pi, 200)
    wave = np.column_stack([t * 40, 60 * np.sin(t)])
    view.set_lines([[wave], [wave[:100], wave[120:] + [0, 30]]])
    assert view.line_count == 2 and view.stroke_count == 3
    assert ink_pixels(view) > 100


def test_incremental_updates_replace_the_open_stroke(qtbot) -> None:
    view = StrokeView()
    qtbot.addWidget(view)
    view.begin(1)
    view.add(0, [], [np.array([[0.0, 0.0], [5.0, 5.0]])])
    view.add(0, [np.array([[0.0, 0.0], [5.0, 5.0], [9.0, 0.0]])], [np.array([[12.0, 0.0], [15.0, 3.0]])])
    assert view.stroke_count == 2  # one closed, one open: the first open stroke was replaced, not kept
    assert view.updates_received == 2


def test_message_shows_when_there_is_no_ink(qtbot) -> None:
    view = StrokeView()
    qtbot.addWidget(view)
    view.resize(400, 240)
    view.show_message("No handwriting model is loaded.")
    assert view.message == "No handwriting model is loaded."
    assert view.line_count == 0 and ink_pixels(view) == 0


def ink_rows_and_left(view: StrokeView) -> tuple[list[int], list[int]]:
    """Rows holding ink, and each ink row's leftmost ink column."""
    image = view.grab().toImage()
    rows, lefts = [], []
    for y in range(image.height()):
        xs = [x for x in range(image.width()) if qGray(image.pixel(x, y)) < qGray(INK.rgb()) + 60]
        if xs:
            rows.append(y)
            lefts.append(xs[0])
    return rows, lefts


def test_lines_are_stacked_by_their_ink_not_by_where_the_pen_started(qtbot) -> None:
    """A primed line starts wherever the network took up the text: its strokes may sit far above or right of
    (0, 0). Lines still follow each other down the page, left-aligned, without overlapping."""
    view = StrokeView()
    qtbot.addWidget(view)
    view.resize(500, 300)
    t = np.linspace(0, 8 * np.pi, 300)
    wave = np.column_stack([t * 10, 10 * np.sin(t)])  # ink 20 high
    view.set_lines([[wave], [wave + [80.0, 35.0]]])  # the second line's pen started 35 lower and 80 left
    rows, lefts = ink_rows_and_left(view)
    bands = np.split(np.array(rows), np.flatnonzero(np.diff(rows) > 1) + 1)
    assert len(bands) == 2, "the lines overlap"  # two separate bands of ink, one per line
    first, second = bands
    assert first.mean() < second.mean()  # the first line above the second
    left_of = {y: x for y, x in zip(rows, lefts, strict=True)}
    assert abs(min(left_of[y] for y in first) - min(left_of[y] for y in second)) <= 2  # both left-aligned
    assert view.line_at(float(first.mean())) == 0 and view.line_at(float(second.mean())) == 1
