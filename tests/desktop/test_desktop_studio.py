"""The studio's page tools with the tiny model: preset styles, page setup, rewriting one line, exports read back."""

from __future__ import annotations

import re

import numpy as np
import pytest
from desktop_helpers import write_and_wait
from PIL import Image
from PySide6.QtWidgets import QDialogButtonBox

from desktop import handwriting_tab
from desktop.handwriting_tab import GCODE_FILTER, INKML_FILTER, PNG_FILTER, SVG_FILTER
from desktop.page_document import PageDocument
from desktop.page_setup import PageSetupDialog
from desktop.style_library import PRESET_SUFFIX, preset_key
from engine.formats.inkml import read_inkml
from engine.handwriting import styles
from engine.handwriting.page import PageGeometry
from engine.handwriting.styles import Style, save_style


@pytest.fixture
def presets(tmp_path, monkeypatch):
    """A presets folder holding one preset the tiny model can read (its alphabet is "abc ")."""
    folder = tmp_path / "presets"
    t = np.linspace(0, 6 * np.pi, 150)
    ink = np.column_stack([20 + 12 * t - 8 * np.sin(t), 100 + 18 * np.cos(t), t / 10, np.full_like(t, 0.5)])
    save_style(folder / ("Tidy" + styles.STYLE_SUFFIX), Style("Tidy", "abc cab", [ink[:75], ink[75:]]))
    monkeypatch.setattr(styles, "presets_dir", lambda: folder)
    return folder


def test_presets_are_listed_apart_from_saved_styles_and_write(qtbot, presets, tiny_synthesis_model) -> None:
    from desktop.handwriting_tab import HandwritingTab

    Style("Mine", "abc", [np.array([[0.0, 0, 0, 0], [50, 10, 1, 0]])]).source  # noqa: B018 (a valid style)
    tab = HandwritingTab(tiny_synthesis_model)
    qtbot.addWidget(tab)
    qtbot.waitUntil(lambda: tab.model_ready and not tab.busy, timeout=20000)
    picker = tab.style_picker
    assert picker.presets() == [preset_key("Tidy")] and picker.names() == []
    assert picker.combo.itemText(1) == "Tidy" + PRESET_SUFFIX
    picker.select(preset_key("Tidy"))
    assert not picker.delete_button.isEnabled()  # presets ship with the app: not deletable
    assert "preset" in tab.style_hint.text()
    write_and_wait(qtbot, tab, "ab")
    assert tab.result is not None and tab.result.primed, tab.status_text
    assert "style 'Tidy (preset)'" in tab.status_text
    tab.shutdown()


def test_page_setup_edits_the_geometry_in_inches_and_it_is_kept(qtbot, tab, tmp_path) -> None:
    dialog = tab.edit_page_setup()
    dialog.size_box.setCurrentIndex(dialog.size_box.findData("letter"))
    dialog.unit_box.setCurrentIndex(dialog.unit_box.findData("in"))
    assert dialog.width_spin.value() == pytest.approx(8.5) and dialog.width_spin.suffix() == " in"
    for spin in dialog.margin_spins:
        spin.setValue(1.0)
    dialog.letter_spin.setValue(0.2)
    dialog.spacing_spin.setValue(0.5)
    dialog.accept()
    geometry = tab.page_geometry
    assert (geometry.width, geometry.height) == pytest.approx((215.9, 279.4))
    assert geometry.margins == pytest.approx((25.4,) * 4) and geometry.letter_height == pytest.approx(5.08)
    assert tab.page_label.text().startswith("Letter, margins 1 in, letters 0.2 in")
    path = tmp_path / "page.penwright.json"
    assert tab.save_page(path)
    assert PageDocument.load(path).geometry == geometry
    tab.set_page_geometry(PageGeometry())
    assert tab.open_page(path) and tab.page_geometry == geometry


def test_page_setup_refuses_a_page_that_cannot_work(qtbot, tab) -> None:
    dialog = PageSetupDialog(PageGeometry(), tab)
    dialog.margin_spins[1].setValue(150)
    dialog.margin_spins[3].setValue(150)
    assert "margins" in dialog.error_label.text()
    assert not dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()
    dialog.size_box.setCurrentIndex(dialog.size_box.findData("custom"))
    dialog.width_spin.setValue(400)
    assert dialog.error_label.text() == "" and dialog.read().width == 400


