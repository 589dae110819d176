"""Styles in the window: save the canvas as a style, pick it, write primed with it; readable refusals."""

from __future__ import annotations

import numpy as np
import pytest
from desktop_helpers import LINE_WORDS, loops, mouse_stroke, tablet_device, tablet_stroke, write_and_wait

from desktop.handwriting_tab import HandwritingTab
from desktop.main_window import MainWindow
from desktop.style_library import NO_STYLE, StyleLibrary
from desktop.style_panel import StylePanel
from engine.handwriting.styles import list_styles, load_named_style
from engine.handwriting.writer import HandwritingWriter


@pytest.fixture
def library():
    return StyleLibrary()


@pytest.fixture
def styled_tab(qtbot, tiny_synthesis_model, library):
    widget = HandwritingTab(tiny_synthesis_model, library)
    qtbot.addWidget(widget)
    widget.resize(900, 500)
    widget.show()
    qtbot.waitUntil(lambda: widget.model_ready, timeout=20000)
    yield widget
    widget.shutdown()


@pytest.fixture
def panel(qtbot, library, styled_tab):
    widget = StylePanel(library, lambda: styled_tab.writer)
    qtbot.addWidget(widget)
    widget.resize(800, 560)
    widget.show()
    return widget


def write_line(panel: StylePanel, text: str = "abc cab", name: str = "Mine") -> None:
    pen = tablet_device()
    for word in LINE_WORDS:
        tablet_stroke(panel.canvas, pen, word, list(np.linspace(0.3, 0.9, len(word))))
    panel.text_edit.setText(text)
    panel.name_edit.setText(name)


def test_a_saved_style_appears_in_the_pickers_and_is_chosen(panel, styled_tab) -> None:
    assert styled_tab.style_picker.combo.itemText(0) == NO_STYLE and styled_tab.style_name == ""
    write_line(panel)
    panel.save_button.click()
    assert panel.status_kind == "info" and "Saved the style 'Mine'" in panel.status_text
    assert list_styles() == ["Mine"]
    style = load_named_style("Mine")
    assert style.text == "abc cab" and len(style.strokes) == 2 and style.source["device"] == "tablet"
    assert style.cached_prime is not None  # checked against the loaded model and ready to use
    assert styled_tab.style_picker.names() == ["Mine"] and styled_tab.style_name == "Mine"
    assert panel.picker.names() == ["Mine"]
    # the tab follows the newly chosen style (its hint and the matching switch), not only its picker
    assert "Writes in your style" in styled_tab.style_hint.text() and styled_tab.match_check.isEnabled()


def test_a_chosen_style_is_measured_for_matching_before_the_first_write(qtbot, panel, styled_tab) -> None:
    write_line(panel)
    panel.save_style()
    qtbot.waitUntil(lambda: not styled_tab.busy, timeout=20000)
    writer = styled_tab.writer
    prime = load_named_style("Mine").prime(writer.convention, writer.alphabet)
    calls = []
    original = writer.write
    writer.write = lambda *a, **k: calls.append(1) or original(*a, **k)
    writer.style_correction(prime, styled_tab.bias)  # already measured, in the background: nothing written now
    assert calls == []
    styled_tab.match_check.setChecked(False)
    qtbot.waitUntil(lambda: not styled_tab.busy, timeout=20000)
    measured = []
    writer.style_correction = lambda *a: measured.append(a)
    styled_tab.style_picker.select("")
    styled_tab.style_picker.select("Mine")
    qtbot.waitUntil(lambda: not styled_tab.busy, timeout=20000)  # the style is still read (for its notices)
    assert measured == []  # matching off: nothing measured


