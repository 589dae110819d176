"""Matching a style's letter width and slant: the correction's maths, and the writer applying it per style."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.handwriting import writer as writer_module
from engine.handwriting.sampling import MixtureParams
from engine.handwriting.style_matching import (
    MAX_SIZE_FACTOR,
    MAX_SLANT_DEG,
    MAX_WIDTH_FACTOR,
    StyleCorrection,
    correction_between,
    measured,
    robust_mean,
)
from engine.handwriting.style_metrics import StyleMetrics
from engine.handwriting.writer import HandwritingWriter, offsets_to_strokes
from engine.jobs import GenerationJob, GenerationRequest


def _zigzag(slant_deg: float, width: float, letters: int = 12) -> tuple[list[np.ndarray], str]:
    """y-up strokes of ``letters`` tall, slanted up-and-down strokes (as in 'l'), ``width`` apart."""
    lean = math.tan(math.radians(slant_deg)) * 10
    points = []
    for i in range(letters):
        x0 = i * width
        points += [(x0, 0.0), (x0 + lean + 1.5, 10.0), (x0 + 1.0, 0.0)]
    corners = np.array(points, float)
    t = np.linspace(0, len(corners) - 1, 10 * len(corners))  # densely sampled, as pens record
    line = np.column_stack([np.interp(t, np.arange(len(corners)), corners[:, i]) for i in (0, 1)])
    return [line], "l" * letters


def test_the_correction_takes_the_written_measures_to_the_target():
    target_strokes, text = _zigzag(slant_deg=10.0, width=8.0)
    written_strokes, _ = _zigzag(slant_deg=2.0, width=7.0)
    written_strokes = [s * [1.0, 0.8] for s in written_strokes]  # and written smaller, as bias does
    target, written = measured([(target_strokes, text)]), measured([(written_strokes, text)])
    correction = correction_between(target, [(written_strokes, text)])
    assert correction.height == pytest.approx(1 / 0.8, rel=0.02)
    assert correction.width == pytest.approx(target.width / written.width, rel=0.05)
    offsets = np.column_stack([np.diff(written_strokes[0], axis=0), np.zeros(len(written_strokes[0]) - 1)])
    start = tuple(written_strokes[0][0])
    fixed = offsets_to_strokes(correction.apply(offsets), start)
    after = measured([(fixed, text)])
    assert after.width == pytest.approx(target.width, rel=1e-3)
    assert after.height == pytest.approx(target.height, rel=0.02)
    assert after.slant == pytest.approx(target.slant, abs=0.1)
    assert abs(after.slant - written.slant) > 5  # it did move


def test_the_correction_is_clamped_and_the_identity_when_nothing_can_be_measured():
    upright = [_zigzag(slant_deg=0.0, width=7.0)]
    height = measured(upright).height
    c = correction_between(StyleMetrics(height, 40.0, 30.0), upright)  # same size, far wider and slanted
    assert c.height == pytest.approx(1.0) and c.width == pytest.approx(MAX_WIDTH_FACTOR)
    assert math.degrees(math.atan(c.shear)) == pytest.approx(MAX_SLANT_DEG)
    c = correction_between(StyleMetrics(2 * height, -40.0, 1.0), upright)  # twice the size, narrow, leaning left
    assert c.height == pytest.approx(2.0) and c.width == pytest.approx(2.0 / MAX_WIDTH_FACTOR)
    assert math.degrees(math.atan(c.shear)) == pytest.approx(-MAX_SLANT_DEG)
    assert correction_between(StyleMetrics(100 * height, 0.0, 7.0), upright).height == pytest.approx(MAX_SIZE_FACTOR)
    assert correction_between(None, upright).is_identity
    assert correction_between(StyleMetrics(10.0, 0.0, 0.0), upright).is_identity
    assert correction_between(StyleMetrics(10.0, 0.0, 5.0), [([], "abc")]).is_identity
    assert measured([([], "abc")]) is None


def test_pen_lifts_are_kept_and_the_input_is_not_changed():
    offsets = np.array([[1.0, 2.0, 0.0], [3.0, -1.0, 1.0], [2.0, 0.5, 0.0]], np.float32)
    before = offsets.copy()
    out = StyleCorrection(1.2, 0.1, 0.9).apply(offsets)
    np.testing.assert_array_equal(offsets, before)
    np.testing.assert_array_equal(out[:, 2], before[:, 2])
    np.testing.assert_allclose(out[:, 1], 0.9 * before[:, 1], rtol=1e-6)
    np.testing.assert_allclose(out[:, 0], 1.2 * before[:, 0] + 0.1 * 0.9 * before[:, 1], rtol=1e-6)
    strokes = StyleCorrection(1.2, 0.1, 0.9).apply_to_strokes(offsets_to_strokes(before))
    np.testing.assert_allclose(np.concatenate(strokes), np.concatenate(offsets_to_strokes(out)), atol=1e-5)


@pytest.fixture(scope="module")
def writer(tiny_synthesis_model) -> HandwritingWriter:
    return HandwritingWriter.load(tiny_synthesis_model, backend="torch")


def test_a_style_is_measured_once_per_bias_and_its_correction_applied_to_every_step(writer, monkeypatch):
    style = writer.write(["cab ba"], bias=0.5, seed=21)[0]
    prime = writer_module.Prime(style.offsets, style.text)
    calls = []
    measure = writer_module.correction_between
    monkeypatch.setattr(writer_module, "correction_between", lambda t, w: calls.append(1) or measure(t, w))
    correction = writer.style_correction(prime, 0.5)
    assert writer.style_correction(prime, 0.5) == correction and len(calls) == 1  # remembered
    assert writer.style_correction(prime, 0.55) == correction and len(calls) == 1  # measured at bias 0.5
    writer.style_correction(prime, 1.0)
    assert len(calls) == 2  # another bias is measured anew

    plain = writer.write(["abc", "ba"], bias=0.5, seed=3, prime=prime)
    matched = writer.write(["abc", "ba"], bias=0.5, seed=3, prime=prime, match_style=True)
    for a, b in zip(plain, matched, strict=True):
        np.testing.assert_allclose(b.offsets, correction.apply(a.offsets), atol=1e-6)
    streamed = [c.offsets for c in writer.stream(["abc", "ba"], bias=0.5, seed=3, prime=prime, match_style=True)]
    for line, b in enumerate(matched):
        np.testing.assert_allclose(np.concatenate([s[line] for s in streamed]), b.offsets, atol=1e-6)


def test_an_invented_hand_and_unprimed_lines_are_not_corrected(writer):
    texts = ["abc", "ba"]
    assert writer.style_correction(writer.invented_hand(4, 0.5), 0.5).is_identity
    one_hand = writer.write(texts, bias=0.5, seed=4, one_hand=True)
    matched = writer.write(texts, bias=0.5, seed=4, one_hand=True, match_style=True)
    assert all(np.array_equal(a.offsets, b.offsets) for a, b in zip(one_hand, matched, strict=True))
    single = writer.write(texts[:1], bias=0.5, seed=4, match_style=True)
    np.testing.assert_array_equal(single[0].offsets, writer.write(texts[:1], bias=0.5, seed=4)[0].offsets)


def test_a_generation_job_matches_a_style_unless_asked_not_to(writer):
    style = writer.write(["cab ba"], bias=0.5, seed=22)[0]
    prime = writer_module.Prime(style.offsets, style.text)
    for match in (True, False):
        request = GenerationRequest(["abc", "ba"], bias=0.5, seed=6, prime=prime, writer=writer, match_style=match)
        lines = GenerationJob(request).start().result(timeout=60)
        expected = writer.write(["abc", "ba"], bias=0.5, seed=6, prime=prime, match_style=match)
        for got, want in zip(lines, expected, strict=True):
            np.testing.assert_allclose(got.offsets, want.offsets, atol=1e-5)
    assert GenerationRequest(["abc"]).match_style  # on by default, as in the app and the command line


def test_the_mixture_is_mapped_as_its_samples_are():
    """Insight draws the network's prediction around the corrected pen: the Gaussians must move with the ink."""
    rng = np.random.default_rng(0)
    params = MixtureParams(
        eos=np.array([0.1]),
        pi=np.array([[0.3, 0.7]]),
        mu=np.array([[[0.5, -1.0], [1.5, 0.2]]]),
        sigma=np.array([[[0.8, 0.3], [0.4, 1.1]]]),
        rho=np.array([[0.5, -0.3]]),
    )
    mean, std = np.array([8.0, -0.5]), np.array([20.0, 30.0])
    c = StyleCorrection(1.2, 0.15, 0.9)
    mapped = c.apply_to_params(params, mean, std)
    for k in range(2):
        s = params.sigma[0, k]
        cov = [[s[0] ** 2, params.rho[0, k] * s[0] * s[1]], [params.rho[0, k] * s[0] * s[1], s[1] ** 2]]
        n = rng.multivariate_normal(params.mu[0, k], cov, size=200_000)
        d = c.apply(np.column_stack([n * std + mean, np.zeros(len(n))]))[:, :2]  # offsets, corrected
        n2 = (d - mean) / std
        np.testing.assert_allclose(mapped.mu[0, k], n2.mean(0), atol=0.01)
        np.testing.assert_allclose(mapped.sigma[0, k], n2.std(0), rtol=0.01)
        assert mapped.rho[0, k] == pytest.approx(np.corrcoef(n2.T)[0, 1], abs=0.01)
    assert mapped.pi is params.pi and mapped.eos is params.eos
    assert StyleCorrection().apply_to_params(params, mean, std) is params