def test_one_line_is_rewritten_and_the_others_stay(qtbot, tab, tmp_path) -> None:
    write_and_wait(qtbot, tab, "abc\ncab\nba")
    before = tab.result
    assert tab.rewrite_button.isEnabled()
    tab.view.grab()  # painted: a right-click finds the line under the pointer
    assert tab.view.line_at(0) == 0 and tab.view.line_at(tab.view.height()) == 2
    assert tab.view.line_at(tab.view.height() / 2) == 1
    assert tab.rewrite_line(1, seed=777)
    qtbot.waitUntil(lambda: not tab.busy, timeout=20000)
    after = tab.result
    assert after.texts == before.texts and tab.line_seeds == {1: 777}
    for i in (0, 2):
        assert all(np.array_equal(a, b) for a, b in zip(after.lines[i], before.lines[i], strict=True))
    assert not all(
        len(a) == len(b) and np.array_equal(a, b) for a, b in zip(after.lines[1], before.lines[1], strict=False)
    )
    assert "line 2 again" in tab.status_text and tab.view.line_count == 3
    # no style: the line is written again in the hand the page's seed invented, not in a new one
    writer = tab._writer
    hand = writer.invented_hand(before.seed, before.bias)
    again = writer.write(["cab"], bias=before.bias, seed=777, prime=hand)[0].strokes
    assert len(again) == len(after.lines[1])
    for a, b in zip(after.lines[1], again, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-3)
    # a saved page remembers the rewritten line, and opening it writes the same page again
    path = tmp_path / "page.penwright.json"
    tab.save_page(path)
    assert PageDocument.load(path).line_seeds == {1: 777}
    tab.seed_spin.setValue(99)
    tab.open_page(path)
    qtbot.waitUntil(lambda: not tab.busy and tab.line_seeds == {1: 777}, timeout=20000)
    for old, new in zip(after.lines, tab.result.lines, strict=True):
        assert all(np.array_equal(a, b) for a, b in zip(old, new, strict=True))


def test_rewriting_needs_the_text_as_written(qtbot, tab) -> None:
    write_and_wait(qtbot, tab, "abc\ncab")
    tab.text_edit.setPlainText("abc")
    assert not tab.rewrite_line(0)
    assert tab.status_kind == "error" and "press Write" in tab.status_text


class FakeSaveDialog:
    answer: tuple[str, str] = ("", "")

    @classmethod
    def getSaveFileName(cls, *args, **kwargs) -> tuple[str, str]:  # noqa: N802 (Qt's name)
        return cls.answer


@pytest.mark.parametrize(
    ("name", "chosen", "written"),
    [
        ("page.svg", SVG_FILTER, "page.svg"),
        ("page", PNG_FILTER, "page.png"),
        ("page", INKML_FILTER, "page.inkml"),
        ("plot.gcode", SVG_FILTER, "plot.gcode"),
        ("plot", GCODE_FILTER, "plot.gcode"),
    ],
)
def test_export_writes_the_whole_page_in_each_format(qtbot, tab, tmp_path, monkeypatch, name, chosen, written) -> None:
    tab.set_page_geometry(PageGeometry(148, 210, (10, 10, 10, 10), 12, 4))
    write_and_wait(qtbot, tab, "abc cab\nba\ncc")
    strokes = sum(len(line) for line in tab.result.lines)
    monkeypatch.setattr(FakeSaveDialog, "answer", (str(tmp_path / name), chosen))
    monkeypatch.setattr(handwriting_tab, "QFileDialog", FakeSaveDialog)
    tab.export()
    path = tmp_path / written
    assert tab.status_text.startswith(f"Exported to {path}")
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [written]  # atomic: no temporary left
    if written.endswith(".svg"):
        text = path.read_text()
        assert 'width="148mm" height="210mm"' in text and text.count("<path") == strokes
        assert "abc cab / ba / cc" in text
    elif written.endswith(".png"):
        with Image.open(path) as image:
            assert image.size == (round(148 / 25.4 * 150), round(210 / 25.4 * 150))
            assert np.asarray(image.convert("L")).min() < 128  # ink on the page
    elif written.endswith(".inkml"):
        traces = read_inkml(path)
        assert len(traces) == strokes
        every = np.concatenate(traces)
        assert every[:, 0].min() >= 10 - 1e-6 and every[:, 0].max() <= 138 + 1e-6  # inside the margins
    else:
        program = path.read_text().splitlines()
        assert program[0].startswith("; Penwright page 1: 148 x 210 mm") and "G21 ; millimetres" in program
        assert sum(1 for line in program if line == "M3 S0") == strokes  # one pen-down per stroke
        assert all(re.match(r"^(;|G[0-4]|M3|G21|G90)", line) for line in program)


