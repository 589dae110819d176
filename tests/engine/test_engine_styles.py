"""Styles from pen input: normalisation to the training data's units and density, checks, style files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.handwriting.alphabet import Alphabet
from engine.handwriting.style_metrics import StyleMetrics, flip_y, letter_height, slant
from engine.handwriting.styles import (
    IAM_LETTER_HEIGHT,
    IAM_POINT_SPACING,
    Style,
    StyleError,
    StyleExistsError,
    delete_style,
    iam_pen_lines,
    list_styles,
    load_named_style,
    load_style,
    prime_from_strokes,
    resample_in_time,
    safe_style_name,
    save_named_style,
    save_style,
)
from engine.handwriting.writer import offsets_to_strokes

TEXT = "hello there"


def pen_strokes(text: str = TEXT, scale: float = 1.0, rate_hz: float = 100.0, lean: float = 0.6, seed: int = 0):
    """Loopy cursive-like ink, one stroke per word, one loop per character: (x, y-down, t, pressure) rows."""
    rng = np.random.default_rng(seed)
    strokes, x0, t0 = [], 0.0, 0.0
    for word in text.split():
        duration = 0.25 * len(word)
        t = np.arange(0.0, duration, 1.0 / rate_hz)
        phase = 2 * np.pi * t / 0.25
        y = 30 * np.cos(phase)  # letters 60 px tall, y down
        x = x0 + 40 * t / 0.25 - 12 * np.sin(phase) - lean * y
        pts = np.column_stack([x, y + rng.normal(0, 0.3, len(t)), t0 + t, np.full(len(t), 0.5)])
        pts[:, :2] *= scale
        strokes.append(pts)
        x0, t0 = x[-1] + 50, t0 + duration + 0.3
    return strokes


def prime_metrics(strokes, text: str = TEXT) -> StyleMetrics:
    prime = prime_from_strokes(strokes, text, "skip2")
    return StyleMetrics.measure(flip_y(offsets_to_strokes(prime.offsets, pen_down_at_start=False)), text)


def assert_close(metrics: StyleMetrics, reference: StyleMetrics, rel: float = 0.15, slant_deg: float = 3.0):
    diff = metrics.relative_to(reference)
    assert abs(diff["height_pct"]) < 100 * rel and abs(diff["width_pct"]) < 100 * rel, diff
    assert abs(diff["slant_deg"]) < slant_deg, diff


# ----- normalisation ---------------------------------------------------------------------------------------------
def test_the_prime_has_the_training_datas_letter_height_and_point_density():
    prime = prime_from_strokes(pen_strokes(scale=0.037), TEXT, "paper")
    assert prime.offsets.dtype == np.float32 and prime.offsets.shape[1] == 3
    strokes = flip_y(offsets_to_strokes(prime.offsets, pen_down_at_start=False))
    assert letter_height(strokes) == pytest.approx(IAM_LETTER_HEIGHT, rel=0.1)
    steps = np.hypot(*prime.offsets[prime.offsets[:, 2] == 0][:, :2].T)
    assert np.median(steps) == pytest.approx(IAM_POINT_SPACING * IAM_LETTER_HEIGHT, rel=0.15)
    assert prime.offsets[:, 2].sum() == len(TEXT.split())  # one pen lift per word


def test_skip2_halves_the_points():
    strokes = pen_strokes()
    assert len(prime_from_strokes(strokes, TEXT, "skip2").offsets) < 0.6 * len(
        prime_from_strokes(strokes, TEXT, "paper").offsets
    )


def test_the_prime_does_not_depend_on_the_device_rate_or_units():
    reference = prime_metrics(pen_strokes())
    assert reference.slant > 3  # the synthetic ink leans right
    for variant in (
        pen_strokes(rate_hz=60),
        pen_strokes(rate_hz=200),
        pen_strokes(scale=0.037),
        pen_strokes(scale=3.5),
    ):
        assert_close(prime_metrics(variant), reference)


def test_jitter_is_removed():
    clean = pen_strokes()
    noisy = pen_strokes(rate_hz=400)
    rng = np.random.default_rng(1)
    for s in noisy:
        s[:, :2] += rng.normal(0, 0.8, size=(len(s), 2))
    n_clean = len(prime_from_strokes(clean, TEXT, "paper").offsets)
    n_noisy = len(prime_from_strokes(noisy, TEXT, "paper").offsets)
    assert n_noisy < 1.3 * n_clean


# ----- degenerate input ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("strokes", "text", "message"),
    [
        ([[[1.0, 2.0]]], "a", "two points"),
        ([[[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]], "a", "no height"),
        ([[[0.0, 0.0], [float("nan"), 1.0]]], "a", "not finite"),
        ([[[0.0, 0.0], [float("inf"), 1.0]]], "a", "not finite"),
        ([[[0.0, 0.0], [2e7, 1.0]]], "a", "beyond"),
        ([], "a", "two points"),
        ([[[0.0], [1.0]]], "a", "list of points"),
        (None, "", "text"),
        (None, "   ", "text"),
        (None, "hello there " * 12, "too long"),
        (None, "h", "too short"),
    ],
)
def test_degenerate_input_is_refused_clearly(strokes, text, message):
    with pytest.raises(StyleError, match=message):
        prime_from_strokes(pen_strokes() if strokes is None else strokes, text, "skip2")


def test_characters_outside_the_alphabet_are_refused():
    with pytest.raises(StyleError, match="cannot write"):
        prime_from_strokes(pen_strokes(), "Hello there", "skip2", Alphabet("abcdefghijklmnopqrstuvwxyz "))
    with pytest.raises(ValueError):
        prime_from_strokes(pen_strokes(), "hello th\u00e9re", "skip2", Alphabet("ehlort "))


def test_slant_follows_the_lean():
    assert slant(pen_strokes(lean=0.9)) > slant(pen_strokes(lean=0.3)) + 10


# ----- style files -----------------------------------------------------------------------------------------------
def make_style(name: str = "Ada") -> Style:
    return Style(name, TEXT, pen_strokes(), source={"device": "tablet", "sampling_rate_hz": 100})


def test_style_file_round_trip(tmp_path):
    style = make_style()
    style.prime("skip2")
    path = tmp_path / "ada.penwright-style.json"
    save_style(path, style)
    data = json.loads(path.read_text())
    assert data["format"] == "penwright-style" and data["version"] == 1 and data["prime"]["convention"] == "skip2"
    loaded = load_style(path)
    assert (loaded.name, loaded.text, loaded.source, loaded.created) == (
        style.name,
        style.text,
        style.source,
        style.created,
    )
    for a, b in zip(loaded.strokes, style.strokes, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(loaded.prime("skip2").offsets, style.prime("skip2").offsets, atol=1e-3)
    fresh = prime_from_strokes(loaded.strokes, loaded.text, "skip2").offsets
    np.testing.assert_allclose(fresh, style.prime("skip2").offsets, atol=1e-2)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"format": "penwright-style", "version": 1, "name": "x", "te', "not valid JSON"),
        ('{"format": "something-else"}', "not a Penwright style"),
        ('{"format": "penwright-style", "version": 99}', "newer"),
        ('{"format": "penwright-style", "version": 1, "name": "x"}', "damaged"),
        ('{"format": "penwright-style", "version": 1, "name": "x", "text": "a", "strokes": [[[0, 0]]]}', "two points"),
        ('{"format": "penwright-style", "version": 1, "name": "x", "text": "a", "strokes": [["a"]]}', "damaged"),
    ],
)
def test_corrupt_style_files_give_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.penwright-style.json"
    path.write_text(content)
    with pytest.raises(StyleError, match=message):
        load_style(path)
    with pytest.raises(StyleError, match="does not exist"):
        load_style(tmp_path / "missing.penwright-style.json")


def test_the_styles_folder(tmp_path):
    folder = tmp_path / "styles"
    folder.mkdir()
    assert list_styles(folder) == []
    save_named_style(make_style("Ada / notes?"), folder=folder)
    assert list_styles(folder) == ["Ada _ notes_"]
    with pytest.raises(StyleExistsError):
        save_named_style(make_style("Ada / notes?"), folder=folder)
    save_named_style(make_style("Ada / notes?"), overwrite=True, folder=folder)
    assert load_named_style("Ada / notes?", folder).text == TEXT
    delete_style("Ada / notes?", folder)
    assert list_styles(folder) == []
    with pytest.raises(StyleError, match="no style"):
        delete_style("Ada / notes?", folder)
    for bad in ("", " ..", "   "):
        with pytest.raises(StyleError):
            safe_style_name(bad)
    assert safe_style_name("../../etc/passwd") == "_.._etc_passwd"


def test_the_sampling_rate_is_estimated_when_not_given():
    assert Style("x", TEXT, pen_strokes(rate_hz=200)).source["sampling_rate_hz"] == pytest.approx(200, rel=0.01)
    assert "sampling_rate_hz" not in Style("x", TEXT, [s[:, :2] for s in pen_strokes()]).source


def test_the_default_styles_folder_is_in_the_data_folder():
    style = make_style("default-folder-test")
    path = save_named_style(style)
    assert path.parent.name == "styles" and "default-folder-test" in list_styles()
    delete_style("default-folder-test")


# ----- real pen input: IAM-OnDB validation lines as other devices would record them ------------------------------
@pytest.mark.needs_data
def test_iam_lines_recorded_by_other_devices_give_the_same_prime(iam_ondb):
    for _, text, strokes in iam_pen_lines(iam_ondb, "testset_v", limit=3):
        reference = prime_metrics(strokes, text)
        assert reference.height == pytest.approx(IAM_LETTER_HEIGHT, rel=0.1)
        variants = [resample_in_time(strokes, 60), resample_in_time(strokes, 200)]
        for factor in (0.037, 3.5):
            variants.append([np.column_stack([s[:, :2] * factor + 500, s[:, 2:]]) for s in strokes])
        for variant in variants:
            assert_close(prime_metrics(variant, text), reference)