def test_a_recorded_stream_carries_the_mapped_mixture(writer):
    style = writer.write(["cab ba"], bias=0.5, seed=21)[0]
    prime = writer_module.Prime(style.offsets, style.text)
    c = writer.style_correction(prime, 0.5)
    raw = list(writer.stream(["abc"], bias=0.5, seed=3, prime=prime, record=True))
    matched = list(writer.stream(["abc"], bias=0.5, seed=3, prime=prime, record=True, match_style=True))
    norm = writer.normalizer
    for a, b in zip(raw, matched, strict=True):
        want = c.apply_to_params(a.params[0], norm.mean, norm.std)
        np.testing.assert_allclose(b.params[0].mu, want.mu)
        np.testing.assert_allclose(b.params[0].sigma, want.sigma)


def test_one_botched_line_does_not_move_the_measure():
    strokes, text = _zigzag(slant_deg=5.0, width=7.0)
    tall = [s * [1.0, 3.0] for s in strokes]  # a line written three times too tall
    typical = measured([(strokes, text)] * 5)
    with_outlier = measured([(strokes, text)] * 5 + [(tall, text)])
    assert with_outlier.height == pytest.approx(typical.height)


def test_the_lines_are_averaged_without_their_extremes():
    """A mean (what a page of lines shows), not a median; the outermost lines at each end are left out."""
    assert robust_mean([1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 100.0]) == pytest.approx(1.6)
    assert robust_mean([3.0, -1.0, 2.0, 10.0]) == pytest.approx(2.5)  # four lines: the middle two
    assert robust_mean([4.0]) == 4.0  # a style's own line
    assert robust_mean([1.0, 2.0]) == 1.5
    assert robust_mean([5.0, 1.0, 3.0]) == 3.0  # three lines: the middle one
    assert robust_mean([1.0, float("nan"), 2.0, 3.0, 4.0]) == pytest.approx(2.5)  # unmeasurable lines are left out
    assert np.isnan(robust_mean([float("nan")]))


def test_a_page_without_a_style_and_without_a_seed_is_not_matched(writer, monkeypatch):
    """Its hand is invented anew (not remembered without a seed): it is still the network's own, left alone."""
    calls = []
    monkeypatch.setattr(writer, "style_correction", lambda *a: calls.append(a) or StyleCorrection(2.0))
    writer.write(["abc", "ba"], bias=0.5, seed=None, one_hand=True, match_style=True)
    list(writer.stream(["abc", "ba"], bias=0.5, seed=None, one_hand=True, match_style=True))
    request = GenerationRequest(["abc", "ba"], bias=0.5, seed=None, writer=writer)
    GenerationJob(request).start().result(timeout=60)
    assert calls == []
