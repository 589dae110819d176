"""Page writers (SVG, PNG, InkML, G-code), the InkML reader, and `penwright write` to pages in every format."""

from __future__ import annotations

import io
import re
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from engine.cli import main
from engine.formats.gcode import PenCommands, gcode_program, write_gcode
from engine.formats.inkml import INKML_NS, InkmlError, read_inkml, write_inkml
from engine.formats.png import render_page, write_page_png, write_png
from engine.formats.svg import page_svg_document, write_page_svg, write_svg
from engine.handwriting.page import Page

SVG = "{http://www.w3.org/2000/svg}"
INK = f"{{{INKML_NS}}}"


def sample_page(width: float = 148.0, height: float = 210.0) -> Page:
    rng = np.random.default_rng(4)
    strokes = []
    for i in range(5):
        t = np.linspace(0, 1, 30 + 7 * i)
        x = 15 + 100 * t + i
        y = 25 + 12 * i + 2 * np.sin(9 * t) + rng.normal(0, 0.01, len(t))
        strokes.append(np.column_stack([x, y]))
    strokes.append(np.array([[40.0, 90.0], [40.0, 90.0], [40.0004, 90.0], [41.0, 91.0]]))  # repeated points
    return Page(width, height, strokes, ["first line", "second"], number=1)


# ---- SVG and PNG ----------------------------------------------------------------------------------------------


def test_page_svg_has_the_page_size_in_mm_and_one_path_per_stroke(tmp_path):
    page = sample_page()
    out = tmp_path / "page.svg"
    write_page_svg(out, page, stroke_width=0.5, title="a <title> & more")
    root = ET.parse(out).getroot()
    assert root.tag == f"{SVG}svg"
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == ("148mm", "210mm", "0 0 148 210")
    assert root.find(f"{SVG}title").text == "a <title> & more"
    group = root.find(f"{SVG}g")
    scale = float(re.fullmatch(r"scale\(([\d.]+)\)", group.get("transform"))[1])
    assert float(group.get("stroke-width")) * scale == pytest.approx(0.5)
    paths = list(root.iter(f"{SVG}path"))
    assert len(paths) == len(page.strokes)
    for path, stroke in zip(paths, page.strokes, strict=True):
        coords = np.array(re.findall(r"(-?[\d.]+),(-?[\d.]+)", path.get("d")), float) * scale
        assert coords.shape == stroke.shape and np.abs(coords - stroke).max() <= 0.006  # in mm
    assert page_svg_document(Page(100, 50)).count("<path") == 0


def test_page_png_size_follows_the_dpi_and_ink_lands_where_the_strokes_are(tmp_path):
    from PIL import Image

    page = sample_page()
    out = tmp_path / "page.png"
    write_page_png(out, page, dpi=100)
    with Image.open(out) as image:
        assert image.size == (round(148 / 25.4 * 100), round(210 / 25.4 * 100)) == (583, 827)
        assert image.info["dpi"] == pytest.approx((100, 100), abs=0.01)
        pixels = np.asarray(image.convert("L"))
    x, y = (page.strokes[0][15] * 100 / 25.4).round().astype(int)
    assert pixels[y, x] < 150  # ink on the stroke
    assert pixels[5, 5] == 255 and (pixels == 255).mean() > 0.9  # white paper elsewhere
    assert render_page(page, dpi=300).size == (round(148 / 25.4 * 300), round(210 / 25.4 * 300))
    with pytest.raises(ValueError, match="positive"):
        render_page(page, dpi=0)


def test_the_line_based_writers_still_work(tmp_path):
    lines = [[np.array([[0.0, 0.0], [10.0, 20.0], [30.0, 5.0]])], [np.array([[0.0, 0.0], [50.0, 10.0]])]]
    write_svg(tmp_path / "lines.svg", lines, title="x")
    assert len(list(ET.parse(tmp_path / "lines.svg").getroot().iter(f"{SVG}path"))) == 2
    write_png(tmp_path / "lines.png", lines)
    assert (tmp_path / "lines.png").stat().st_size > 0


# ---- InkML ----------------------------------------------------------------------------------------------------


