"""Sampling invariants: seeds, bias, the stopping rule and length cap, priming, batches."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from engine_helpers import synthetic_sequences  # noqa: E402

from engine.handwriting.preprocessing import Normalizer  # noqa: E402
from engine.handwriting.sampling import (  # noqa: E402
    draw,
    generate,
    length_cap,
    mixture_params,
    prime_state,
    sample_points,
    stream,
)
from engine.handwriting.writer import HandwritingWriter, Prime, offsets_to_strokes  # noqa: E402

TEXTS = ["abc ab", "ca", "b a c", "a"]


@pytest.fixture(scope="module")
def writer(tiny_synthesis_model) -> HandwritingWriter:
    return HandwritingWriter.load(tiny_synthesis_model)


# ----- seeds --------------------------------------------------------------------------------------------------
def test_the_same_seed_writes_the_same_strokes(writer):
    a = writer.write(TEXTS[:2], bias=0.5, seed=11)
    b = writer.write(TEXTS[:2], bias=0.5, seed=11)
    c = writer.write(TEXTS[:2], bias=0.5, seed=12)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.offsets, y.offsets)
        assert x.stopped_by_window == y.stopped_by_window
    assert any(
        len(x.offsets) != len(z.offsets) or not np.array_equal(x.offsets, z.offsets) for x, z in zip(a, c, strict=True)
    )


def test_streamed_chunks_join_to_the_written_lines(writer):
    written = writer.write(TEXTS[:3], seed=5)
    chunks = list(writer.stream(TEXTS[:3], seed=5, chunk_steps=4))
    assert all(c.steps % 4 == 0 for c in chunks[:-1]) and chunks[-1].done.all()
    for b, line in enumerate(written):
        joined = np.concatenate([c.offsets[b] for c in chunks])
        np.testing.assert_array_equal(joined, line.offsets)
        sent = np.cumsum([len(c.offsets[b]) for c in chunks])
        assert all(n <= c.steps for n, c in zip(sent, chunks, strict=True))  # no step before it is drawn


def test_without_the_lost_rule_every_chunk_streams_its_own_steps(writer):
    """Nothing held back: a chunk carries the steps drawn since the last one (lines not primed: no lead-in)."""
    chars = [writer.alphabet.encode(t) for t in TEXTS[:3]]
    args = (writer.stepper, chars, writer.normalizer, writer.chars_per_step, 0.5)
    chunks = list(stream(*args, np.random.default_rng(5), chunk_steps=4, lost_steps=0))
    assert all(len(c.offsets[b]) <= 4 for c in chunks for b in range(3))
    assert sum(len(c.offsets[0]) for c in chunks[:2]) == min(8, sum(len(c.offsets[0]) for c in chunks))


# ----- bias -----------------------------------------------------------------------------------------------------
def test_bias_scales_sigma_and_sharpens_the_mixture_weights():
    rng = np.random.default_rng(0)
    M = 4
    y = rng.normal(0, 1.5, size=(6, 1 + 6 * M))
    plain = mixture_params(y, M, 0.0)
    np.testing.assert_allclose(plain.pi.sum(1), 1)
    for b in (0.5, 1.0, 3.0):
        biased = mixture_params(y, M, b)
        np.testing.assert_allclose(biased.sigma, plain.sigma * np.exp(-b), rtol=1e-12)
        sharpened = plain.pi ** (1 + b)
        np.testing.assert_allclose(biased.pi, sharpened / sharpened.sum(1, keepdims=True), rtol=1e-9)
        assert (biased.pi.max(1) > plain.pi.max(1)).all()
        np.testing.assert_array_equal(biased.mu, plain.mu)
        np.testing.assert_array_equal(biased.rho, plain.rho)
        np.testing.assert_array_equal(biased.eos, plain.eos)


def test_draws_follow_the_biased_gaussian():
    M, n = 1, 20000
    y = np.zeros((n, 1 + 6 * M))
    y[:, 1 + M] = 2.0  # mu1
    y[:, 1 + 3 * M] = np.log(3.0)  # sigma1 = 3, sigma2 = 1
    y[:, 1 + 5 * M] = np.arctanh(0.6)  # rho
    y[:, 0] = np.log(0.2 / 0.8)  # eos probability 0.2
    for b in (0.0, 1.0):
        sample = draw(mixture_params(y, M, b), np.random.default_rng(1))
        assert sample.shape == (n, 3) and sample.dtype == np.float32
        assert sample[:, 0].mean() == pytest.approx(2.0, abs=0.1)
        assert sample[:, 0].std() == pytest.approx(3.0 * np.exp(-b), rel=0.05)
        assert sample[:, 1].std() == pytest.approx(1.0 * np.exp(-b), rel=0.05)
        assert np.corrcoef(sample[:, 0], sample[:, 1])[0, 1] == pytest.approx(0.6, abs=0.03)
        assert sample[:, 2].mean() == pytest.approx(0.2, abs=0.02)


@pytest.mark.parametrize("rows", [None, np.array([0, 2, 3])])
def test_the_fast_sampler_draws_exactly_what_the_mixture_gives(rows):
    y = np.random.default_rng(4).normal(size=(5 if rows is None else 3, 1 + 6 * 7)) * 2
    for bias in (0.0, 0.7, 3.0):
        slow = draw(mixture_params(y, 7, bias), np.random.default_rng(9), rows, 5)
        fast = sample_points(y, 7, bias, np.random.default_rng(9), rows, 5)
        np.testing.assert_array_equal(fast, slow)


def test_a_bias_per_row_transforms_each_row_as_its_own_bias_does():
    y = np.random.default_rng(5).normal(size=(4, 1 + 6 * 3)) * 2
    biases = np.array([0.0, 0.7, 3.0, 0.0])
    mixed = sample_points(y, 3, biases, np.random.default_rng(1))
    for b, bias in enumerate(biases):  # the same draws: each row as the whole batch at its bias gives it
        np.testing.assert_array_equal(mixed[b], sample_points(y, 3, float(bias), np.random.default_rng(1))[b])
    one = sample_points(y[:1], 3, np.array([0.7]), np.random.default_rng(1))
    np.testing.assert_array_equal(one, sample_points(y[:1], 3, 0.7, np.random.default_rng(1)))


def test_components_are_chosen_by_their_weights():
    M, n = 3, 30000
    y = np.zeros((n, 1 + 6 * M))
    y[:, 1 : 1 + M] = np.log([0.2, 0.3, 0.5])
    y[:, 1 + M : 1 + 2 * M] = [-100.0, 0.0, 100.0]  # far apart: each sample reveals its component
    y[:, 1 + 3 * M : 1 + 5 * M] = np.log(0.1)
    sample = draw(mixture_params(y, M, 0.0), np.random.default_rng(2))
    freq = [(sample[:, 0] < -50).mean(), (np.abs(sample[:, 0]) < 50).mean(), (sample[:, 0] > 50).mean()]
    np.testing.assert_allclose(freq, [0.2, 0.3, 0.5], atol=0.015)


def test_higher_bias_writes_with_less_spread(writer):
    def spread(bias: float) -> float:
        stds = []
        for seed in range(4):
            for line in writer.write(["abc ab", "b a c"], bias=bias, seed=seed):
                stds.append(writer.normalizer.normalize(line.offsets)[:, :2].std(0).mean())
        return float(np.mean(stds))

    loose, neat = spread(0.0), spread(3.0)
    assert neat < 0.7 * loose, (loose, neat)


# ----- stopping -----------------------------------------------------------------------------------------------------
class ScriptedStepper:
    """A fake network: the window jumps past the text at step ``fire_at[b]``, the pen lifts every ``lift_every``."""

    mixtures = 1
    synthesis = True

    def __init__(self, fire_at: list[int], lift_every: int):
        self.fire_at, self.lift_every = fire_at, lift_every

    def start(self, chars, primed=None):
        self.lengths = (chars >= 0).sum(1)
        self.width = chars.shape[1]
        return 0

    def step(self, x, t):
        t += 1
        B = len(x)
        y = np.zeros((B, 7))
        y[:, 0] = 30.0 if t % self.lift_every == 0 else -30.0
        phi = np.zeros((B, self.width))
        for b in range(B):
            phi[b, self.lengths[b] if t >= self.fire_at[b] else 0] = 1.0
        return y, phi, t

    def carried(self, t):
        return t


def test_lines_stop_by_the_window_rule_after_the_pen_lifts_or_at_the_length_cap():
    chars = [np.array([0, 1, 2]), np.array([0, 1]), np.array([2, 2, 1, 0]), np.array([1])]
    never = 10**6
    fire_at, lift_every, cps = [5, 8, never, 9], 4, 0.25
    result = generate(ScriptedStepper(fire_at, lift_every), chars, Normalizer((0.0, 0.0), (1.0, 1.0)), cps)
    for b, c in enumerate(chars):
        cap = length_cap(len(c), cps)
        if fire_at[b] < cap:
            # the rule fires, then the pen finishes its stroke: the first lift at or after the firing step;
            # when the pen had just lifted, the line ends with that lift
            pen_up = (fire_at[b] - 1) % lift_every == 0
            expected = fire_at[b] - 1 if pen_up else -(-fire_at[b] // lift_every) * lift_every
            assert result.stopped_by_window[b]
            assert result.offsets[b][-1, 2] == 1
        else:
            expected = cap
            assert not result.stopped_by_window[b]
        assert len(result.offsets[b]) == expected, b
    assert [len(o) for o in result.offsets] == [4, 8, length_cap(4, cps), 8]
    capped = generate(ScriptedStepper([never] * 2, 3), chars[:2], Normalizer((0, 0), (1, 1)), cps, max_steps=7)
    assert [len(o) for o in capped.offsets] == [7, 7] and not capped.stopped_by_window.any()


@pytest.mark.parametrize(("fire_at", "points"), [(5, 4), (8, 8)])  # the pen had just lifted / lifts later
def test_a_kept_state_has_read_every_step_of_the_line_but_its_last(fire_at, points):
    kept = generate(
        ScriptedStepper([fire_at], 4), [np.array([0, 1])], Normalizer((0, 0), (1, 1)), 0.25, keep_state=True
    )
    # the scripted state counts the inputs read: the zero start and every point but the last, as priming reads
    assert len(kept.offsets[0]) == points and kept.final_state == points
    assert (
        generate(ScriptedStepper([fire_at], 4), [np.array([0, 1])], Normalizer((0, 0), (1, 1)), 0.25).final_state
        is None
    )
    with pytest.raises(ValueError, match="one line"):
        generate(
            ScriptedStepper([5, 5], 4),
            [np.array([0]), np.array([1])],
            Normalizer((0, 0), (1, 1)),
            0.25,
            keep_state=True,
        )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_kept_state_is_the_state_reading_the_line_gives(writer, seed):
    chars = [writer.alphabet.encode("abc ab")]
    args = (writer.stepper, chars, writer.normalizer, writer.chars_per_step, 0.5, np.random.default_rng(seed))
    kept = generate(*args, keep_state=True)
    read = prime_state(writer.stepper, writer.normalizer.normalize(kept.offsets[0]), chars[0])
    assert set(kept.final_state) == set(read.state)
    for name, value in read.state.items():
        np.testing.assert_allclose(np.asarray(kept.final_state[name]), np.asarray(value), atol=1e-5, err_msg=name)


class FocusScript:
    """A fake network whose window's focus follows ``focus[t]`` and whose pen lifts at the steps in ``lifts``."""

    mixtures = 1
    synthesis = True

    def __init__(self, focus: list[int], lifts: set[int]):
        self.focus, self.lifts = focus, lifts

    def start(self, chars, primed=None):
        self.width = chars.shape[1]
        return 0

    def step(self, x, t):
        t += 1
        y = np.zeros((len(x), 7))
        y[:, 0] = 30.0 if t in self.lifts else -30.0
        phi = np.zeros((len(x), self.width))
        phi[:, self.focus[min(t, len(self.focus)) - 1]] = 1.0
        return y, phi, t


