"""The Handwriting tab end to end with the tiny model: write, stream, fail readably, export, stay responsive."""

from __future__ import annotations

import time

import numpy as np
import pytest
from desktop_helpers import write_and_wait
from PySide6.QtCore import Qt, QTimer

from desktop import handwriting_tab
from desktop.handwriting_tab import PNG_FILTER, SVG_FILTER, HandwritingTab
from engine.handwriting.writer import HandwritingWriter

LONG_LINE = "abc cab bca abc cab bca abc"


def test_write_streams_strokes_into_the_page(qtbot, tab) -> None:
    write_and_wait(qtbot, tab, "abc cab\nba ca bb")
    assert tab.status_kind in ("info", "notice"), tab.status_text
    assert tab.status_text.startswith("Wrote 2 lines")
    assert tab.view.line_count == 2 and tab.view.stroke_count > 0
    assert tab.view.updates_received > 2  # strokes arrived chunk by chunk, not all at the end
    assert tab.export_button.isEnabled()


def test_strokes_match_the_engines_write_for_the_same_seed(qtbot, tab, tiny_synthesis_model) -> None:
    tab.seed_spin.setValue(7)
    tab.bias_slider.setValue(50)
    write_and_wait(qtbot, tab, "abc cab\nba")
    # no style: the page's lines share the hand the network invents for the seed
    expected = HandwritingWriter.load(tiny_synthesis_model).write(["abc cab", "ba"], bias=0.5, seed=7, one_hand=True)
    assert tab.result is not None and tab.result.texts == ["abc cab", "ba"]
    for got, line in zip(tab.result.lines, expected, strict=True):
        want = line.strokes
        assert len(got) == len(want)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-3)


def test_unknown_characters_are_named_in_the_status_line(qtbot, tab) -> None:
    write_and_wait(qtbot, tab, "abc xyz")
    assert tab.status_kind == "error"
    assert "cannot write these characters" in tab.status_text
    assert all(f"'{c}'" in tab.status_text for c in "xyz")
    assert tab.result is None and not tab.export_button.isEnabled()
    assert tab.view.stroke_count == 0


def test_empty_text_asks_for_text(qtbot, tab) -> None:
    write_and_wait(qtbot, tab, "  \n\n ")
    assert tab.status_kind == "error" and "Type some text" in tab.status_text


def test_bias_slider_shows_its_value(tab) -> None:
    tab.bias_slider.setValue(150)
    assert tab.bias == 1.5 and tab.bias_label.text() == "1.50"


def test_another_variation_picks_a_new_seed_and_writes(qtbot, tab) -> None:
    write_and_wait(qtbot, tab, "abc")
    first = tab.result
    qtbot.mouseClick(tab.variation_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not tab.busy, timeout=20000)
    assert tab.seed_spin.value() != 1
    assert tab.result is not None and tab.result is not first
    assert f"seed {tab.seed_spin.value()}" in tab.status_text


class FakeSaveDialog:
    """Stands in for QFileDialog: answers the save question with a fixed path and filter."""

    answer: tuple[str, str] = ("", "")

    @classmethod
    def getSaveFileName(cls, *args, **kwargs) -> tuple[str, str]:  # noqa: N802 (Qt's name)
        return cls.answer


@pytest.mark.parametrize(
    ("name", "chosen", "written"),
    [("page.svg", SVG_FILTER, "page.svg"), ("page.png", SVG_FILTER, "page.png"), ("page", PNG_FILTER, "page.png")],
)
def test_export_writes_svg_or_png(qtbot, tab, tmp_path, monkeypatch, name, chosen, written) -> None:
    write_and_wait(qtbot, tab, "abc cab\nba")
    monkeypatch.setattr(FakeSaveDialog, "answer", (str(tmp_path / name), chosen))
    monkeypatch.setattr(handwriting_tab, "QFileDialog", FakeSaveDialog)
    qtbot.mouseClick(tab.export_button, Qt.MouseButton.LeftButton)
    data = (tmp_path / written).read_bytes()
    if written.endswith(".svg"):
        assert data.startswith(b"<?xml") and b"<path" in data and b"abc cab / ba" in data
    else:
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert tab.status_text == f"Exported to {tmp_path / written}."


def test_export_failure_is_reported(qtbot, tab, tmp_path, monkeypatch) -> None:
    write_and_wait(qtbot, tab, "abc")
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setattr(FakeSaveDialog, "answer", (str(tmp_path / "a-file" / "page.svg"), SVG_FILTER))
    monkeypatch.setattr(handwriting_tab, "QFileDialog", FakeSaveDialog)
    tab.export()
    assert tab.status_kind == "error" and tab.status_text.startswith("Could not export")


def test_cancelled_export_changes_nothing(qtbot, tab, monkeypatch) -> None:
    write_and_wait(qtbot, tab, "abc")
    before = tab.status_text
    monkeypatch.setattr(handwriting_tab, "QFileDialog", FakeSaveDialog)
    tab.export()
    assert tab.status_text == before