def test_inkml_round_trip_and_declared_units(tmp_path):
    page = sample_page()
    out = tmp_path / "page.inkml"
    write_inkml(out, page, title="round trip")
    root = ET.parse(out).getroot()
    assert root.tag == f"{INK}ink"
    channels = root.findall(f".//{INK}traceFormat/{INK}channel")
    assert [(c.get("name"), c.get("units")) for c in channels] == [("X", "mm"), ("Y", "mm")]
    assert len(root.findall(f"{INK}trace")) == len(page.strokes)
    strokes = read_inkml(out)
    assert len(strokes) == len(page.strokes)
    for got, want in zip(strokes, page.strokes, strict=True):
        assert got.shape == want.shape and np.abs(got - want).max() <= 1e-3


def test_inkml_reader_converts_units_and_refuses_what_it_cannot_read(tmp_path):
    doc = (
        f'<ink xmlns="{INKML_NS}"><traceFormat><channel name="X" units="cm"/><channel name="Y" units="cm"/>'
        '<channel name="T"/></traceFormat><trace>1 2 0, 1.5 2.5 10,3 4 20</trace></ink>'
    )
    path = tmp_path / "cm.inkml"
    path.write_text(doc)
    (stroke,) = read_inkml(path)
    assert np.allclose(stroke, [[10, 20], [15, 25], [30, 40]])
    path.write_text(f"<ink xmlns=\"{INKML_NS}\"><trace>1 2, '1 1, '0 0</trace></ink>")
    with pytest.raises(InkmlError, match="difference encoding"):
        read_inkml(path)
    path.write_text("<svg/>")
    with pytest.raises(InkmlError, match="not InkML"):
        read_inkml(path)
    path.write_text("<ink")
    with pytest.raises(InkmlError, match="well-formed"):
        read_inkml(path)


# ---- G-code ---------------------------------------------------------------------------------------------------


def parse_gcode(program: str, pen: PenCommands) -> tuple[list[np.ndarray], list[str]]:
    """Replay a program: the strokes drawn with the pen down, and the order of pen events."""
    up, down = pen.lines("up"), pen.lines("down")
    position, pen_down, strokes, events, current = None, False, [], [], []
    for raw in program.splitlines():
        line = raw.split(";")[0].strip()
        if not line:
            continue
        if line in up[1:] or line in down[1:]:
            continue  # the rest of a several-line pen command
        if line == up[0]:
            if pen_down and current:
                strokes.append(np.array(current))
            pen_down, current = False, []
            events.append("up")
            continue
        if line == down[0]:
            pen_down, current = True, [position]
            events.append("down")
            continue
        words = dict((w[0], w[1:]) for w in line.split())
        if "X" in words:
            position = (float(words["X"]), float(words["Y"]))
            if pen_down:
                assert words["G"] == "1", "drawing moves are G1"
                current.append(position)
    assert not pen_down, "the program ends with the pen up"
    return strokes, events


@pytest.mark.parametrize(
    ("pen", "origin"),
    [(PenCommands(), "bottom-left"), (PenCommands.z_axis(), "top-left"), (PenCommands("M5\nM3 S30", "M3 S0"), None)],
)
def test_gcode_parses_back_to_the_strokes(tmp_path, pen, origin):
    page = sample_page()
    out = tmp_path / "page.gcode"
    kwargs = {"origin": origin} if origin else {}
    write_gcode(out, page, pen=pen, feed=1500, **kwargs)
    program = out.read_text()
    head = [line.split(";")[0].strip() for line in program.splitlines() if not line.startswith(";")]
    assert head[:2] == ["G21", "G90"]  # millimetres, absolute, before any move
    assert "F1500" in program
    strokes, events = parse_gcode(program, pen)
    assert events == ["up"] + ["down", "up"] * len(page.strokes)
    assert len(strokes) == len(page.strokes)
    for got, want in zip(strokes, page.strokes, strict=True):
        expected = want.copy()
        if origin != "top-left":
            expected[:, 1] = page.height - expected[:, 1]
        keep = np.r_[True, np.any(np.abs(np.diff(expected.round(3), axis=0)) > 0, axis=1)]
        expected = expected[keep]  # repeated points are sent once
        assert got.shape == expected.shape and np.abs(got - expected).max() <= 1e-3
        assert np.all(np.abs(np.diff(got, axis=0)).sum(1) > 0)
    xy = np.concatenate(strokes)
    assert (xy >= 0).all() and (xy[:, 0] <= page.width).all() and (xy[:, 1] <= page.height).all()
    if "Z" in pen.up:
        assert "G0 Z5" in program and "G1 Z0" in program


def test_gcode_options_are_checked():
    page = sample_page()
    with pytest.raises(ValueError, match="origin"):
        gcode_program(page, origin="centre")
    with pytest.raises(ValueError, match="feed"):
        gcode_program(page, feed=0)
    program = gcode_program(page, pen=PenCommands(dwell=0.2), travel_feed=6000)
    assert "G4 P0.2" in program and "G1 X15.000" in program and " F6000" in program


