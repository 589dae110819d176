"""A page without a style is written in one hand the network invents for the seed, not a new writer per line."""

from __future__ import annotations

import numpy as np
import pytest

from engine.handwriting import writer as writer_module
from engine.handwriting.sampling import prime_state
from engine.handwriting.writer import HANDS_KEPT, HandwritingWriter, Prime
from engine.jobs import GenerationJob, GenerationRequest

TEXTS = ["abc cab", "ba ca", "cab"]


@pytest.fixture(scope="module")
def writer(tiny_synthesis_model) -> HandwritingWriter:
    return HandwritingWriter.load(tiny_synthesis_model, backend="torch")


def _same(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(x.offsets, y.offsets) for x, y in zip(a, b, strict=True))


def test_the_invented_hand_is_the_seeds_and_written_in_letters_the_model_has(writer):
    hand = writer.invented_hand(5, 0.5)
    assert isinstance(hand, Prime) and len(hand.offsets) > 1
    assert not writer.alphabet.unknown(hand.text)  # the tiny model cannot write "handwriting": its own letters
    np.testing.assert_array_equal(writer.invented_hand(5, 0.5).offsets, hand.offsets)
    assert not np.array_equal(writer.invented_hand(6, 0.5).offsets[:5], hand.offsets[:5])


def test_one_hand_primes_every_line_with_the_invented_hand(writer):
    lines = writer.write(TEXTS, bias=0.5, seed=3, one_hand=True)
    assert all(line.primed for line in lines)
    assert _same(lines, writer.write(TEXTS, bias=0.5, seed=3, prime=writer.invented_hand(3, 0.5)))
    assert _same(lines, writer.write(TEXTS, bias=0.5, seed=3, one_hand=True))  # reproducible
    assert not any(line.primed for line in writer.write(TEXTS, bias=0.5, seed=3))  # off: independent lines


def test_a_given_prime_and_a_single_line_are_left_as_they_are(writer):
    style = writer.invented_hand(11, 0.5)
    assert _same(
        writer.write(TEXTS, bias=0.5, seed=3, prime=style, one_hand=True),
        writer.write(TEXTS, bias=0.5, seed=3, prime=style),
    )
    single = writer.write(TEXTS[:1], bias=0.5, seed=3, one_hand=True)
    assert not single[0].primed and _same(single, writer.write(TEXTS[:1], bias=0.5, seed=3))


def test_a_job_without_a_style_writes_its_lines_in_one_hand_by_default(writer):
    lines = GenerationJob(GenerationRequest(TEXTS, bias=0.5, seed=4, writer=writer)).start().result(timeout=60)
    expected = writer.write(TEXTS, bias=0.5, seed=4, one_hand=True)
    assert all(line.primed for line in lines)
    for got, want in zip(lines, expected, strict=True):
        np.testing.assert_allclose(got.offsets, want.offsets, atol=1e-5)
    independent = GenerationRequest(TEXTS, bias=0.5, seed=4, writer=writer, one_hand=False)
    assert not any(line.primed for line in GenerationJob(independent).start().result(timeout=60))


def test_an_invented_hand_is_remembered_by_seed_and_bias(writer, monkeypatch):
    writer.forget_hands()
    first = writer.invented_hand(21, 0.5)
    calls = []
    original = writer_module.generate
    monkeypatch.setattr(writer_module, "generate", lambda *a, **k: calls.append(a) or original(*a, **k))
    assert writer.invented_hand(21, 0.5) is first and calls == []  # remembered: nothing written
    writer.invented_hand(21, 1.0)  # another bias, another hand
    assert len(calls) >= 1
    writer.forget_hands()
    again = writer.invented_hand(21, 0.5)
    assert again is not first and np.array_equal(again.offsets, first.offsets)  # invented anew, the same


def test_lines_continue_from_the_state_the_hand_was_written_in(writer):
    writer.forget_hands()
    hand = writer.invented_hand(8, 0.5)
    kept = writer.primed_state(hand)
    # the network's state as it finished the hand (its window seeing the word space that follows a prime): what
    # reading the hand as a prime gives, so the page need not read the hand again
    chars = writer.alphabet.encode(hand.text + " ")
    read = prime_state(writer.stepper, writer.normalizer.normalize(hand.offsets), chars)
    for name, value in read.state.items():
        np.testing.assert_allclose(np.asarray(kept.state[name]), np.asarray(value), atol=1e-5, err_msg=name)
    assert np.array_equal(kept.chars, chars)
    np.testing.assert_allclose(kept.last_input, writer.normalizer.normalize(hand.offsets[-1:])[0], atol=1e-6)
    copy = Prime(hand.offsets.copy(), hand.text)  # the same strokes from elsewhere (a saved style) share it
    assert writer.primed_state(copy) is kept


def test_only_the_remembered_hands_keep_their_states(writer):
    writer.forget_hands()
    hands = [writer.invented_hand(100 + i, 0.5) for i in range(HANDS_KEPT + 2)]
    assert len(writer._hand_states) == HANDS_KEPT
    assert writer.primed_state(hands[-1]) is writer._hand_states[writer._prime_key(hands[-1])]
    writer.forget_hands()
    assert writer._hand_states == {}
