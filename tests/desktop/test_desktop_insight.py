"""Model insight plots: the attention window and the mixture density get data of the right shape."""

from __future__ import annotations

import numpy as np
import pytest
from desktop_helpers import write_and_wait

from desktop.insight import END_LABEL, density_grid
from desktop.main_window import MainWindow
from engine.handwriting.sampling import MixtureParams


@pytest.fixture
def window(qtbot, tiny_synthesis_model):
    win = MainWindow(tiny_synthesis_model)
    qtbot.addWidget(win)
    win.resize(1200, 600)
    win.show()
    qtbot.waitUntil(lambda: win.handwriting.model_ready, timeout=20000)
    yield win
    win.handwriting.shutdown()


def view_action(window, title: str):
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    return next(a for a in menu.actions() if a.text() == title)


def test_plots_opened_before_writing_show_a_hint(qtbot, window) -> None:
    view_action(window, "Attention window").trigger()
    view_action(window, "Mixture density").trigger()
    assert window.attention_dock.isVisible() and window.density_dock.isVisible()
    assert window.attention.showing_hint and "Write some text" in window.attention.hint.text()
    assert window.density.showing_hint and "Write some text" in window.density.hint.text()


def test_attention_window_covers_steps_by_characters(qtbot, window) -> None:
    view_action(window, "Attention window").trigger()
    write_and_wait(qtbot, window.handwriting, "abc cab\nba")
    result = window.handwriting.result
    plot = window.attention
    assert not plot.showing_hint and plot.line_spin.maximum() == 2
    for line, text in enumerate(result.texts):
        weights = plot.window(line)
        steps = len(result.recording.offsets[line])
        assert weights.shape == (steps, len(text) + 1)
    assert plot.image.image.shape == plot.window(0).shape
    ticks = plot.plot.getAxis("left")._tickLevels[0]
    assert [label for _, label in ticks] == ["a", "b", "c", "␣", "c", "a", "b", END_LABEL]
    plot.line_spin.setValue(2)
    assert plot.image.image.shape == plot.window(1).shape


def test_mixture_density_is_drawn_over_the_line(qtbot, window) -> None:
    write_and_wait(qtbot, window.handwriting, "abc")
    view_action(window, "Mixture density").trigger()
    plot = window.density
    recording = window.handwriting.result.recording
    assert recording.params[0].pi.shape[0] == len(recording.offsets[0])
    assert not plot.showing_hint and plot.grid is not None and plot.grid.ndim == 2
    assert plot.grid.shape[0] > 100 and np.isfinite(plot.grid).all() and plot.grid.max() > 0


def test_density_grid_holds_the_mass_near_the_predicted_offsets() -> None:
    # One step, one component: pen at the origin, next offset predicted at (10, 0) with sigma 1.
    params = MixtureParams(
        eos=np.zeros(2), pi=np.ones((2, 1)), mu=np.array([[[10.0, 0.0]]] * 2),
        sigma=np.ones((2, 1, 2)), rho=np.zeros((2, 1)),
    )  # fmt: skip
    offsets = np.array([[10.0, 0.0, 0.0], [10.0, 0.0, 0.0]])
    grid, (left, bottom, cell) = density_grid(offsets, params, mean=(0, 0), std=(1, 1), width=120)
    assert abs(grid.sum() * cell * cell - 2.0) < 0.05  # two steps, each a unit of probability
    peak = np.unravel_index(grid.argmax(), grid.shape)
    x, y = left + (peak[0] + 0.5) * cell, bottom + (peak[1] + 0.5) * cell
    assert min(abs(x - 10), abs(x - 20)) < 2 * cell and abs(y) < 2 * cell
