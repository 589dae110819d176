"""A style whose window ends off its text: the text is made to end where the window does, so lines begin at their
first letter (not late, not with the style's last words)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.handwriting import writer as writer_module
from engine.handwriting.sampling import first_focus
from engine.handwriting.styles import iam_pen_lines, prime_from_strokes
from engine.handwriting.writer import HandwritingWriter, Prime, shipped_model_path
from engine.jobs import GenerationJob, GenerationRequest

# testset_v lines taken as styles, and where the window ended after reading them (letters past the style's text):
# run on past it, every line primed with them began one to three letters late ("Sphinx" as "phinx"); behind it,
# every line began with the style's last words ("that all is Sphinx"; a03-023-02 ends "...suggests that all is")
WINDOW_ENDS = {"a01-020z-03": 3, "b07-568z-02": 1, "b07-568z-05": 1, "a03-023-02": -15, "b05-465z-04": -10}


@pytest.fixture(scope="module")
def writer(tiny_synthesis_model) -> HandwritingWriter:
    return HandwritingWriter.load(tiny_synthesis_model, backend="torch")


def _style(writer: HandwritingWriter, seed: int) -> Prime:
    line = writer.write(["abc cab"], bias=0.5, seed=seed)[0]
    return Prime(line.offsets, line.text)


@pytest.mark.parametrize(
    "ahead, kept, spaces",
    [(-2, 0, 0), (-1, 0, 0), (0, 0, 0), (1, 0, 2), (3, 0, 4), (-3, -2, 1), (-5, -4, 1)],
)
def test_a_styles_text_is_made_to_end_where_its_window_does(writer, monkeypatch, ahead, kept, spaces):
    monkeypatch.setattr(writer_module, "first_focus", lambda stepper, state: ahead)
    style = _style(writer, 40 + ahead)
    state = writer.primed_state(style)
    own = writer.alphabet.encode(writer.alphabet.prepare(style.text).text + " ")
    expected = np.concatenate([own[: len(own) + kept], writer.alphabet.encode(" " * spaces)])  # kept < 0: cut
    assert np.array_equal(state.chars, expected)
    lines = writer.write(["ab", "cab"], bias=0.5, seed=1, prime=style)  # the lines follow the text as it now ends
    assert all(line.primed and len(line.offsets) > 0 for line in lines)


@pytest.mark.parametrize("ahead, says", [(-1, None), (2, "run on past its text"), (-5, "end before its text does")])
def test_the_user_is_told_when_a_styles_strokes_and_text_disagree(writer, monkeypatch, ahead, says):
    monkeypatch.setattr(writer_module, "first_focus", lambda stepper, state: ahead)
    style = _style(writer, 60 + ahead)
    notes = writer.style_notices(style)
    assert (notes == []) if says is None else (len(notes) == 1 and says in notes[0])
    for line in writer.write(["ab", "cab"], bias=0.5, seed=1, prime=style):  # every line carries it (CLI)
        assert line.notices == notes
    job = GenerationJob(GenerationRequest(["ab", "cab"], bias=0.5, seed=1, writer=writer, prime=style))
    assert all(line.notices == notes for line in job.start().result(timeout=60))  # the jobs the app runs
    if says == "end before its text does":  # it names where the strokes end, so the user can check the text
        kept = writer.primed_state(style).chars[:-1]
        assert "".join(writer.alphabet.characters[int(c)] for c in kept).strip()[-16:] in notes[0]


def test_a_page_in_an_invented_hand_has_no_style_notice(writer, monkeypatch):
    monkeypatch.setattr(writer_module, "first_focus", lambda stepper, state: -1)  # hands are checked on invention
    writer.forget_hands()
    hand = writer.invented_hand(5, 0.5)
    assert writer.style_notices(hand) == [] and writer.style_notices(None) == []
    assert all(line.notices == [] for line in writer.write(["ab", "cab"], bias=0.5, seed=5, one_hand=True))


@pytest.mark.skipif(not shipped_model_path().with_suffix(".onnx").exists(), reason="no shipped synthesis model")
def test_lines_in_a_style_whose_window_ends_off_its_text_begin_at_their_first_letter(iam_ondb):
    shipped = HandwritingWriter.load(shipped_model_path(), backend="onnx")
    found = {}
    for line_id, text, strokes in iam_pen_lines(iam_ondb, "testset_v", 200, one_per_form=False):
        if line_id in WINDOW_ENDS:
            found[line_id] = prime_from_strokes(strokes, text, shipped.convention, shipped.alphabet)
    assert set(found) == set(WINDOW_ENDS)
    for line_id, style in found.items():
        state = shipped.primed_state(style)
        ahead = WINDOW_ENDS[line_id]
        assert len(state.chars) == len(style.text) + 1 + (ahead + 1 if ahead > 0 else ahead + 2), line_id
        assert -2 <= first_focus(shipped.stepper, state) <= 0, line_id
        lines = shipped.write(["Sphinx of black quartz", "Judge my vow"], bias=0.75, seed=11, prime=style, record=True)
        for line in lines:  # the window on a line's first step: at its first letter, or the style's last one or two
            assert -2 <= np.argmax(line.window[0]) - len(state.chars) <= 0, (line_id, line.text)