def test_lookahead_characters_are_seen_but_not_written():
    """A line ends when the window reaches its lookahead (here: as if the text were one character shorter)."""
    # the window is on the first character, then from step 6 on the last one given (position 2)
    focus, lifts = [0] * 5 + [2], set(range(4, 400, 4))
    chars, norm = [np.array([0, 1, 2])], Normalizer((0, 0), (1, 1))
    ahead = generate(FocusScript(focus, lifts), chars, norm, 0.25, lookahead=1)
    assert ahead.stopped_by_window[0]
    assert len(ahead.offsets[0]) == 8  # the rule fired at step 6 on position 2, then the pen lifted at step 8
    never = generate(FocusScript(focus, lifts), chars, norm, 0.25)  # without: position 2 is a letter, not the end
    assert not never.stopped_by_window[0]
    with pytest.raises(ValueError, match="something to write"):
        generate(FocusScript(focus, lifts), [np.array([0])], norm, 0.25, lookahead=1)


def test_a_line_ending_in_a_full_stop_ends_with_the_stroke_begun_on_it():
    """The window reaches the full stop (position 2) at step 4; the stroke begun at step 5 (after the lift at 4)
    is the full stop's; after it, the network would begin a next letter before the window moves past the text."""
    focus, lifts = [0, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3], {4, 6, 12}
    chars, norm = [np.array([0, 1, 2])], Normalizer((0, 0), (1, 1))
    marked = generate(FocusScript(focus, lifts), chars, norm, 0.25, ends_with_mark=np.array([True]))
    assert len(marked.offsets[0]) == 6 and marked.offsets[0][-1, 2] == 1 and marked.stopped_by_window[0]
    plain = generate(FocusScript(focus, lifts), chars, norm, 0.25)  # the stroke begun at 7 is finished, to 12
    assert len(plain.offsets[0]) == 12 and plain.stopped_by_window[0]


