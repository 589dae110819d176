"""`penwright write`: backend and device reporting, --style (style files and InkML), reproducible SVG."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from engine.cli import main

SVG = "{http://www.w3.org/2000/svg}"
STYLE_TEXT = "abc ab ca"


def wavy_strokes(text: str, height: float = 4.0) -> list[np.ndarray]:
    """Pen strokes (mm, y down) that look enough like cursive writing of ``text``: one loop per character."""
    strokes = []
    x0 = 0.0
    for word in text.split():
        t = np.linspace(0, 2 * np.pi * len(word), 24 * len(word))
        x = x0 + t / (2 * np.pi) * height * 0.9 + 0.4 * height * np.cos(t)
        y = 10.0 - height / 2 * (1 - np.cos(t))
        strokes.append(np.column_stack([x, y]))
        x0 = x.max() + height
    return strokes


def run_write(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["write", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def write_args(tiny_synthesis_model, tmp_path):
    def args(name: str, *extra: str) -> list[str]:
        return ["abc ab", "-o", str(tmp_path / name), "--model", str(tiny_synthesis_model), "--seed", "3", *extra]

    return args


# ----- backend and device -------------------------------------------------------------------------------------
def test_write_says_which_backend_and_device_it_used(write_args, capsys, tmp_path):
    pytest.importorskip("torch")
    code, out, err = run_write(capsys, *write_args("a.svg", "--device", "cpu", "--backend", "torch"))
    assert code == 0 and "wrote" in out
    assert re.search(r"^using PyTorch \d+\.\d+[^,]*, cpu$", err, re.M), err


def test_color_is_an_alias_of_colour(write_args, capsys, tmp_path):
    pytest.importorskip("torch")
    assert run_write(capsys, *write_args("c.svg", "--color", "#ff0000"))[0] == 0
    group = ET.parse(tmp_path / "c.svg").getroot().find(f"{SVG}g")
    assert group.get("stroke") == "#ff0000"


def test_the_device_choice_is_checked(write_args, capsys):
    with pytest.raises(SystemExit) as info:
        main(["write", *write_args("d.svg", "--device", "tpu")])
    assert info.value.code == 2


def test_auto_picks_cuda_then_mps_then_cpu(monkeypatch):
    torch = pytest.importorskip("torch")
    from engine.backends.torch_backend import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cpu") == "cpu"


def test_a_device_that_fails_falls_back_to_the_cpu_with_a_notice(tiny_synthesis_model, monkeypatch):
    pytest.importorskip("torch")
    from engine.backends import torch_backend
    from engine.handwriting.writer import HandwritingWriter

    real = torch_backend.build_network

    def failing(model, device="cpu"):
        if device != "cpu":
            raise RuntimeError("no such device here")
        return real(model, device)

    monkeypatch.setattr(torch_backend, "build_network", failing)
    with pytest.warns(RuntimeWarning, match="using the CPU"):
        writer = HandwritingWriter.load(tiny_synthesis_model, backend="torch", device="cuda")
    assert writer.stepper.device == "cpu"
    assert writer.backend_description.endswith(", cpu")
    assert len(writer.notices) == 1 and "no such device here" in writer.notices[0]
    assert writer.write(["ab"], seed=1)[0].offsets.shape[0] > 0


def test_a_cpu_writer_has_no_notices(tiny_synthesis_model):
    pytest.importorskip("torch")
    from engine.handwriting.writer import HandwritingWriter

    writer = HandwritingWriter.load(tiny_synthesis_model, backend="torch", device="cpu")
    assert writer.notices == [] and writer.backend_description.startswith("PyTorch ")


# ----- --style -------------------------------------------------------------------------------------------------
@pytest.fixture
def style_file(tmp_path):
    from engine.handwriting.styles import Style, save_style

    path = tmp_path / "mine.penwright-style.json"
    save_style(path, Style("Mine", STYLE_TEXT, wavy_strokes(STYLE_TEXT)))
    return path


def inkml_file(path, text: str | None):
    from engine.formats.inkml import write_inkml
    from engine.handwriting.page import Page

    write_inkml(path, Page(100.0, 30.0, wavy_strokes(STYLE_TEXT), [text] if text else []))
    if text is None:  # no transcription at all
        path.write_text(re.sub(r'<annotation type="truth">.*?</annotation>\n', "", path.read_text()))
    return path


def path_count(svg) -> int:
    return len(list(ET.parse(svg).getroot().iter(f"{SVG}path")))


def test_style_file_primes_the_writing(write_args, style_file, tiny_synthesis_model, capsys, tmp_path):
    pytest.importorskip("torch")
    from engine.handwriting.page import PageGeometry, write_pages
    from engine.handwriting.styles import load_style
    from engine.handwriting.writer import HandwritingWriter

    code, _, err = run_write(capsys, *write_args("styled.svg", "--style", str(style_file)))
    assert code == 0, err
    writer = HandwritingWriter.load(tiny_synthesis_model)
    prime = load_style(style_file).prime(writer.convention, writer.alphabet)
    pages, lines = write_pages(writer, "abc ab", PageGeometry.from_options(), 0.75, 3, prime=prime, match_style=True)
    assert lines[0].primed
    assert path_count(tmp_path / "styled.svg") == sum(len(p.strokes) for p in pages)
    assert run_write(capsys, *write_args("plain.svg"))[0] == 0
    assert (tmp_path / "plain.svg").read_bytes() != (tmp_path / "styled.svg").read_bytes()


@pytest.mark.parametrize("flag, matched", [((), True), (("--no-match-style",), False), (("--match-style",), True)])
def test_a_style_is_matched_unless_asked_not_to(write_args, style_file, capsys, monkeypatch, flag, matched):
    pytest.importorskip("torch")
    from engine.handwriting import page

    seen = []
    real = page.write_pages
    monkeypatch.setattr(page, "write_pages", lambda *a, **k: seen.append(k["match_style"]) or real(*a, **k))
    code, _, err = run_write(capsys, *write_args("x.svg", "--style", str(style_file), *flag))
    assert code == 0, err
    assert seen == [matched]


def test_inkml_style_with_its_transcription(write_args, capsys, tmp_path):
    pytest.importorskip("torch")
    ink = inkml_file(tmp_path / "ink.inkml", STYLE_TEXT)
    code, out, err = run_write(capsys, *write_args("ink.svg", "--style", str(ink)))
    assert code == 0, err
    ET.parse(tmp_path / "ink.svg")  # a page was written (the tiny model may stop a primed line at once)


def test_inkml_style_without_transcription_needs_style_text(write_args, capsys, tmp_path):
    pytest.importorskip("torch")
    ink = inkml_file(tmp_path / "bare.inkml", None)
    code, out, err = run_write(capsys, *write_args("bare.svg", "--style", str(ink)))
    assert code == 2 and "--style-text" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bare.svg").exists()
    code, out, err = run_write(capsys, *write_args("bare.svg", "--style", str(ink), "--style-text", STYLE_TEXT))
    assert code == 0, err
    assert (tmp_path / "bare.svg").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "does not exist"),
        ("{not json", "not valid JSON"),
        ('{"format": "other"}', "not a Penwright style file"),
        ("<ink xmlns='http://www.w3.org/2003/InkML'><trace>1 2, x y</trace></ink>", "not a number"),
        ("<svg/>", "not InkML"),
        ("plain text", "neither a Penwright style file"),
    ],
    ids=["missing", "bad-json", "not-a-style", "bad-trace", "not-inkml", "unknown"],
)
def test_bad_style_files_are_one_clear_line(write_args, capsys, tmp_path, content, message):
    suffix = ".penwright-style.json" if content and content.startswith("{") else ".inkml"
    if content == "plain text":
        suffix = ".txt"
    path = tmp_path / f"style{suffix}"
    if content is not None:
        path.write_text(content)
    code, out, err = run_write(capsys, *write_args("x.svg", "--style", str(path)))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_a_style_whose_text_does_not_fit_the_ink_is_refused(write_args, capsys, tmp_path):
    pytest.importorskip("torch")
    ink = inkml_file(tmp_path / "short.inkml", None)
    code, out, err = run_write(capsys, *write_args("s.svg", "--style", str(ink), "--style-text", "a"))
    assert code == 2 and "too short for the ink" in err and len(err.strip().splitlines()) == 1


def test_style_text_is_refused_with_a_style_file(write_args, style_file, capsys):
    code, out, err = run_write(capsys, *write_args("t.svg", "--style", str(style_file), "--style-text", "ab"))
    assert code == 2 and "--style-text is for InkML" in err


# ----- reproducible SVG ----------------------------------------------------------------------------------------
def test_the_same_seed_writes_the_same_svg_bytes(write_args, capsys, tmp_path):
    pytest.importorskip("torch")
    assert run_write(capsys, *write_args("one.svg"))[0] == 0
    assert run_write(capsys, *write_args("two.svg"))[0] == 0
    one, two = (tmp_path / "one.svg").read_bytes(), (tmp_path / "two.svg").read_bytes()
    assert one == two
    numbers = re.findall(rb"-?\d+\.(\d+)", one)
    assert numbers and all(len(decimals) <= 2 for decimals in numbers)
    assert not re.search(rb"20\d\d-\d\d-\d\d", one)  # no timestamps


def test_a_preset_style_by_name(capsys, tmp_path):
    """--style preset:NAME primes with a style that ships with the app (the shipped model writes it)."""
    argv = ["the fox", "--seed", "2", "--bias", "1"]
    code, _, err = run_write(capsys, *argv, "-o", str(tmp_path / "neat.svg"), "--style", "preset:Penwright neat")
    assert code == 0, err
    assert run_write(capsys, *argv, "-o", str(tmp_path / "plain.svg"))[0] == 0
    assert (tmp_path / "neat.svg").read_bytes() != (tmp_path / "plain.svg").read_bytes()
    code, _, err = run_write(capsys, *argv, "-o", str(tmp_path / "x.svg"), "--style", "preset:Nobody")
    assert code == 2 and "'preset:Penwright neat'" in err and len(err.strip().splitlines()) == 1
