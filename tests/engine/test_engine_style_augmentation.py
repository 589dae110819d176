"""Style augmentation: a whole sequence is stretched and sheared as one page would be; training draws the
same styles again on resume."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.handwriting.preprocessing import Normalizer
from engine.handwriting.style_augmentation import StyleJitter, draw_style, restyle, style_matrix

NORMALIZER = Normalizer(mean=(0.4, -0.1), std=(2.0, 1.5))


def _raw_line() -> np.ndarray:
    """Raw (dx, dy, pen up) offsets, y up: a vertical down-up stroke, a pen-up hop right, a flat stroke."""
    return np.array(
        [[0, 0, 0], [0, 3, 0], [0, 3, 1], [2, -6, 0], [2, 0, 0], [2, 0, 1]],
        np.float32,
    )


def _points(raw: np.ndarray) -> np.ndarray:
    return np.cumsum(raw[:, :2].astype(np.float64), axis=0)


def test_identity_leaves_a_sequence_as_it_was():
    seq = NORMALIZER.normalize(_raw_line())
    np.testing.assert_allclose(restyle(seq, style_matrix(1, 1, 0), NORMALIZER), seq, atol=1e-6)


def test_a_restyled_line_is_the_same_line_stretched_and_sheared_on_the_page():
    raw = _raw_line()
    seq = NORMALIZER.normalize(raw)
    sx, sy, shear = 1.3, 0.8, 0.25
    out = NORMALIZER.denormalize(restyle(seq, style_matrix(sx, sy, shear), NORMALIZER))
    np.testing.assert_array_equal(out[:, 2], raw[:, 2])  # pen states untouched
    before, after = _points(raw), _points(out)
    expected = np.stack([sx * before[:, 0] + shear * sy * before[:, 1], sy * before[:, 1]], axis=1)
    np.testing.assert_allclose(after, expected, atol=1e-4)
    # the vertical stroke now leans right by atan(shear): the page's slant changed by that angle
    top = after[2] - after[0]
    assert math.degrees(math.atan2(top[0], top[1])) == pytest.approx(math.degrees(math.atan(shear)), abs=1e-3)
    # the flat stroke is sx times as long, the letters sy times as tall
    assert after[5, 0] - after[3, 0] == pytest.approx(sx * 4, abs=1e-4)
    assert np.ptp(after[:, 1]) == pytest.approx(sy * np.ptp(before[:, 1]), abs=1e-4)


def test_drawn_styles_spread_as_the_jitter_says():
    rng = np.random.default_rng(0)
    jitter = StyleJitter()
    mats = np.array([draw_style(rng, jitter) for _ in range(4000)])
    assert np.std(np.log(mats[:, 0, 0])) == pytest.approx(jitter.width, rel=0.08)
    assert np.std(np.log(mats[:, 1, 1])) == pytest.approx(jitter.height, rel=0.08)
    assert np.std(mats[:, 0, 1] / mats[:, 1, 1]) == pytest.approx(jitter.shear, rel=0.08)
    assert (mats[:, 1, 0] == 0).all()
    off = StyleJitter().scaled(0.0)
    np.testing.assert_array_equal(draw_style(rng, off), np.eye(2))


def test_training_restyles_each_step_reproducibly_and_validation_never(tmp_path):
    pytest.importorskip("torch")
    from engine_helpers import make_tiny_trainer

    from engine.handwriting.training import collate

    trainer = make_tiny_trainer(tmp_path / "run")
    index = np.array([0, 1, 2])
    assert trainer.styles_for(index) is None  # off by default
    trainer.settings.style_augment = 1.0
    first = trainer.styles_for(index)[0]
    assert len(first) == 3 and not np.allclose(first[0], first[1])
    again = trainer.styles_for(index)[0]
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))  # same step, same styles
    trainer.state.step += 1
    assert not np.allclose(trainer.styles_for(index)[0][0], first[0])  # a new step draws anew
    plain = collate(trainer.train_set, index)
    styled = collate(trainer.train_set, index, restyle_with=trainer.styles_for(index))
    assert not np.allclose(plain.targets.numpy(), styled.targets.numpy())
    np.testing.assert_array_equal(plain.targets[..., 2].numpy(), styled.targets[..., 2].numpy())
    np.testing.assert_array_equal(plain.mask.numpy(), styled.mask.numpy())
    # validation scores the data as it is, whatever the training setting
    nll_on, _ = trainer.validate(np.arange(4))
    trainer.settings.style_augment = 0.0
    nll_off, _ = trainer.validate(np.arange(4))
    assert nll_on == nll_off