def test_length_cap_grows_with_text_and_pace():
    assert length_cap(10, 0.1) > length_cap(5, 0.1) > length_cap(5, 0.2)
    assert length_cap(0, 0.05) >= 20
    assert length_cap(10, 0.1) >= (10 + 1) / 0.1 * 2.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_written_lines_end_by_the_window_rule_or_the_length_cap(writer, seed):
    lines = writer.write(TEXTS, bias=0.3, seed=seed, record=True)
    assert [line.text for line in lines] == TEXTS
    for line in lines:
        cap = length_cap(len(line.text), writer.chars_per_step)
        n = len(line.offsets)
        assert 0 < n <= cap
        assert np.isfinite(line.offsets).all()
        assert set(np.unique(line.offsets[:, 2])) <= {0.0, 1.0}
        window = line.window
        assert window.shape == (n, len(line.text) + 1)
        past_end = window[:, -1] > window[:, :-1].max(1)
        if line.stopped_by_window and past_end.any():
            first = int(np.argmax(past_end))
            # after the rule fires the pen finishes its stroke (or the cap ends it), never later
            lifts = np.flatnonzero(line.offsets[first:, 2] == 1)
            assert n == min(first + 1 + (lifts[0] if len(lifts) else n), cap)
        elif line.stopped_by_window:
            # the rule fired with the pen up: the line ended there, its last point lifting the pen
            assert line.offsets[-1, 2] == 1
        else:
            assert not past_end.any() and n == cap


