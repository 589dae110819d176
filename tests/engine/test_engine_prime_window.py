"""A style whose window has run on past its text: word spaces follow it, so lines begin at their first letter."""

from __future__ import annotations

import numpy as np
import pytest

from engine.handwriting import writer as writer_module
from engine.handwriting.sampling import first_focus
from engine.handwriting.styles import iam_pen_lines, prime_from_strokes
from engine.handwriting.writer import HandwritingWriter, Prime, shipped_model_path

# testset_v lines whose pen wrote on past their transcription: taken as styles, every line primed with them began
# one to three letters late ("Sphinx" as "phinx") before word spaces were added after the style's text
RUN_ON_LINES = {"a01-020z-03": 3, "b07-568z-02": 1, "b07-568z-05": 1}


@pytest.fixture(scope="module")
def writer(tiny_synthesis_model) -> HandwritingWriter:
    return HandwritingWriter.load(tiny_synthesis_model, backend="torch")


def _style(writer: HandwritingWriter, seed: int) -> Prime:
    line = writer.write(["abc cab"], bias=0.5, seed=seed)[0]
    return Prime(line.offsets, line.text)


@pytest.mark.parametrize("ahead, spaces", [(-2, 0), (-1, 0), (0, 0), (1, 2), (3, 4)])
def test_word_spaces_follow_a_style_only_where_its_window_ran_on(writer, monkeypatch, ahead, spaces):
    monkeypatch.setattr(writer_module, "first_focus", lambda stepper, state: ahead)
    style = _style(writer, 40 + ahead)
    state = writer.primed_state(style)
    own = writer.alphabet.encode(writer.alphabet.prepare(style.text).text + " ")
    assert np.array_equal(state.chars, np.concatenate([own, writer.alphabet.encode(" " * spaces)]))
    lines = writer.write(["ab", "cab"], bias=0.5, seed=1, prime=style)  # the lines are written after the spaces
    assert all(line.primed and len(line.offsets) > 0 for line in lines)


@pytest.mark.skipif(not shipped_model_path().with_suffix(".onnx").exists(), reason="no shipped synthesis model")
def test_lines_in_a_run_on_style_begin_at_their_first_letter(iam_ondb):
    shipped = HandwritingWriter.load(shipped_model_path(), backend="onnx")
    found = {}
    for line_id, text, strokes in iam_pen_lines(iam_ondb, "testset_v", 200, one_per_form=False):
        if line_id in RUN_ON_LINES:
            found[line_id] = prime_from_strokes(strokes, text, shipped.convention, shipped.alphabet)
    assert set(found) == set(RUN_ON_LINES)
    for line_id, style in found.items():
        state = shipped.primed_state(style)
        assert len(state.chars) == len(style.text) + 1 + RUN_ON_LINES[line_id] + 1, line_id
        assert first_focus(shipped.stepper, state) <= 0, line_id
        lines = shipped.write(["Sphinx of black quartz", "Judge my vow"], bias=0.75, seed=11, prime=style, record=True)
        for line in lines:  # the window's focus on the line's first step: not past its first letter
            assert np.argmax(line.window[0]) - len(state.chars) <= 0, (line_id, line.text)
