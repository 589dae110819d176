"""Prediction mode on the pen canvas: the heat map follows the ink, computed off the UI thread, and goes away."""

from __future__ import annotations

import numpy as np
from desktop_helpers import LINE_WORDS, mouse_stroke

from desktop.pen_canvas import heat_image
from desktop.style_library import StyleLibrary
from desktop.style_panel import StylePanel
from engine.handwriting.prediction_heatmap import HeatMap


def test_the_heat_map_follows_the_ink_and_hides(qtbot, tiny_prediction_model) -> None:
    panel = StylePanel(StyleLibrary())
    qtbot.addWidget(panel)
    panel.resize(800, 560)
    panel.show()
    panel.prediction.model_path = tiny_prediction_model
    maps = []
    panel.prediction.updated.connect(maps.append)
    panel.prediction_check.setChecked(True)
    assert panel.canvas.heatmap is None  # nothing written, nothing predicted
    mouse_stroke(panel.canvas, LINE_WORDS[0])
    qtbot.waitUntil(lambda: bool(maps), timeout=20000)
    heat = panel.canvas.heatmap
    assert heat is maps[-1] and heat.steps > 10
    assert heat.trail.shape == (int(np.ceil(panel.canvas.height() / 4)), int(np.ceil(panel.canvas.width() / 4)))
    assert heat.next.sum() > 0 and heat.trail.sum() > heat.next.sum()
    first = len(maps)
    mouse_stroke(panel.canvas, LINE_WORDS[1])
    qtbot.waitUntil(lambda: len(maps) > first and maps[-1].steps > heat.steps, timeout=20000)
    assert not panel.grab().isNull()  # paints with the map under the ink
    panel.prediction_check.setChecked(False)
    assert panel.canvas.heatmap is None
    panel.shutdown()


def test_a_missing_prediction_model_is_explained(qtbot, tmp_path) -> None:
    panel = StylePanel(StyleLibrary())
    qtbot.addWidget(panel)
    panel.prediction.model_path = tmp_path / "none.npz"
    panel.canvas.set_strokes([[(10.0, 10.0, 0.0, 0.5), (40.0, 30.0, 0.1, 0.5)]])
    panel.prediction_check.setChecked(True)
    qtbot.waitUntil(lambda: panel.status_kind == "error", timeout=10000)
    assert "No prediction model" in panel.status_text and panel.canvas.heatmap is None
    panel.shutdown()


def test_heat_image_is_transparent_where_nothing_is_expected() -> None:
    trail = np.zeros((10, 20), np.float32)
    upcoming = np.zeros_like(trail)
    trail[5, 5], upcoming[2, 15] = 0.3, 0.8
    image = heat_image(HeatMap(trail, upcoming, 4.0, 3))
    assert (image.width(), image.height()) == (20, 10)
    assert image.pixelColor(0, 0).alpha() == 0
    assert image.pixelColor(15, 2).alpha() > 200 and image.pixelColor(15, 2).red() == 255
    assert 0 < image.pixelColor(5, 5).alpha() < 200 and image.pixelColor(5, 5).blue() > image.pixelColor(5, 5).red()
