"""Preset styles: made from lines the model wrote itself, listed read-only beside the user's styles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.handwriting.styles import (
    STYLE_SUFFIX,
    Style,
    StyleError,
    delete_style,
    list_presets,
    list_style_entries,
    load_preset,
    load_style,
    presets_dir,
    save_named_style,
)

REPO = Path(__file__).resolve().parents[2]
TEXT = "abc cab ab"  # the tiny model's alphabet is "abc "


@pytest.fixture(scope="module")
def presets(tiny_synthesis_model, tmp_path_factory) -> list[Path]:
    pytest.importorskip("torch")
    from engine.handwriting.presets import generate_presets

    folder = tmp_path_factory.mktemp("presets")
    return generate_presets(tiny_synthesis_model, folder, count=3, text=TEXT, backend="torch")


def test_presets_are_lines_the_model_wrote(presets, tiny_synthesis_model):
    from engine.handwriting.presets import PRESET_BIAS, PRESETS
    from engine.handwriting.writer import HandwritingWriter

    assert [p.name for p in presets] == [name + STYLE_SUFFIX for name, _ in PRESETS[:3]]
    assert len({p.name for p in presets}) == 3
    writer = HandwritingWriter.load(tiny_synthesis_model, backend="torch")
    for path in presets:
        style = load_style(path)
        source = style.source
        assert source["preset"] is True and source["model"] == tiny_synthesis_model.name
        assert len(source["model_sha256"]) == 64 and source["bias"] == PRESET_BIAS
        assert style.text == TEXT and style.name.startswith("Penwright ")
        # the strokes are exactly the model's line for the recorded seed (y flipped down), rounded by the file
        line = writer.write([TEXT], bias=source["bias"], seed=source["seed"])[0]
        expected = [s for s in line.strokes if len(s) > 1]
        assert len(style.strokes) == len(expected)
        for got, want in zip(style.strokes, expected, strict=True):
            np.testing.assert_allclose(got[:, 0], want[:, 0], rtol=1e-5, atol=1e-3)
            np.testing.assert_allclose(got[:, 1], -want[:, 1], rtol=1e-5, atol=1e-3)
        # usable as a style: the prime for the model's convention is cached in the file
        assert style.cached_prime["convention"] == writer.convention
        assert style.prime(writer.convention, writer.alphabet).offsets.shape[1] == 3


def test_the_same_model_makes_the_same_presets(presets, tiny_synthesis_model, tmp_path):
    from engine.handwriting.presets import generate_presets

    again = generate_presets(tiny_synthesis_model, tmp_path, count=3, text=TEXT, backend="torch")
    for a, b in zip(presets, again, strict=True):
        da, db = json.loads(a.read_text()), json.loads(b.read_text())
        da.pop("created"), db.pop("created")
        assert da == db


def test_presets_are_listed_read_only_beside_user_styles(presets, tmp_path):
    folder = presets[0].parent
    user = tmp_path / "user"
    user.mkdir()
    save_named_style(Style("Mine", TEXT, [np.array([[0.0, 0.0], [5.0, 3.0], [9.0, 0.0]])]), folder=user)
    entries = list_style_entries(user, folder)
    assert [(e.name, e.preset) for e in entries] == [
        ("Penwright neat", True),
        ("Penwright quick", True),
        ("Penwright round", True),
        ("Mine", False),
    ]
    assert list_presets(folder) == ["Penwright neat", "Penwright quick", "Penwright round"]
    assert load_preset("Penwright quick", folder).name == "Penwright quick"
    with pytest.raises(StyleError, match="no preset style"):
        load_preset("Nope", folder)
    with pytest.raises(StyleError):  # presets cannot be deleted through the user's styles
        delete_style("Penwright neat", user)
    assert (folder / ("Penwright neat" + STYLE_SUFFIX)).exists()


def test_no_presets_folder_lists_only_user_styles(tmp_path):
    assert list_presets(tmp_path / "none") == []
    (tmp_path / "user-empty").mkdir()
    assert list_style_entries(tmp_path / "user-empty", tmp_path / "none") == []
    assert presets_dir().name == "styles" and presets_dir().parent.name == "resources"


def test_the_command_line(tiny_synthesis_model, tmp_path, capsys):
    pytest.importorskip("torch")
    from engine.handwriting.presets import main

    code = main(["--model", str(tiny_synthesis_model), "-o", str(tmp_path), "--count", "1", "--text", TEXT])
    assert code == 0 and "wrote" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == ["Penwright neat" + STYLE_SUFFIX]
    assert main(["--model", str(tiny_synthesis_model), "-o", str(tmp_path), "--count", "99"]) == 2
    assert "--count" in capsys.readouterr().err


def test_shipped_presets_are_packaged():
    lines = (REPO / "pyproject.toml").read_text().splitlines()
    package_data = lines[lines.index("[tool.setuptools.package-data]") + 1]
    assert package_data.startswith("resources = [") and '"styles/*.json"' in package_data
