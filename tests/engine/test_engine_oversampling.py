"""Oversampling lines with rare characters: who is repeated, how often, and that batches carry the repeats."""

from __future__ import annotations

import numpy as np
import pytest

from engine.handwriting.oversampling import rare_character_repeats


def test_lines_repeat_by_their_rarest_character():
    common = ["the cat sat"] * 96
    texts = [*common, "a quiz", "a quiz", "za", "the cat"]  # z on 3 of 100 lines, q on 2
    repeats = rare_character_repeats(texts, most=4)
    assert repeats.dtype == np.int64 and len(repeats) == len(texts)
    assert (repeats[:96] == 1).all() and repeats[99] == 1  # only common characters
    assert repeats[96] == repeats[97] == 3  # q on 2% of the lines: ceil(0.05 / 0.02) = 3
    assert repeats[98] == 2  # z on 3%: ceil(0.05 / 0.03) = 2
    assert (rare_character_repeats(texts, most=2) <= 2).all()


def test_one_means_no_oversampling_and_zero_is_refused():
    texts = ["abc", "xyz", "abc"]
    assert (rare_character_repeats(texts, most=1) == 1).all()
    with pytest.raises(ValueError, match="at least 1"):
        rare_character_repeats(texts, most=0)


def test_epoch_batches_carry_each_line_its_number_of_times():
    pytest.importorskip("torch")
    from engine.handwriting.training import epoch_batches

    lengths = np.array([10, 50, 30, 20, 40])
    repeats = np.array([1, 3, 1, 2, 1])
    batches = epoch_batches(lengths, 2, seed=0, epoch=1, repeats=repeats)
    seen = np.bincount(np.concatenate(batches), minlength=5)
    assert seen.tolist() == repeats.tolist()
    again = epoch_batches(lengths, 2, seed=0, epoch=1, repeats=repeats)  # fixed by (seed, epoch): exact resume
    assert all((a == b).all() for a, b in zip(batches, again, strict=True))
    plain = epoch_batches(lengths, 2, seed=0, epoch=1)
    assert sorted(np.concatenate(plain).tolist()) == [0, 1, 2, 3, 4]
