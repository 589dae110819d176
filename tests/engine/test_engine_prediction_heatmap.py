"""The prediction heat map: mixture mass on a grid is a probability, ink is scaled like a style's, and the shipped
prediction network expects the pen near where it last was."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.handwriting.prediction_heatmap import (
    PenPredictor,
    add_mixture_mass,
    pen_points,
    resample_stroke,
)
from engine.handwriting.styles import IAM_LETTER_HEIGHT, IAM_POINT_SPACING
from engine.handwriting.writer import shipped_model_path


def test_one_gaussian_puts_unit_mass_around_its_mean():
    grid = np.zeros((100, 120), np.float32)
    mu, sigma = np.array([[200.0, 150.0]]), np.array([[20.0, 10.0]])
    add_mixture_mass(grid, 4.0, np.array([1.0]), mu, sigma, np.array([0.0]))
    assert grid.sum() == pytest.approx(1.0, abs=0.01)
    r, c = np.unravel_index(np.argmax(grid), grid.shape)
    assert abs((c + 0.5) * 4 - 200) <= 4 and abs((r + 0.5) * 4 - 150) <= 4
    # correlation tilts the blob: positive rho puts mass on the down-right / up-left diagonal (y down here)
    tilted = np.zeros_like(grid)
    add_mixture_mass(tilted, 4.0, np.array([1.0]), mu, np.array([[20.0, 20.0]]), np.array([0.8]))
    r0, c0 = 150 // 4, 200 // 4
    assert tilted[r0 + 5, c0 + 5] > 10 * tilted[r0 + 5, c0 - 5]


def test_mass_outside_the_surface_is_left_out():
    grid = np.zeros((10, 10), np.float32)
    add_mixture_mass(
        grid, 4.0, np.array([0.5, 0.5]), np.array([[-500.0, 0.0], [20.0, 20.0]]), np.full((2, 2), 3.0), np.zeros(2)
    )
    assert grid.sum() == pytest.approx(0.5, abs=0.01)


def test_ink_is_resampled_at_the_training_data_spacing():
    stroke = np.array([[0.0, 100.0], [360.0, 100.0]])
    spacing = IAM_POINT_SPACING * IAM_LETTER_HEIGHT
    assert len(resample_stroke(stroke, 3.6)) == 101
    points = pen_points([stroke, np.array([[400.0, 90.0]])], IAM_LETTER_HEIGHT / 36, "paper")
    assert points[:, 2].tolist().count(1) == 2 and points[-1, 2] == 1
    steps = np.hypot(*np.diff(points[:-1, :2], axis=0).T)
    np.testing.assert_allclose(steps, spacing, rtol=0.05)
    skip2 = pen_points([stroke], IAM_LETTER_HEIGHT / 36, "skip2")
    assert len(skip2) == pytest.approx(len(points[:-1]) / 2, abs=2)


@pytest.mark.skipif(
    not shipped_model_path("prediction").with_suffix(".onnx").exists(), reason="no shipped prediction model"
)
def test_the_shipped_network_expects_the_pen_near_its_last_point():
    predictor = PenPredictor.load(backend="onnx")
    t = np.linspace(0, 6 * math.pi, 160)
    word = np.column_stack([60 + 12 * t - 8 * np.sin(t), 130 - 18 + 18 * np.cos(t)])
    heat = predictor.heatmap([word], (800, 250), letter_height_px=36, cell=4)
    assert heat.trail.shape == (63, 200) and heat.steps > 20
    assert 0.5 < heat.next.sum() <= 1.03
    assert heat.trail.sum() == pytest.approx(heat.steps, rel=0.2)
    r, c = np.unravel_index(np.argmax(heat.next), heat.next.shape)
    last = word[-1]
    assert math.hypot((c + 0.5) * 4 - last[0], (r + 0.5) * 4 - last[1]) < 3 * 36
    empty = predictor.heatmap([], (100, 50), 36)
    assert empty.steps == 0 and not empty.trail.any()


def test_a_tiny_prediction_network_maps_mass_on_the_grid(tiny_prediction_model):
    predictor = PenPredictor.load(tiny_prediction_model, backend="torch")
    t = np.linspace(0, 4 * math.pi, 80)
    word = np.column_stack([40 + 10 * t, 60 + 15 * np.cos(t)])
    heat = predictor.heatmap([word[:40], word[40:]], (300, 120), letter_height_px=20, cell=5)
    assert heat.trail.shape == (24, 60) and heat.trail.dtype == np.float32 and heat.steps > 5
    # mass per cell is the density at its centre times its area: within a few percent of the exact integral
    assert (heat.trail >= 0).all() and 0 < heat.next.sum() <= 1.03
    assert heat.trail.sum() <= 1.03 * heat.steps


def test_the_ink_sets_its_own_scale_once_there_is_enough(tiny_prediction_model):
    from engine.handwriting.prediction_heatmap import ink_letter_height

    t = np.linspace(0, 2 * math.pi, 30)
    short = [np.column_stack([10 * t, 30 * np.cos(t)])]
    assert ink_letter_height(short, 20.0) == 20.0  # too little ink to measure: the prior
    t = np.linspace(0, 20 * math.pi, 600)
    long = [np.column_stack([10 * t, 30 * np.cos(t)])]
    assert 30 < ink_letter_height(long, 20.0) < 60  # the interquartile band of a +-30 px wave: about 42 px
    with pytest.raises(ValueError, match="positive"):
        PenPredictor.load(tiny_prediction_model, backend="torch").heatmap(short, (10, 10), 0)
