"""Joining a form's lines in pairs for training: the second line continues the first on its baseline."""

from __future__ import annotations

import numpy as np
import pytest

from engine.handwriting.iam_ondb import RawLine
from engine.handwriting.line_pairs import join_lines, pair_lines


def _line(line_id: str, text: str, x0: float, y0: float, letters: int = 4) -> RawLine:
    """``letters`` zig-zag strokes 100 units tall, 60 apart, starting at (x0, y0) (y down)."""
    points = []
    for i in range(letters):
        x = x0 + 60 * i
        points += [(x, y0, 0), (x + 10, y0 - 50, 0), (x + 20, y0 - 100, 0), (x + 30, y0 - 50, 0), (x + 40, y0, 1)]
    return RawLine(line_id, text, np.array(points, np.int32))


def test_second_line_continues_the_first_on_its_baseline():
    first = _line("a01-000-01", "abcd", 0, 1000)
    second = _line("a01-000-02", "efgh", 0, 1300)  # the next line: below, back at the left margin
    joined = join_lines(first, second)
    assert joined.text == "abcd efgh"
    assert joined.line_id == "a01-000-01+02"
    assert len(joined.points) == len(first.points) + len(second.points)
    moved = joined.points[len(first.points) :]
    # Same baseline, to the right of the first line's ink by a gap of about one letter height.
    assert np.median(moved[:, 1]) == np.median(first.points[:, 1])
    gap = moved[:, 0].min() - first.points[:, 0].max()
    assert 30 <= gap <= 150
    # Strokes keep their shapes and ends.
    np.testing.assert_array_equal(np.diff(moved[:, :2], axis=0), np.diff(second.points[:, :2], axis=0))
    np.testing.assert_array_equal(joined.points[:, 2], np.concatenate([first.points[:, 2], second.points[:, 2]]))


def test_pairs_stay_within_a_form_and_keep_reading_order():
    lines = [_line(f"a01-000-0{i}", f"line{i}", 0, 100 * i) for i in (3, 1, 2)]
    lines += [_line("b02-001-01", "alone", 0, 0)]
    paired = pair_lines(lines)
    assert [ln.line_id for ln in paired] == ["a01-000-01+02", "a01-000-03", "b02-001-01"]
    assert paired[0].text == "line1 line2"
    assert sum(len(ln.points) for ln in paired) == sum(len(ln.points) for ln in lines)


def test_a_pairs_first_line_is_context_whose_loss_weight_is_set_apart():
    pytest.importorskip("torch")
    from engine.handwriting.alphabet import Alphabet
    from engine.handwriting.dataset import build_sequences
    from engine.handwriting.preprocessing import Normalizer, points_to_offsets
    from engine.handwriting.training import collate

    first, second = _line("a01-000-01", "abcd", 0, 1000), _line("a01-000-02", "efg", 0, 1300, letters=3)
    joined = join_lines(first, second)
    normalizer = Normalizer(mean=(8.0, 0.0), std=(40.0, 36.0))
    seqs = build_sequences([joined, first], "skip2", Alphabet.from_texts(["abcd efg"]), normalizer)
    own = normalizer.normalize(points_to_offsets(first.points, "skip2"))
    assert seqs.context == [len(own), 0]  # a single line is all its own
    # the context is exactly the first line's steps
    np.testing.assert_allclose(seqs.strokes[0][: len(own)], own, equal_nan=False)
    mask = collate(seqs, [0, 1], context_weight=0.0).mask.numpy()
    total = len(seqs.strokes[0])
    assert (mask[0, : len(own)] == 0).all() and (mask[0, len(own) : total] == 1).all() and (mask[0, total:] == 0).all()
    assert (mask[1, : len(seqs.strokes[1])] == 1).all()
    assert (collate(seqs, [0, 1]).mask.numpy()[0, :total] == 1).all()  # weight 1: as before