def test_priming_changes_the_writing_and_keeps_the_cap(writer):
    seqs, _, _ = synthetic_sequences(4, seed=5)
    offsets = writer.normalizer.denormalize(seqs.strokes[0])
    prime = Prime(offsets, seqs.texts[0])
    plain = writer.write(["ca b"], seed=3, record=True)[0]
    primed = writer.write(["ca b"], seed=3, prime=prime, record=True)[0]
    assert primed.primed and not plain.primed
    assert len(primed.offsets) != len(plain.offsets) or not np.allclose(primed.offsets, plain.offsets)
    assert np.isfinite(primed.offsets).all()
    assert len(primed.offsets) <= length_cap(len("ca b"), writer.chars_per_step)  # the prime's text is not capped
    # the window runs over prime text + " " + line text, and the prime has already carried it forward
    prime_text = prime.text + " "
    assert primed.window.shape[1] == len(prime_text) + len("ca b") + 1
    assert plain.window[0].argmax() == 0
    assert primed.window[0].argmax() >= len(prime_text) // 2
    # priming from absolute points (y down, as IAM-OnDB records them)
    points = np.column_stack([np.cumsum(offsets[:, 0]), -np.cumsum(offsets[:, 1]), offsets[:, 2]])
    from_points = Prime.from_points(np.vstack([[0, 0, 0], points]), prime.text, "paper")
    np.testing.assert_allclose(from_points.offsets, offsets, atol=1e-3)
    again = writer.write(["ca b"], seed=3, prime=from_points)[0]
    assert np.isfinite(again.offsets).all()


