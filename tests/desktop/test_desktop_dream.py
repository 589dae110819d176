"""Dream in the studio: a tiny text model (random weights, made in the test) writes text that appears as it is
sampled, the handwriting model then writes it; what it cannot write is dropped with a notice; settings choose
the text model and temperature."""

from __future__ import annotations

from desktop import settings
from desktop.settings import SettingsDialog


def dream_and_wait(qtbot, tab, monkeypatch, model) -> tuple[list[str], list[str], list[object]]:
    """Run Dream; returns the sampled characters, the text box's contents as they changed, the write progress."""
    sampled, shown, progress = [], [], []
    stream = type(tab)._dream_char  # the method itself: a second Dream must not call an earlier spy

    def spy(char: str) -> None:
        sampled.append(char)
        stream(tab, char)
        shown.append(tab.text_edit.toPlainText())

    monkeypatch.setattr(tab, "_dream_char", spy)
    tab.job_progress.connect(progress.append)
    tab.text_model_path = model
    tab.dream()
    qtbot.waitUntil(lambda: not tab.busy, timeout=30000)
    return sampled, shown, progress


def test_dream_streams_the_text_then_writes_it(qtbot, tab, monkeypatch, tiny_text_model_file) -> None:
    tab.text_edit.setPlainText("ab")
    sampled, shown, progress = dream_and_wait(qtbot, tab, monkeypatch, tiny_text_model_file)
    assert len(sampled) >= 24 and len(shown) == len(sampled)
    assert shown[0].startswith("ab ") and len(shown[-1]) > len(shown[0])  # the text grew as it was sampled
    assert tab.result is not None, tab.status_text
    assert progress  # the handwriting streamed too
    written = " ".join(tab.result.texts)
    assert written.startswith("ab") and set(written) <= set("abc ")
    dropped = sorted({c for c in sampled if c in ".X"})
    if dropped:
        assert tab.status_kind == "notice" and "left out characters" in tab.status_text
        assert all(repr(c) in tab.status_text for c in dropped)
    assert tab.texts() == tab.result.texts  # the box holds what was written, one line per handwritten line


def test_the_same_seed_dreams_the_same_text(tiny_text_model_file) -> None:
    from desktop.dream import TextModelCache, dream_text_job
    from engine.handwriting.alphabet import Alphabet

    def run(seed: int) -> tuple[str, list[str]]:
        job = dream_text_job(TextModelCache(), tiny_text_model_file, "", 0.8, seed, Alphabet("abc "))
        chars = []
        try:
            while True:
                chars.append(next(job))
        except StopIteration as stop:
            return "".join(chars), stop.value.lines

    assert run(3) == run(3) and run(3) != run(4)


def test_a_missing_text_model_is_explained(qtbot, tab, tmp_path) -> None:
    tab.text_model_path = tmp_path / "text-missing.npz"
    tab.dream()
    qtbot.waitUntil(lambda: not tab.busy, timeout=20000)
    assert tab.status_kind == "error" and "No text model found" in tab.status_text
    assert tab.write_button.isEnabled() and tab.dream_button.isEnabled()


def test_settings_choose_the_text_model_and_temperature(qtbot) -> None:
    assert settings.text_model() == "shakespeare" and settings.temperature() == settings.DEFAULT_TEMPERATURE
    dialog = SettingsDialog()
    qtbot.addWidget(dialog)
    dialog.text_model_box.setCurrentIndex(dialog.text_model_box.findData("iam"))
    dialog.temperature_spin.setValue(1.3)
    dialog.accept()
    assert settings.text_model() == "iam" and settings.temperature() == 1.3
    settings.write("dream/model", "klingon")
    settings.write("dream/temperature", 40)
    assert settings.text_model() == "shakespeare" and settings.temperature() == 2.0
