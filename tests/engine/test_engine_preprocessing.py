"""Pen points -> network inputs: y up, offsets and pen lifts, skip2 downsampling, clipping, normalisation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from iam_builder import skip2_keep

from engine.handwriting.preprocessing import (
    CLIP_SENSOR_UNITS,
    Normalizer,
    downsample,
    offsets_to_points,
    points_to_offsets,
)


@st.composite
def pen_lines(draw, max_step: int = 200):
    """(points (N, 3) x, y-down, eos with the last point of every stroke flagged, stroke lengths)."""
    lengths = draw(st.lists(st.integers(1, 9), min_size=1, max_size=6))
    n = sum(lengths)
    steps = draw(st.lists(st.integers(-max_step, max_step), min_size=2 * n, max_size=2 * n))
    xy = np.cumsum(np.array(steps, dtype=np.int64).reshape(n, 2), axis=0) + 1000
    eos = np.zeros(n, np.int64)
    eos[np.cumsum(lengths) - 1] = 1
    return np.column_stack([xy, eos]), lengths


def test_offsets_flip_y_up_and_carry_pen_lifts():
    points = np.array([[10, 100, 0], [13, 90, 0], [20, 95, 1], [50, 80, 0], [52, 70, 1]])
    offsets = points_to_offsets(points, "paper")
    assert offsets.dtype == np.float32
    # dx as recorded, dy negated (IAM's y grows downward), eos of the point each step arrives at
    expected = np.array([[3, 10, 0], [7, -5, 1], [30, 15, 0], [2, 10, 1]], np.float32)
    np.testing.assert_array_equal(offsets, expected)


@settings(max_examples=60, deadline=None)
@given(pen_lines())
def test_offsets_to_points_inverts_points_to_offsets(line):
    points, _ = line
    assume(len(points) >= 2)
    offsets = points_to_offsets(points, "paper")
    assert len(offsets) == len(points) - 1
    back = offsets_to_points(offsets, start=(points[0, 0], -points[0, 1]))
    np.testing.assert_allclose(back[:, 0], points[:, 0])
    np.testing.assert_allclose(back[:, 1], -points[:, 1])  # y up
    np.testing.assert_array_equal(back[1:, 2], points[1:, 2])


@settings(max_examples=80, deadline=None)
@given(pen_lines())
def test_skip2_keeps_every_second_point_and_every_stroke_end(line):
    points, lengths = line
    kept = downsample(points, "skip2")
    np.testing.assert_array_equal(kept, points[skip2_keep(lengths)])
    # pen lifts stay where they were: one flag per stroke, each on the stroke's last point
    assert kept[:, 2].sum() == len(lengths)
    ends = points[np.cumsum(lengths) - 1]
    np.testing.assert_array_equal(kept[kept[:, 2] == 1], ends)
    # and each stroke's first point survives
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    assert all((kept[:, :2] == points[s, :2]).all(1).any() for s in starts)
    assert len(kept) <= len(points) // 2 + len(lengths) + 1


def test_skip2_keeps_the_first_point_of_an_unfinished_last_stroke():
    points = np.array([[0, 0, 1], [1, 1, 0], [2, 2, 0], [3, 3, 0]])
    kept = downsample(points, "skip2")
    assert [1, 1, 0] in kept.tolist()


def test_paper_convention_keeps_every_point_and_unknown_conventions_fail():
    points = np.array([[0, 0, 0], [1, 1, 0], [2, 2, 1]])
    np.testing.assert_array_equal(downsample(points, "paper"), points)
    with pytest.raises(ValueError, match="unknown point convention"):
        downsample(points, "skip3")
    with pytest.raises(ValueError, match="at least two points"):
        points_to_offsets(points[:1], "paper")


def test_skip2_offsets_are_the_downsampled_steps():
    points = np.array([[0, 0, 0], [1, 0, 0], [3, 0, 0], [6, 0, 1], [10, -4, 0], [15, -4, 1]])
    offsets = points_to_offsets(points, "skip2")
    # kept: 0, 2, 3 (end), 4 (start of stroke 2), 5 (end)
    np.testing.assert_array_equal(offsets, [[3, 0, 0], [3, 0, 1], [4, 4, 0], [5, 0, 1]])


def test_huge_jumps_are_clipped_and_small_ones_kept():
    points = np.array([[0, 0, 0], [5000, 10, 0], [5003, -3000, 1], [5004, -2999, 1]])
    offsets = points_to_offsets(points, "paper")
    np.testing.assert_array_equal(offsets[:, 0], [CLIP_SENSOR_UNITS, 3, 1])
    np.testing.assert_array_equal(offsets[:, 1], [-10, CLIP_SENSOR_UNITS, -1])
    assert np.abs(offsets[:, :2]).max() <= CLIP_SENSOR_UNITS


def test_normalizer_fits_zero_mean_unit_std():
    rng = np.random.default_rng(0)
    seqs = [np.column_stack([rng.normal(5, 3, (n, 2)), rng.integers(0, 2, n)]) for n in (10, 40, 7)]
    norm = Normalizer.fit(seqs)
    flat = np.concatenate([norm.normalize(s) for s in seqs])
    np.testing.assert_allclose(flat[:, :2].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(flat[:, :2].std(0), 1, atol=1e-5)
    np.testing.assert_array_equal(flat[:, 2], np.concatenate([s[:, 2] for s in seqs]))
    again = Normalizer.from_dict(norm.to_dict())
    np.testing.assert_array_equal(again.normalize(seqs[0]), norm.normalize(seqs[0]))


@settings(max_examples=60, deadline=None)
@given(
    st.tuples(st.floats(-50, 50), st.floats(-50, 50)),
    st.tuples(st.floats(0.1, 100), st.floats(0.1, 100)),
    st.lists(st.tuples(st.floats(-500, 500), st.floats(-500, 500), st.sampled_from([0.0, 1.0])), min_size=1),
)
def test_normalizer_round_trip(mean, std, rows):
    norm = Normalizer(mean, std)
    offsets = np.array(rows, np.float32)
    normalized = norm.normalize(offsets)
    assert normalized is not offsets
    back = norm.denormalize(normalized)
    np.testing.assert_allclose(back, offsets, rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(back[:, 2], offsets[:, 2])