def test_the_length_cap_also_stops_the_real_network(writer):
    chars = [writer.alphabet.encode(t) for t in TEXTS]
    result = generate(
        writer.stepper, chars, writer.normalizer, writer.chars_per_step, rng=np.random.default_rng(0), max_steps=3
    )
    for b, offsets in enumerate(result.offsets):
        assert len(offsets) <= 3
        assert result.stopped_by_window[b] or len(offsets) == 3
    assert not result.stopped_by_window.all()


def test_a_batch_of_lines_with_notices(writer):
    texts = ["a\u00a0b", "c\u2009a b", "abc", "b"]
    clean, notices = writer.prepare(texts)
    assert clean == ["a b", "c a b", "abc", "b"]
    assert ["typography" in " ".join(n) for n in notices] == [True, True, False, False]
    chunks = list(writer.stream(texts[:2], seed=0))
    assert chunks[-1].done.all() and len(chunks[-1].offsets) == 2
    lines = writer.write(texts, seed=4)
    assert [line.text for line in lines] == clean
    assert [line.notices for line in lines] == notices
    for line in lines:
        assert np.isfinite(line.offsets).all()
        strokes = line.strokes
        assert strokes and all(s.ndim == 2 and s.shape[1] == 2 and len(s) >= 2 for s in strokes)


def test_a_primed_state_is_reusable_and_shared_by_the_batch(writer):
    seqs, _, _ = synthetic_sequences(2, seed=6)
    prime_inputs = seqs.strokes[0]
    prime_chars = writer.alphabet.encode(seqs.texts[0] + " ")
    primed = prime_state(writer.stepper, prime_inputs, prime_chars)
    np.testing.assert_array_equal(primed.last_input, prime_inputs[-1])
    chars = [writer.alphabet.encode(t) for t in ("ab", "ab", "c a")]
    args = (writer.stepper, chars, writer.normalizer, writer.chars_per_step, 0.5)
    direct = generate(*args, np.random.default_rng(9), prime_inputs=prime_inputs, prime_chars=prime_chars)
    for _ in range(2):  # the same state twice: using it must not change it
        again = generate(*args, np.random.default_rng(9), primed=primed)
        for a, b in zip(direct.offsets, again.offsets, strict=True):
            np.testing.assert_array_equal(a, b)
    # every line of a batch starts from the one primed state: the same text gets the same first outputs
    padded = np.full((3, len(prime_chars) + 4), -1, np.int64)
    for b, c in enumerate(chars):
        padded[b, : len(prime_chars) + len(c)] = np.concatenate([prime_chars, c])
    state = writer.stepper.start(padded, primed.state)
    y, phi, _ = writer.stepper.step(np.repeat(primed.last_input[None], 3, 0), state)
    np.testing.assert_allclose(y[0], y[1], rtol=1e-6)
    assert not np.allclose(y[0], writer.stepper.step(np.zeros((3, 3), np.float32), writer.stepper.start(padded))[0][0])
    with pytest.raises(ValueError, match="two points"):
        prime_state(writer.stepper, prime_inputs[:1], prime_chars)
    with pytest.raises(ValueError, match="text"):
        prime_state(writer.stepper, prime_inputs, prime_chars[:0])


