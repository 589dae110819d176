"""The sample-sheet command (the model card's pictures), primed and unprimed."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")

from engine.handwriting.sample_sheet import main  # noqa: E402
from engine.handwriting.styles import Style, save_style  # noqa: E402
from engine.handwriting.writer import HandwritingWriter  # noqa: E402


@pytest.mark.parametrize("primed", [False, True])
def test_the_sample_sheet_command_writes_a_sheet(tiny_synthesis_model, tmp_path, capsys, primed):
    args = ["--model", str(tiny_synthesis_model), "--biases", "0.5", "1", "--seeds", "1", "--sentences", "ab c", "ca"]
    if primed:  # a style in the tiny network's own hand (y down, as a pen gives it)
        line = HandwritingWriter.load(tiny_synthesis_model).write(["abc ab"], bias=1.0, seed=1)[0]
        style_file = tmp_path / "tiny.penwright-style.json"
        save_style(style_file, Style("tiny", "abc ab", [np.column_stack([s[:, 0], -s[:, 1]]) for s in line.strokes]))
        args += ["--style", str(style_file), "--match-style"]
    out = tmp_path / "sheet.png"
    assert main([*args, "-o", str(out)]) == 0
    assert "of 4 lines ended by the window" in capsys.readouterr().out
    with Image.open(out) as sheet:
        assert sheet.width > 20 and sheet.height > 4 * 14  # four labelled rows