@pytest.mark.parametrize("content", [None, b"not a model at all"])
def test_missing_or_corrupt_model_gives_a_readable_message(qtbot, tmp_path, content) -> None:
    path = tmp_path / "handwriting-synthesis.npz"
    if content is not None:
        path.write_bytes(content)
    widget = HandwritingTab(path)
    qtbot.addWidget(widget)
    qtbot.waitUntil(lambda: widget.status_kind == "error", timeout=20000)
    expected = "No handwriting model found at" if content is None else "Could not load the handwriting model"
    assert widget.status_text.startswith(expected) and str(path) in widget.status_text
    assert "Traceback" not in widget.status_text
    assert not widget.write_button.isEnabled() and not widget.model_ready
    assert widget.view.message == "No handwriting model is loaded."
    widget.shutdown()


def test_event_loop_stays_responsive_while_writing(qtbot, tab) -> None:
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(tick)
    tab.text_edit.setPlainText("\n".join([LONG_LINE] * 16))
    qtbot.mouseClick(tab.write_button, Qt.MouseButton.LeftButton)
    # measured from when the click has been handled (its own work is not "while writing") to the job's end
    last[0] = time.perf_counter()
    timer.start()
    qtbot.waitUntil(lambda: not tab.busy, timeout=30000)
    timer.stop()
    assert tab.result is not None and len(tab.result.lines) == 16
    assert len(gaps) >= 5, "the job was too short to measure responsiveness"
    assert max(gaps) < 0.1, f"the event loop stalled for {max(gaps) * 1000:.0f} ms"


def test_a_new_write_cancels_the_one_in_flight(qtbot, tab) -> None:
    tab.text_edit.setPlainText("\n".join([LONG_LINE] * 12))
    tab.write()
    qtbot.waitUntil(lambda: tab.view.updates_received > 0, timeout=20000)
    tab.text_edit.setPlainText("cab")
    tab.write()
    qtbot.waitUntil(lambda: not tab.busy, timeout=20000)
    assert tab.runner.cancelled_count == 1
    assert tab.result is not None and tab.result.texts == ["cab"]
    assert tab.view.line_count == 1  # no late chunk of the cancelled job reached the page


def test_shutdown_during_a_job_stops_it_promptly(qtbot, tab) -> None:
    tab.text_edit.setPlainText("\n".join([LONG_LINE] * 12))
    tab.write()
    qtbot.waitUntil(lambda: tab.view.updates_received > 0, timeout=20000)
    started = time.perf_counter()
    assert tab.runner.shutdown(5000)
    assert time.perf_counter() - started < 2.0
    received = tab.view.updates_received
    qtbot.wait(50)
    assert tab.view.updates_received == received and not tab.busy


def test_a_write_in_a_style_whose_strokes_end_before_its_text_says_so(tiny_synthesis_model, monkeypatch) -> None:
    """The app's status line carries the engine's notice: the user can check the style's text."""
    from desktop.workers import write_job
    from engine.handwriting import writer as writer_module
    from engine.handwriting.writer import Prime

    writer = HandwritingWriter.load(tiny_synthesis_model, backend="torch")
    line = writer.write(["cab ba"], bias=0.5, seed=22)[0]
    style = Prime(line.offsets, line.text)
    monkeypatch.setattr(writer_module, "first_focus", lambda stepper, state: -4)  # the window ended behind the text
    job = write_job(writer, ["abc", "ba"], 0.5, 3, style, match_style=False)
    try:
        while True:
            next(job)
    except StopIteration as stop:
        result = stop.value
    assert any("end before its text does" in n for n in result.notices)


def test_a_write_that_must_measure_the_style_first_says_so(tiny_synthesis_model) -> None:
    """The first page in a style (not measured ahead of time) waits for its correction: the job says why first."""
    from desktop.workers import MEASURING_STATUS, write_job
    from engine.handwriting.writer import Prime

    writer = HandwritingWriter.load(tiny_synthesis_model, backend="torch")
    line = writer.write(["cab ba"], bias=0.5, seed=21)[0]
    style = Prime(line.offsets, line.text)

    def progress_of(match_style: bool) -> list:
        job = write_job(writer, ["abc"], 0.5, 3, style, match_style=match_style)
        seen = []
        try:
            while True:
                seen.append(next(job))
        except StopIteration:
            return seen

    assert all(p.status is None for p in progress_of(match_style=False))  # nothing to measure
    first = progress_of(match_style=True)
    assert first[0].status == MEASURING_STATUS and not first[0].updates
    assert all(p.status is None for p in first[1:]) and any(p.updates for p in first[1:])
    assert writer.knows_style_correction(style, 0.5)
    assert all(p.status is None for p in progress_of(match_style=True))  # measured once, then remembered