def test_offsets_to_strokes_splits_at_pen_lifts():
    offsets = np.array([[1, 0, 0], [1, 0, 1], [5, 0, 0], [1, 1, 0], [1, 1, 1], [2, 0, 1]], float)
    strokes = offsets_to_strokes(offsets, start=(10, 0))
    assert len(strokes) == 2  # the last step is a lone point: no stroke
    np.testing.assert_array_equal(strokes[0], [[10, 0], [11, 0], [12, 0]])
    np.testing.assert_array_equal(strokes[1], [[17, 0], [18, 1], [19, 2]])
    # primed lines start with the pen up
    assert len(offsets_to_strokes(offsets, start=(10, 0), pen_down_at_start=False)[0]) == 2


class PrimedScriptedStepper(FocusScript):
    """A fake network read a prime: its window stays on the prime's text until step ``reach``, then moves on;
    the pen lifts every ``lift_every`` steps."""

    def __init__(self, reach: int, prime_length: int, lift_every: int):
        super().__init__([prime_length - 1] * (reach - 1) + [prime_length], set(range(lift_every, 10**4, lift_every)))

    def prime(self, inputs, chars):
        return "primed"


@pytest.mark.parametrize(("reach", "lift_every"), [(1, 5), (12, 5), (10**6, 5), (10**6, 10**6)])
def test_a_primed_line_starts_with_the_stroke_in_which_the_window_reaches_its_text(reach, lift_every):
    from engine.handwriting.sampling import PrimedState

    prime_chars = np.array([2, 1, 0])
    primed = PrimedState("primed", prime_chars, np.array([0.0, 0.0, 1.0], np.float32))
    cps = 0.25
    stepper = PrimedScriptedStepper(reach, len(prime_chars), lift_every)
    chunks = list(stream(stepper, [np.array([0, 1])], Normalizer((0.0, 0.0), (1.0, 1.0)), cps, primed=primed))
    drawn = sum(len(c.offsets[0]) for c in chunks)
    assert drawn == length_cap(2, cps)  # the window never fires here: the length cap ends the line
    # Steps before the window reached the line's text are dropped, but those of the stroke in progress then are
    # kept: the line starts after the last pen lift before that. A window that never moves on starts the line
    # with the first stroke begun after three characters' worth, or after three times that with no pen lift.
    wait = int(np.ceil(3 / cps))
    forced = next(s for s in range(wait + 1, 3 * wait + 1) if (s - 1) % lift_every == 0) if lift_every < wait else None
    start = min(reach, forced or 3 * wait + 1)
    assert chunks[-1].steps == drawn + (start - 1) // lift_every * lift_every


# ----- stalls -------------------------------------------------------------------------------------------------------
class StallingStepper:
    """A fake network whose mixture all but holds the pen still: a "stay" component (weight e^2 : 1) and a
    "move" component one unit right. Biased, the stay component is chosen almost always; unbiased, one step in 9
    moves. The window never finishes (lines end at the length cap)."""

    mixtures = 2
    synthesis = True

    def __init__(self, still_at=(0.0, 0.0), lift_every: int = 0):
        self.still_at = still_at  # the normalised step that is no motion: -mean / std
        self.lift_every = lift_every  # the pen lifts at every so many steps (0: never)

    def start(self, chars, primed=None):
        self.width = chars.shape[1]
        return 0

    def step(self, x, t):
        B = len(x)
        y = np.zeros((B, 13))
        y[:, 0] = 30.0 if self.lift_every and (t + 1) % self.lift_every == 0 else -30.0  # pen lifts / stays down
        y[:, 1:3] = [2.0, 0.0]  # weights: stay, move
        y[:, 3], y[:, 5] = self.still_at  # mu x, mu y of "stay"
        y[:, 4] = self.still_at[0] + 1.0  # mu x of "move": one standard deviation to the right
        y[:, 7:11] = -6.0  # tiny sigmas
        phi = np.zeros((B, self.width))
        phi[:, 0] = 1.0
        return y, phi, t + 1

    def carried(self, t):
        return t


class ShrinkingStallingStepper(StallingStepper):
    """The same network with a batch that shrinks as lines finish."""

    def select(self, t, rows):
        return t


