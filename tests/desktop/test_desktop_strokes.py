"""Incremental strokes and readable errors: no Qt event loop needed."""

from __future__ import annotations

import numpy as np
import pytest

from desktop.strokes import LineStrokes
from desktop.workers import JobError, readable_error
from engine.handwriting.alphabet import UnknownCharactersError
from engine.handwriting.checkpoint import ModelFileError
from engine.handwriting.writer import offsets_to_strokes


def random_offsets(rng: np.random.Generator, n: int) -> np.ndarray:
    offsets = rng.normal(0, 5, size=(n, 3)).astype(np.float32)
    offsets[:, 2] = rng.random(n) < 0.25
    return offsets


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("pen_down_at_start", [True, False])
def test_chunked_strokes_equal_the_engines_strokes(seed: int, pen_down_at_start: bool) -> None:
    rng = np.random.default_rng(seed)
    offsets = random_offsets(rng, 120)
    offsets[10:13, 2] = 1  # single-point strokes between consecutive lifts are dropped, as in the engine
    builder = LineStrokes(pen_down_at_start)
    cuts = np.sort(rng.choice(np.arange(1, 120), size=12, replace=False))
    closed = []
    for part in np.split(offsets, cuts):
        closed.extend(builder.add(part))
    expected = offsets_to_strokes(offsets, pen_down_at_start=pen_down_at_start)
    assert len(builder.strokes) == len(expected)
    for got, want in zip(builder.strokes, expected, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)
    assert len(closed) == len(builder.closed) >= len(expected) - 1


def test_open_stroke_is_the_one_in_progress() -> None:
    builder = LineStrokes()
    assert builder.add(np.array([[1, 0, 0], [1, 0, 0]], np.float32)) == []
    np.testing.assert_allclose(builder.open[0], [[0, 0], [1, 0], [2, 0]])
    closed = builder.add(np.array([[1, 1, 1], [5, 0, 0], [1, 0, 0]], np.float32))
    np.testing.assert_allclose(closed[0], [[0, 0], [1, 0], [2, 0], [3, 1]])
    np.testing.assert_allclose(builder.open[0], [[8, 1], [9, 1]])


def test_errors_read_as_sentences_for_people() -> None:
    unknown = readable_error(UnknownCharactersError("é€"))
    assert "cannot write these characters" in unknown and "'é'" in unknown and "'€'" in unknown
    assert readable_error(ModelFileError("model file x.npz does not exist")).startswith(
        "Could not load the handwriting model: Model file x.npz does not exist."
    )
    assert readable_error(ValueError("there is no text to write")) == "There is no text to write."
    assert readable_error(JobError("Exactly this.")) == "Exactly this."
    assert "KeyError" in readable_error(KeyError("alphabet"))
