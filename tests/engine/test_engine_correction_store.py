"""Style corrections kept in the cache folder: read back to the bit, measured anew when anything changes,
and a damaged or unwritable cache costs nothing but measuring again."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.handwriting import correction_store as store_module
from engine.handwriting import writer as writer_module
from engine.handwriting.correction_store import FILE_NAME, CorrectionStore
from engine.handwriting.style_matching import StyleCorrection
from engine.handwriting.writer import HandwritingWriter, Prime


def test_a_correction_is_read_back_exactly(tmp_path):
    store = CorrectionStore(tmp_path / "c.json")
    c = StyleCorrection(1.0 / 3.0, -0.1234567890123, 1.2345678901234567)
    store.put("k", c)
    assert CorrectionStore(tmp_path / "c.json").get("k") == c  # the same floats, not rounded
    assert store.get("other") is None


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\xff not json",
        b'{"format": 1, "corrections": []}',
        b'{"format": 99, "corrections": {"k": [1, 0, 1]}}',
        b'{"format": 1, "corrections": {"k": [1, "x", 1]}}',
        b'{"format": 1, "corrections": {"k": [1, NaN, 1]}}',
        b'{"format": 1, "corrections": {"k": [0, 0, 1]}}',
        b'{"format": 1, "corrections": {"k": [1, 0]}}',
    ],
)
def test_a_damaged_cache_is_ignored_and_written_anew(tmp_path, content):
    path = tmp_path / "c.json"
    path.write_bytes(content)
    store = CorrectionStore(path)
    assert store.get("k") is None
    store.put("k", StyleCorrection(1.1, 0.0, 0.9))
    assert store.get("k") == StyleCorrection(1.1, 0.0, 0.9)
    assert json.loads(path.read_text())["format"] == store_module.FORMAT


def test_a_cache_folder_that_cannot_be_made_keeps_nothing_and_the_model_still_loads(
    tiny_synthesis_model, style, monkeypatch, tmp_path
):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("PENWRIGHT_CACHE_DIR", str(blocker / "cache"))
    writer = HandwritingWriter.load(tiny_synthesis_model, backend="torch", keep_corrections=True)
    assert writer.style_correction(style, 0.5) == writer.style_correction(style, 0.5)  # measured, in memory
    assert not blocker.is_dir()


def test_huge_or_integer_values_are_not_trusted(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{"format": 1, "corrections": {"k": [1' + "0" * 400 + ', 0.0, 1.0], "j": [1, 0, 1]}}')
    store = CorrectionStore(path)
    assert store.get("k") is None and store.get("j") is None


def test_the_cache_keeps_the_newest_entries(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "KEPT", 3)
    store = CorrectionStore(tmp_path / "c.json")
    for i in range(5):
        store.put(f"k{i}", StyleCorrection(1.0 + i, 0.0, 1.0))
    assert [store.get(f"k{i}") is not None for i in range(5)] == [False, False, True, True, True]


def test_an_unwritable_cache_folder_is_not_an_error(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be")  # unwritable even for root
    store = CorrectionStore(blocker / "c.json")
    store.put("k", StyleCorrection())
    assert store.get("k") is None


@pytest.fixture
def style(tiny_synthesis_model) -> Prime:
    line = HandwritingWriter.load(tiny_synthesis_model, backend="torch").write(["cab ba"], bias=0.5, seed=21)[0]
    return Prime(line.offsets, line.text)


def _count_measures(monkeypatch) -> list:
    calls: list = []
    measure = writer_module.correction_between
    monkeypatch.setattr(writer_module, "correction_between", lambda t, w: calls.append(1) or measure(t, w))
    return calls


def test_a_new_writer_reads_a_kept_correction_instead_of_measuring(tiny_synthesis_model, style, monkeypatch, tmp_path):
    monkeypatch.setenv("PENWRIGHT_CACHE_DIR", str(tmp_path / "cache"))
    calls = _count_measures(monkeypatch)
    first = HandwritingWriter.load(tiny_synthesis_model, backend="torch", keep_corrections=True)
    measured = first.style_correction(style, 0.5)
    assert len(calls) == 1 and (tmp_path / "cache" / FILE_NAME).exists()

    again = HandwritingWriter.load(tiny_synthesis_model, backend="torch", keep_corrections=True)
    assert again.knows_style_correction(style, 0.5) and not again.knows_style_correction(style, 1.0)
    assert again.style_correction(style, 0.5) == measured and len(calls) == 1  # read back, not measured
    written = [w.write(["ab"], bias=0.5, seed=3, prime=style, match_style=True)[0].offsets for w in (first, again)]
    np.testing.assert_array_equal(written[0], written[1])

    again.style_correction(style, 1.0)  # another neatness step
    other_style = Prime(style.offsets * [1.1, 1.0, 1.0], style.text)
    again.style_correction(other_style, 0.5)  # other strokes
    assert len(calls) == 3
    memory_only = HandwritingWriter.load(tiny_synthesis_model, backend="torch")
    assert not memory_only.knows_style_correction(style, 0.5)
    memory_only.style_correction(style, 0.5)
    assert len(calls) == 4  # without keep_corrections the cache folder is not read


def test_changed_weights_or_measuring_are_measured_anew(tiny_synthesis_model, style, monkeypatch, tmp_path):
    monkeypatch.setenv("PENWRIGHT_CACHE_DIR", str(tmp_path / "cache"))
    calls = _count_measures(monkeypatch)
    HandwritingWriter.load(tiny_synthesis_model, backend="torch", keep_corrections=True).style_correction(style, 0.5)
    changed = HandwritingWriter.load(tiny_synthesis_model, backend="torch", keep_corrections=True)
    name = sorted(changed.model.weights)[0]
    changed.model.weights[name] = changed.model.weights[name] + 1e-3
    changed.style_correction(style, 0.5)
    assert len(calls) == 2
    monkeypatch.setattr(writer_module, "MATCH_SAMPLES", 5)
    HandwritingWriter.load(tiny_synthesis_model, backend="torch", keep_corrections=True).style_correction(style, 0.5)
    assert len(calls) == 3