@pytest.mark.parametrize("batch", [1, 3])
def test_a_pen_that_stands_still_is_drawn_without_bias_until_it_moves(batch):
    chars = [np.zeros(40, np.int64)] * batch
    normalizer = Normalizer((0.0, 0.0), (1.0, 1.0))

    def moves(stall_steps: int) -> list[np.ndarray]:
        result = generate(
            StallingStepper(), chars, normalizer, 0.5, 3.0, np.random.default_rng(4), stall_steps=stall_steps
        )
        return [np.flatnonzero(o[:, 0] > 0.5) for o in result.offsets]

    held = moves(0)  # bias 3: the move component's weight is e^0 / e^8 -- the pen stays put all line
    assert all(len(m) <= 2 for m in held)
    freed = moves(8)
    for m in freed:
        # it moves again within a few steps of standing still for 8, and again and again
        assert len(m) >= 10
        assert np.diff(np.concatenate([[-1], m])).max() <= 8 + 40


def test_the_writer_draws_a_pen_that_stands_still_without_bias(writer, monkeypatch):
    import engine.handwriting.writer as writer_module

    mean, std = np.asarray(writer.normalizer.mean), np.asarray(writer.normalizer.std)
    monkeypatch.setattr(writer, "stepper", StallingStepper(tuple(-mean / std)))

    def moves() -> int:
        line = writer.write(["abc ab"], bias=3.0, seed=2)[0]
        return int((np.hypot(line.offsets[:, 0], line.offsets[:, 1]) > 0.5 * std.mean()).sum())

    assert writer_module.STALL_STEPS == 8
    assert moves() >= 5
    monkeypatch.setattr(writer_module, "STALL_STEPS", 0)
    assert moves() <= 1


@pytest.mark.parametrize("primed", [False, True])
def test_recorded_mixtures_carry_the_bias_each_step_was_drawn_with(primed):
    from engine.handwriting.sampling import PrimedState

    # unequal lines leave the batch at different steps; the pen lifts now and then; primed, the lines start late
    prime = PrimedState(0, np.zeros(3, np.int64), np.zeros(3, np.float32)) if primed else None
    chunks = list(
        stream(
            ShrinkingStallingStepper(lift_every=37),
            [np.zeros(n, np.int64) for n in (40, 12, 25)],
            Normalizer((0.0, 0.0), (1.0, 1.0)),
            0.5,
            3.0,
            np.random.default_rng(4),
            chunk_steps=5,
            primed=prime,
            record=True,
            stall_steps=8,
        )
    )
    assert len({sum(len(c.offsets[b]) for c in chunks) for b in range(3)}) == 3
    for b in range(3):
        sigma = np.concatenate([c.params[b].sigma[:, 0, 0] for c in chunks])
        offsets = np.concatenate([c.offsets[b] for c in chunks])
        assert len(sigma) == len(offsets)
        unbiased = np.isclose(sigma, np.exp(-6.0))
        assert 5 <= unbiased.sum() < len(sigma) - 20
        assert np.allclose(sigma[~unbiased], np.exp(-9.0))
        # drawn without bias exactly after 8 steps standing still, until the pen moved
        still = np.hypot(offsets[:, 0], offsets[:, 1]) < 0.05
        run = 0
        for t in range(len(offsets)):
            assert unbiased[t] == (run >= 8), t
            run = run + 1 if still[t] and offsets[t, 2] < 0.5 else 0


def test_with_the_stall_rule_a_line_is_drawn_alike_whatever_the_other_lines_do():
    chars = [np.zeros(n, np.int64) for n in (40, 12, 25)]
    normalizer = Normalizer((0.0, 0.0), (1.0, 1.0))

    def lines(stepper) -> list[np.ndarray]:
        return generate(stepper, chars, normalizer, 0.5, 3.0, np.random.default_rng(6), stall_steps=8).offsets

    kept, shrunk = lines(StallingStepper(lift_every=37)), lines(ShrinkingStallingStepper(lift_every=37))
    for a, b in zip(kept, shrunk, strict=True):
        np.testing.assert_array_equal(a, b)
    assert sum((o[:, 0] > 0.5).sum() for o in kept) >= 10  # the rule did draw (moves happen only unbiased)
    with pytest.raises(ValueError, match="stall_steps"):
        lines_bad = generate(StallingStepper(), chars, normalizer, 0.5, 3.0, stall_steps=-1)  # noqa: F841