def test_a_write_waiting_for_the_style_being_measured_says_so(qtbot, panel, styled_tab) -> None:
    import threading

    from desktop.workers import MEASURING_STATUS

    qtbot.waitUntil(lambda: not styled_tab.busy, timeout=20000)
    writer, release = styled_tab.writer, threading.Event()
    measure = writer.style_correction

    def slow_measure(prime, bias):  # a long measurement (the shipped network takes seconds)
        release.wait(10)
        return measure(prime, bias)

    writer.style_correction = slow_measure
    write_line(panel)
    panel.save_style()  # chosen in the tab, which starts measuring it in the background
    assert styled_tab.busy
    styled_tab.text_edit.setPlainText("ba cab")
    styled_tab.write()
    assert styled_tab.status_text == MEASURING_STATUS  # not "Writing…" with nothing drawn for seconds
    release.set()
    qtbot.waitUntil(lambda: not styled_tab.busy, timeout=20000)
    assert styled_tab.status_text.startswith("Wrote 1 line"), styled_tab.status_text


def test_writing_with_a_style_primes_the_writer(qtbot, panel, styled_tab, tiny_synthesis_model) -> None:
    write_line(panel)
    panel.save_style()
    styled_tab.seed_spin.setValue(5)
    write_and_wait(qtbot, styled_tab, "ba cab")
    primed = styled_tab.result
    assert primed is not None and primed.primed, styled_tab.status_text
    assert "style 'Mine'" in styled_tab.status_text

    writer = HandwritingWriter.load(tiny_synthesis_model)
    prime = load_named_style("Mine").prime(writer.convention, writer.alphabet)

    def same_as(result, match_style: bool) -> None:
        expected = writer.write(["ba cab"], bias=styled_tab.bias, seed=5, prime=prime, match_style=match_style)
        assert len(result.lines[0]) == len(expected[0].strokes)
        for got, want in zip(result.lines[0], expected[0].strokes, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)

    assert styled_tab.match_check.isChecked() and styled_tab.match_check.isEnabled()
    same_as(primed, match_style=True)  # the style's size, width and slant matched, by default
    assert not writer.style_correction(prime, styled_tab.bias).is_identity
    styled_tab.match_check.setChecked(False)
    write_and_wait(qtbot, styled_tab, "ba cab")
    same_as(styled_tab.result, match_style=False)
    styled_tab.match_check.setChecked(True)

    styled_tab.style_picker.select("")
    assert not styled_tab.match_check.isEnabled()  # nothing to match without a style
    write_and_wait(qtbot, styled_tab, "ba cab")
    plain = styled_tab.result
    assert plain is not None and not plain.primed
    same = len(plain.lines[0]) == len(primed.lines[0]) and all(
        a.shape == b.shape and np.allclose(a, b) for a, b in zip(plain.lines[0], primed.lines[0], strict=True)
    )
    assert not same  # the same seed writes differently once primed


@pytest.mark.parametrize(
    ("text", "name", "ink", "expected"),
    [
        ("abc cab", "Mine", False, "Write a line on the canvas first."),
        ("abc cab", "", True, "Give the style a name."),
        ("", "Mine", True, "A style needs the text of its handwriting."),
        ("abc cab abc cab abc cab abc cab abc cab", "Mine", True, "The text is too long for the ink"),
        ("ab", "Mine", True, "The text is too short for the ink"),
        ("abc xyz", "Mine", True, "'x'"),
        ("abc cab", "...", True, "cannot be used as a style name"),
    ],
)
def test_bad_styles_are_refused_with_readable_messages(panel, text, name, ink, expected) -> None:
    if ink:
        for word in LINE_WORDS:
            mouse_stroke(panel.canvas, word)
    panel.text_edit.setText(text)
    panel.name_edit.setText(name)
    panel.save_style()
    assert panel.status_kind == "error"
    assert expected in panel.status_text and "Traceback" not in panel.status_text
    assert not panel.status_text[0].islower()  # a sentence, not a raw exception text
    assert list_styles() == []


def test_replacing_a_style_asks_first(panel) -> None:
    write_line(panel)
    panel.save_style()
    asked: list[str] = []
    panel.confirm_overwrite = lambda name: asked.append(name) or False
    panel.save_style()
    assert asked == ["Mine"] and "Saved" in panel.status_text  # nothing changed, the old message stays
    panel.confirm_overwrite = lambda name: True
    panel.text_edit.setText("cab abc")
    panel.save_style()
    assert load_named_style("Mine").text == "cab abc"