# ---- the command line -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".svg", ".png", ".inkml", ".gcode"])
def test_cli_writes_a_page_in_every_format(tiny_synthesis_model, tmp_path, capsys, suffix):
    pytest.importorskip("torch")
    out = tmp_path / f"page{suffix}"
    argv = ["write", "abc ab", "ca", "-o", str(out), "--model", str(tiny_synthesis_model), "--seed", "3"]
    argv += ["--page", "A5", "--letter-height", "4mm", "--margin", "15mm", "--smooth"]
    if suffix == ".gcode":
        argv += ["--pen-up", "G0 Z5", "--pen-down", "G1 Z0", "--feed", "1200", "--origin", "top-left"]
    assert main(argv) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    if suffix == ".svg":
        root = ET.parse(out).getroot()
        assert (root.get("width"), root.get("height")) == ("148mm", "210mm")
        assert len(list(root.iter(f"{SVG}path"))) > 0
    elif suffix == ".png":
        from PIL import Image

        with Image.open(out) as image:
            assert image.size == (round(148 / 25.4 * 150), round(210 / 25.4 * 150))
            assert (np.asarray(image.convert("L")) < 128).any()
    elif suffix == ".inkml":
        xy = np.concatenate(read_inkml(out))
        assert xy[:, 0].min() == pytest.approx(15, abs=0.01) and xy[:, 0].max() <= 148 - 15 + 1e-3
    else:
        program = out.read_text()
        strokes, events = parse_gcode(program, PenCommands.z_axis())
        assert "F1200" in program and "M3" not in program
        assert events == ["up"] + ["down", "up"] * len(strokes) and len(strokes) > 0
        xy = np.concatenate(strokes)
        assert (xy >= 0).all() and (xy <= [148, 210]).all()
        assert xy[:, 1].min() > 15 - 1e-3  # top-left origin: the first line sits below the top margin


def test_cli_reads_a_file_or_stdin_and_splits_pages(tiny_synthesis_model, tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    text = tmp_path / "text.txt"
    text.write_text("ab ca\nbc\n\ncab ab\nba\n")
    small = ["--page", "60x40mm", "--margin", "5mm", "--letter-height", "3mm", "--line-spacing", "9mm"]
    common = ["--model", str(tiny_synthesis_model), "--seed", "2", *small]
    out = tmp_path / "notes.inkml"
    assert main(["write", "--file", str(text), "-o", str(out), *common]) == 0
    captured = capsys.readouterr()
    # 30 mm between the margins holds 3 lines (9 mm for ascent and descent, then 9 mm apart): five slots, two pages
    pages = [tmp_path / "notes-1.inkml", tmp_path / "notes-2.inkml"]
    assert "took 2 pages" in captured.err and all(f"wrote {p}" in captured.out for p in pages)
    assert not out.exists() and all(p.exists() for p in pages)
    roots = [ET.parse(p).getroot() for p in pages]
    truths = [r.find(f"{INK}annotation[@type='truth']").text.split("\n") for r in roots]
    assert truths == [["ab ca", "bc", ""], ["cab ab", "ba"]]
    monkeypatch.setattr(sys, "stdin", io.StringIO("ab\nca"))
    piped = tmp_path / "piped.svg"
    assert main(["write", "-", "-o", str(piped), *common]) == 0
    assert ET.parse(piped).getroot().find(f"{SVG}title").text == "ab / ca"


def test_cli_page_errors_exit_2(tiny_synthesis_model, tmp_path, capsys):
    base = ["write", "ab", "--model", str(tiny_synthesis_model)]
    assert main([*base, "-o", str(tmp_path / "a.svg"), "--page", "B7"]) == 2
    assert "unknown page size" in capsys.readouterr().err
    assert main([*base, "-o", str(tmp_path / "a.svg"), "--page", "A5", "--margin", "80mm"]) == 2
    assert "leave no room" in capsys.readouterr().err
    assert main(["write", "-o", str(tmp_path / "a.svg"), "--model", str(tiny_synthesis_model)]) == 2
    assert "no text to write" in capsys.readouterr().err
    assert main([*base[:1], " \n ", *base[2:], "-o", str(tmp_path / "a.svg")]) == 2
    assert "no text to write" in capsys.readouterr().err
    assert not list(tmp_path.glob("a*"))