# ----- lines that lose their way ----------------------------------------------------------------------------------
class TrapStepper:
    """A fake network whose window moves on a character every ``pace`` steps, except at character ``trap``: there,
    on the second step, it decides from the pen's last draw whether it is lost (drawn dx > 0: always, with
    ``always_lost``); a lost row's window never moves again and its pen takes steps of 100 (easy to find in the
    output). Its state is per row and can be kept and put back, as the real backends' can."""

    mixtures = 1
    synthesis = True

    def __init__(self, trap: int, pace: int = 3, always_lost: bool = False):
        self.trap, self.pace, self.always_lost = trap, pace, always_lost
        self.put_back = 0

    def start(self, chars, primed=None):
        self.width = chars.shape[1]
        B = len(chars)
        return {"pos": np.zeros(B, int), "in_char": np.zeros(B, int), "lost": np.zeros(B, bool)}

    def step(self, x, state):
        state = {k: v.copy() for k, v in state.items()}
        B = len(x)
        for b in range(B):
            state["in_char"][b] += 1
            if state["pos"][b] == self.trap and state["in_char"][b] == 2:
                state["lost"][b] = self.always_lost or x[b, 0] > 0
            if not state["lost"][b] and state["in_char"][b] >= self.pace:
                state["pos"][b] += 1
                state["in_char"][b] = 0
        y = np.zeros((B, 7))
        y[:, 0] = np.where(np.arange(B) % 2 == 0, 30.0, -30.0)  # even rows lift every step, odd ones never
        y[:, 2] = np.where(state["lost"], 100.0, 0.0)  # mean dx
        phi = np.zeros((B, self.width))
        phi[np.arange(B), np.minimum(state["pos"], self.width - 1)] = 1.0
        return y, phi, state

    def carried(self, state):
        return state

    def row_state(self, state, row):
        return {k: v[row].copy() for k, v in state.items()}

    def set_row_state(self, state, row, saved):
        self.put_back += 1
        for k, v in saved.items():
            state[k][row] = v
        return state


def _trap_lines(stepper, seed, **kwargs):
    chars = [np.arange(8) % 3, np.arange(8) % 3]
    rng = np.random.default_rng(seed)
    return generate(stepper, chars, Normalizer((0.0, 0.0), (1.0, 1.0)), 1 / 3, rng=rng, **kwargs)


def test_a_line_that_loses_its_way_is_drawn_again_from_where_it_was():
    lost_seeds = [s for s in range(40) if not _trap_lines(TrapStepper(trap=4), s).stopped_by_window.all()]
    assert lost_seeds  # without the rule: lines that got lost run to their length cap
    for seed in lost_seeds:
        stepper = TrapStepper(trap=4)
        result = _trap_lines(stepper, seed, lost_steps=8, chunk_steps=4, rewinds=10)  # lost half the time: 1 in 1024
        assert stepper.put_back >= 1
        assert result.stopped_by_window.all(), seed  # drawn again, the window reached the end of the text
        for offsets in result.offsets:
            assert np.abs(offsets[:, 0]).max() < 50  # not a step of the lost stretch is left (streamed or not)
        assert len(result.offsets[0]) <= 8 * 3 + 1  # a character's worth of steps each (its pen lifts every step)


def test_a_line_lost_every_time_is_taken_back_at_most_so_many_times():
    stepper = TrapStepper(trap=4, always_lost=True)
    result = _trap_lines(stepper, 1, lost_steps=8, rewinds=3)
    assert stepper.put_back == 2 * 3  # two lines, three times each
    assert not result.stopped_by_window.any()  # then left to the length cap, as before the rule
    assert all(len(o) == length_cap(8, 1 / 3) for o in result.offsets)


def test_a_network_without_row_states_writes_as_without_the_rule():
    class Plain(TrapStepper):
        row_state = set_row_state = None

    a = _trap_lines(Plain(trap=4), 3, lost_steps=8)
    b = _trap_lines(TrapStepper(trap=4), 3)
    for x, y in zip(a.offsets, b.offsets, strict=True):
        np.testing.assert_array_equal(x, y)