def test_deleting_a_style_from_the_picker(panel, styled_tab) -> None:
    write_line(panel)
    panel.save_style()
    picker = styled_tab.style_picker
    picker.confirm = lambda name: True
    picker.delete_button.click()
    assert list_styles() == [] and picker.names() == [] and panel.picker.names() == []
    assert picker.current == "" and not picker.delete_button.isEnabled()


def test_a_damaged_style_file_is_reported_when_writing(qtbot, panel, styled_tab) -> None:
    write_line(panel)
    panel.save_style()
    from engine.handwriting.styles import style_path

    style_path("Mine").write_text("{not json")
    write_and_wait(qtbot, styled_tab, "abc")
    assert styled_tab.status_kind == "error" and "The style 'Mine' cannot be used" in styled_tab.status_text


def test_the_window_has_a_my_handwriting_tab_sharing_the_styles(qtbot, tmp_path) -> None:
    window = MainWindow(tmp_path / "no-model.npz")
    qtbot.addWidget(window)
    assert [window.tabs.tabText(i) for i in range(window.tabs.count())][:2] == ["Handwriting", "My handwriting"]
    assert window.my_handwriting.library is window.handwriting.library
    window.close()


@pytest.fixture
def window(qtbot, tiny_synthesis_model):
    window = MainWindow(tiny_synthesis_model)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.handwriting.model_ready, timeout=20000)
    yield window
    window.handwriting.shutdown()
    window.close()


@pytest.mark.parametrize("ahead", [-4, 2])
def test_a_saved_style_whose_strokes_and_text_disagree_is_reported_on_saving(qtbot, window, monkeypatch, ahead) -> None:
    """Where the engine finds the style's window ending off its text (its strokes end before the text does, or run
    on past it), the user is told as the style is saved, while the strokes are on the canvas to compare."""
    from engine.handwriting import writer as writer_module

    monkeypatch.setattr(writer_module, "first_focus", lambda stepper, state: ahead)
    panel, tab = window.my_handwriting, window.handwriting
    write_line(panel)
    panel.save_button.click()
    qtbot.waitUntil(lambda: panel.status_kind == "notice", timeout=20000)
    expected = "end before its text does" if ahead < 0 else "run on past its text"
    assert panel.status_text.startswith("Saved the style 'Mine', but the style's strokes"), panel.status_text
    assert expected in panel.status_text and "save it again" in panel.status_text
    qtbot.waitUntil(lambda: not tab.busy, timeout=20000)
    assert tab.status_kind == "notice" and expected in tab.status_text  # the Handwriting tab says it too


def test_a_style_saved_again_under_its_name_is_checked_again(qtbot, window, monkeypatch) -> None:
    from engine.handwriting import writer as writer_module

    panel, tab = window.my_handwriting, window.handwriting
    focus = {"ahead": 0}
    monkeypatch.setattr(writer_module, "first_focus", lambda stepper, state: focus["ahead"])
    write_line(panel)
    panel.save_button.click()
    qtbot.waitUntil(lambda: not tab.busy, timeout=20000)
    qtbot.wait(50)
    assert panel.status_kind == "info" and panel.status_text.startswith("Saved the style 'Mine'.")  # nothing to say
    focus["ahead"] = -5  # written again, with text the new strokes do not reach
    panel.confirm_overwrite = lambda name: True
    panel.canvas.clear()
    pen = tablet_device()
    for word in (loops(40, 3, height=36), loops(210, 3, height=36)):  # other strokes, the same words
        tablet_stroke(panel.canvas, pen, word, [0.5] * len(word))
    panel.save_button.click()
    assert panel.status_kind == "info", panel.status_text
    qtbot.waitUntil(lambda: panel.status_kind == "notice", timeout=20000)
    assert "end before its text does" in panel.status_text
