"""Page documents: save the text, style, seed, neatness and page geometry; reopen and write them again."""

from __future__ import annotations

import json

import pytest

from desktop import main_window
from desktop.main_window import MainWindow
from desktop.page_document import FORMAT, PageDocument, PageDocumentError
from engine.handwriting.page import PageGeometry


def test_round_trip_keeps_every_field(tmp_path) -> None:
    document = PageDocument("abc\ncab", "Everyday", 42, 1.25, PageGeometry(148, 210, (10, 12, 14, 16), 9, 3))
    path = tmp_path / "page.penwright.json"
    document.save(path)
    assert json.loads(path.read_text())["format"] == FORMAT
    assert PageDocument.load(path) == document
    assert [p.name for p in tmp_path.iterdir()] == ["page.penwright.json"]  # no temporary file left
    unmatched = PageDocument("abc", "Everyday", match_style=False)
    unmatched.save(path)
    assert PageDocument.load(path) == unmatched


def test_a_page_saved_before_style_matching_opens_without_it(tmp_path) -> None:
    data = json.loads(PageDocument("abc", "Everyday").to_json())
    del data["match_style"]
    path = tmp_path / "old.penwright.json"
    path.write_text(json.dumps(data))
    assert PageDocument.load(path).match_style is False  # it was written without: it is written again so
    data["match_style"] = "yes"
    path.write_text(json.dumps(data))
    with pytest.raises(PageDocumentError, match="wrong type"):
        PageDocument.load(path)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "not JSON"),
        ('{"format": "something else"}', "not a Penwright page"),
        ('{"format": "penwright-page", "version": 99, "text": "a"}', "newer Penwright"),
        ('{"format": "penwright-page", "version": 1}', "missing"),
        ('{"format": "penwright-page", "version": 1, "text": "a", "geometry": {"width": -1}}', "page geometry"),
    ],
)
def test_bad_files_say_why(tmp_path, content, reason) -> None:
    path = tmp_path / "page.json"
    path.write_text(content)
    with pytest.raises(PageDocumentError, match=reason):
        PageDocument.load(path)


class FakeDialog:
    answer = ""

    @classmethod
    def getSaveFileName(cls, *args, **kwargs):  # noqa: N802 (Qt's name)
        return cls.answer, ""

    getOpenFileName = getSaveFileName  # noqa: N815


def test_save_and_open_page_from_the_file_menu(qtbot, tmp_path, monkeypatch, tiny_synthesis_model) -> None:
    window = MainWindow(tiny_synthesis_model)
    qtbot.addWidget(window)
    tab = window.handwriting
    qtbot.waitUntil(lambda: tab.model_ready, timeout=20000)
    tab.text_edit.setPlainText("abc cab")
    tab.seed_spin.setValue(77)
    tab.bias_slider.setValue(120)
    tab.match_check.setChecked(False)
    monkeypatch.setattr(main_window, "QFileDialog", FakeDialog)
    monkeypatch.setattr(FakeDialog, "answer", str(tmp_path / "mine"))
    window.choose_page_to_save()
    saved = tmp_path / "mine.penwright.json"
    assert tab.status_text == f"Saved the page to {saved}." and saved.exists()
    tab.text_edit.setPlainText("other")
    tab.seed_spin.setValue(1)
    tab.match_check.setChecked(True)
    monkeypatch.setattr(FakeDialog, "answer", str(saved))
    window.choose_page_to_open()
    qtbot.waitUntil(lambda: not tab.busy, timeout=20000)
    assert tab.text_edit.toPlainText() == "abc cab" and tab.seed_spin.value() == 77 and tab.bias == 1.2
    assert not tab.match_check.isChecked()  # as the page was written
    assert tab.result is not None and tab.result.texts == ["abc cab"] and tab.result.seed == 77
    window.close()


def test_opening_a_page_with_a_missing_style_says_so(qtbot, tab, tmp_path) -> None:
    path = tmp_path / "page.penwright.json"
    PageDocument("abc", style="Gone").save(path)
    assert tab.open_page(path)
    assert tab.status_kind == "notice" and "'Gone' is not in your styles" in tab.status_text
    qtbot.waitUntil(lambda: not tab.busy, timeout=20000)


def test_a_broken_page_is_reported(tab, tmp_path) -> None:
    path = tmp_path / "page.json"
    path.write_text("[]")
    assert not tab.open_page(path)
    assert tab.status_kind == "error" and "not a Penwright page" in tab.status_text