def test_a_long_page_exports_one_file_per_sheet(qtbot, tab, tmp_path, monkeypatch) -> None:
    tab.set_page_geometry(PageGeometry(100, 60, (10, 10, 10, 10), 12, 4))
    write_and_wait(qtbot, tab, "\n".join(["ab", "ba", "cc", "ab", "ca"]))
    monkeypatch.setattr(FakeSaveDialog, "answer", (str(tmp_path / "page.svg"), SVG_FILTER))
    monkeypatch.setattr(handwriting_tab, "QFileDialog", FakeSaveDialog)
    tab.export()
    files = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert len(files) > 1 and files[0] == "page-1.svg" and "pages" in tab.status_text


def move_bias(tab, steps: int) -> None:
    """What a user's drag or key presses do: slider actions (values set by the program do not preview)."""
    from PySide6.QtWidgets import QAbstractSlider

    for _ in range(steps):
        tab.bias_slider.triggerAction(QAbstractSlider.SliderAction.SliderSingleStepAdd)


def test_moving_the_bias_slider_rewrites_the_page_once_it_rests(qtbot, tab) -> None:
    tab.bias_slider.setValue(50)  # set by the program: no preview, nothing written yet
    assert not tab.preview_timer.isActive()
    write_and_wait(qtbot, tab, "abc\ncab")
    first = tab.result
    move_bias(tab, 5)
    move_bias(tab, 5)
    assert tab.preview_timer.isActive() and tab.result is first  # still moving: nothing written yet
    qtbot.waitUntil(lambda: tab.result is not None and tab.result is not first, timeout=20000)
    assert tab.result.bias == pytest.approx(0.6) and tab.result.texts == first.texts


def test_moving_the_bias_slider_cancels_the_job_in_flight(qtbot, tab) -> None:
    tab.text_edit.setPlainText("\n".join(["abc cab bca abc cab bca abc"] * 12))
    tab.write()
    qtbot.waitUntil(lambda: tab.view.updates_received > 0, timeout=20000)
    tab.preview_timer.setInterval(10)  # the first job is surely still writing when the preview starts
    move_bias(tab, 20)
    qtbot.waitUntil(lambda: not tab.busy and tab.result is not None, timeout=30000)
    assert tab.runner.cancelled_count == 1
    assert tab.result.bias == pytest.approx(0.95) and len(tab.result.lines) == 12


class FakeColourDialog:
    @staticmethod
    def getColor(*args, **kwargs):  # noqa: N802 (Qt's name)
        from PySide6.QtGui import QColor

        return QColor("#b02020")


def test_pen_width_and_colour_reach_the_view_the_exports_and_the_settings(qtbot, tab, tmp_path, monkeypatch) -> None:
    from desktop import settings

    monkeypatch.setattr(handwriting_tab, "QColorDialog", FakeColourDialog)
    tab.choose_colour()
    tab.pen_width_spin.setValue(0.8)
    assert tab.view.ink.name() == "#b02020" and tab.view.width_factor == pytest.approx(2.0)
    write_and_wait(qtbot, tab, "abc cab")
    monkeypatch.setattr(handwriting_tab, "QFileDialog", FakeSaveDialog)
    monkeypatch.setattr(FakeSaveDialog, "answer", (str(tmp_path / "page.svg"), SVG_FILTER))
    tab.export()
    svg = (tmp_path / "page.svg").read_text()
    assert 'stroke="#b02020"' in svg and 'stroke-width="8"' in svg  # 0.8 mm in the page's 0.1 mm units
    monkeypatch.setattr(FakeSaveDialog, "answer", (str(tmp_path / "page.png"), PNG_FILTER))
    tab.export()
    with Image.open(tmp_path / "page.png") as image:
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    darkest = pixels[np.argmin(pixels.sum(axis=1))]
    assert darkest[0] > 2 * darkest[2]  # red ink, not the default blue-black
    assert settings.read("pen/colour", "") == "#b02020" and settings.read("pen/width", 0.0, float) == 0.8
