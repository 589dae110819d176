"""The `penwright` command line: write, eval, train, models, help."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from iam_builder import skip2_keep

from engine.cli import main

SVG = "{http://www.w3.org/2000/svg}"
EVAL_LINE = re.compile(
    r"^nll_per_line=(?P<line>-?\d+\.\d+) nll_per_point=(?P<point>-?\d+\.\d+) lines=(?P<lines>\d+) "
    r"points=(?P<points>\d+) skipped=(?P<skipped>\d+) convention=skip2$"
)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["train"],
        ["train", "handwriting"],
        ["eval"],
        ["eval", "handwriting"],
        ["write"],
        ["models"],
    ],
    ids=lambda argv: "-".join(argv) or "top",
)
def test_help_for_every_command(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main([*argv, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: penwright") and " ".join(["penwright", *argv]) in out


def test_write_svg_with_the_model_and_seed(tiny_synthesis_model, tmp_path, capsys):
    pytest.importorskip("torch")
    from engine.handwriting.writer import HandwritingWriter

    out = tmp_path / "lines.svg"
    code = main(["write", "abc ab", "ca", "-o", str(out), "--model", str(tiny_synthesis_model), "--seed", "7"])
    assert code == 0
    assert f"wrote {out}" in capsys.readouterr().out
    root = ET.parse(out).getroot()
    assert root.tag == f"{SVG}svg"
    assert root.find(f"{SVG}title").text == "abc ab / ca"
    paths = root.iter(f"{SVG}path")
    # the same strokes the API writes with that seed and the default bias (0.75): one <path> per stroke
    lines = HandwritingWriter.load(tiny_synthesis_model).write(["abc ab", "ca"], bias=0.75, seed=7)
    strokes = [s for line in lines for s in line.strokes]
    assert len(list(paths)) == len(strokes) > 0
    for path in root.iter(f"{SVG}path"):
        coords = re.findall(r"(-?\d+\.\d),(-?\d+\.\d)", path.get("d"))
        assert path.get("d").startswith("M") and len(coords) >= 2
        assert np.isfinite(np.array(coords, float)).all()


def test_write_png(tiny_synthesis_model, tmp_path):
    pytest.importorskip("torch")
    from PIL import Image

    out = tmp_path / "line.png"
    assert main(["write", "ab c", "-o", str(out), "--model", str(tiny_synthesis_model), "--seed", "1"]) == 0
    with Image.open(out) as image:
        assert image.format == "PNG" and image.mode == "RGB"
        pixels = np.asarray(image)
    assert pixels.shape[0] > 10 and pixels.shape[1] > 10
    assert (pixels == 255).all(-1).mean() > 0.5  # mostly white paper
    assert (pixels.sum(-1) < 300).any()  # with dark ink


def test_unknown_characters_exit_2_and_name_them(tiny_synthesis_model, tmp_path, capsys):
    out = tmp_path / "never.svg"
    code = main(["write", "abz\u00e9", "-o", str(out), "--model", str(tiny_synthesis_model)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("penwright: error:")
    assert "'z'" in err and repr("\u00e9") in err and "'a'" not in err
    assert not out.exists()


def test_write_errors_exit_2(tiny_synthesis_model, tmp_path, capsys):
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(b"PK\x03\x04 not really a zip")
    assert main(["write", "ab", "-o", str(tmp_path / "a.svg"), "--model", str(damaged)]) == 2
    assert "not a readable Penwright model file" in capsys.readouterr().err
    assert main(["write", "ab", "-o", str(tmp_path / "a.txt"), "--model", str(tiny_synthesis_model)]) == 2
    assert "unknown output format" in capsys.readouterr().err


def test_eval_handwriting_prints_the_summary_line(small_iam, tiny_synthesis_model, capsys):
    torch = pytest.importorskip("torch")
    from engine.backends.torch_backend import build_network
    from engine.handwriting.checkpoint import load_model_file
    from engine.handwriting.model import mixture_nll
    from engine.handwriting.preprocessing import Normalizer

    code = main(["eval", "handwriting", "--data", str(small_iam.folder), "--model", str(tiny_synthesis_model)])
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    match = EVAL_LINE.match(last)
    assert match, last
    # testset_v holds a02-050: line 01 is evaluated, 02 is blacklisted, 03 has 'd' (not in the model's alphabet)
    assert int(match["lines"]) == 1 and int(match["skipped"]) == 1
    strokes = small_iam.strokes["a02-050-01"]
    expected_points = len(skip2_keep([len(s) for s in strokes])) - 1
    assert int(match["points"]) == expected_points
    # the NLL itself, computed here from the model file and the line's points
    model = load_model_file(tiny_synthesis_model)
    normalizer = Normalizer.from_dict(model.meta["normalizer"])
    keep = skip2_keep([len(s) for s in strokes])
    pts = small_iam.points["a02-050-01"][keep].astype(np.float64)
    offsets = np.column_stack([np.diff(pts[:, 0]), -np.diff(pts[:, 1]), pts[1:, 2]]).astype(np.float32)
    target = torch.from_numpy(normalizer.normalize(offsets))[None]
    inputs = torch.cat([torch.zeros(1, 1, 3), target[:, :-1]], 1)
    chars = torch.tensor([[model.meta["alphabet"]["characters"].index(c) for c in small_iam.text("a02-050-01")]])
    net = build_network(model)
    with torch.no_grad():
        y, _, _ = net(inputs, chars)
        nll = float(mixture_nll(y, target, torch.ones(1, len(offsets)), net.config.mixtures).sum())
    assert float(match["line"]) == pytest.approx(nll, abs=0.01)
    assert float(match["point"]) == pytest.approx(nll / expected_points, abs=1e-4)


def test_eval_with_another_split_and_limit(small_iam, tiny_synthesis_model, tmp_path, capsys):
    pytest.importorskip("torch")
    split = tmp_path / "forms.txt"
    split.write_text("a01-000\n")
    argv = ["eval", "handwriting", "--data", str(small_iam.folder), "--model", str(tiny_synthesis_model)]
    assert main([*argv, "--split", str(split)]) == 0
    match = EVAL_LINE.match(capsys.readouterr().out.strip().splitlines()[-1])
    # a01-000u-01, -02, a01-000x-01, -02 are evaluated; a01-000u-03 has '#'
    assert (int(match["lines"]), int(match["skipped"])) == (4, 1)
    assert main([*argv, "--split", str(split), "--limit", "2"]) == 0
    match = EVAL_LINE.match(capsys.readouterr().out.strip().splitlines()[-1])
    assert int(match["lines"]) + int(match["skipped"]) == 2


def test_eval_only_lines_with_given_characters(small_iam, tiny_synthesis_model, tmp_path, capsys):
    pytest.importorskip("torch")
    split = tmp_path / "forms.txt"
    split.write_text("a01-000\n")
    argv = ["eval", "handwriting", "--data", str(small_iam.folder), "--model", str(tiny_synthesis_model)]
    assert main([*argv, "--split", str(split), "--lines-with", " "]) == 0
    match = EVAL_LINE.match(capsys.readouterr().out.strip().splitlines()[-1])
    # with a space: "abc ab", "ca b", "cc a" (and "a # b", skipped for its '#'); not "bca"
    assert (int(match["lines"]), int(match["skipped"])) == (3, 1)


def test_eval_pair_lines_scores_each_second_line_given_the_first(small_iam, tiny_synthesis_model, tmp_path, capsys):
    pytest.importorskip("torch")
    from engine.handwriting.dataset import load_lines
    from engine.handwriting.line_pairs import join_lines
    from engine.handwriting.preprocessing import points_to_offsets

    split = tmp_path / "forms.txt"
    split.write_text("a01-000\n")
    argv = ["eval", "handwriting", "--data", str(small_iam.folder), "--model", str(tiny_synthesis_model)]
    argv += ["--split", str(split)]
    assert main([*argv, "--pair-lines"]) == 0
    pairs = EVAL_LINE.match(capsys.readouterr().out.strip().splitlines()[-1])
    # two forms of two usable lines each (a01-000u-03 has '#'): two pairs, their second lines scored
    assert (int(pairs["lines"]), int(pairs["skipped"])) == (2, 1)
    lines = {ln.line_id: ln for ln in load_lines(small_iam.folder)[0]}
    expected = 0
    for form in ("a01-000u", "a01-000x"):
        first, second = lines[f"{form}-01"], lines[f"{form}-02"]
        joined = join_lines(first, second)
        expected += len(points_to_offsets(joined.points, "skip2")) - len(
            points_to_offsets(joined.points[: len(first.points)], "skip2")
        )
    assert int(pairs["points"]) == expected
    assert np.isfinite(float(pairs["line"]))


def test_train_from_compact_data_and_resume(small_iam, tmp_path, capsys):
    pytest.importorskip("torch")
    compact = tmp_path / "data.npz"
    assert main(["train", "handwriting", "--data", str(small_iam.folder), "--save-compact-data", str(compact)]) == 0
    assert "5 training and 1 validation lines" in capsys.readouterr().out
    run = tmp_path / "run"
    tiny = ["--hidden", "8", "--layers", "2", "--mixtures", "2", "--window", "2", "--batch-size", "4"]
    common = ["--run-dir", str(run), "--device", "cpu", "--no-progress", "--threads", "1"]
    assert main(["train", "handwriting", "--compact-data", str(compact), *tiny, *common, "--steps", "3"]) == 0
    assert '"step": 3' in capsys.readouterr().out
    assert (run / "last.pt").exists() and (run / "best.npz").exists()
    resume = ["--resume", str(run / "last.pt"), "--steps", "2"]
    assert main(["train", "handwriting", "--compact-data", str(compact), *common, *resume]) == 0
    assert '"step": 5' in capsys.readouterr().out


def test_a_run_started_from_a_model_counts_that_models_steps(small_iam, tmp_path, capsys):
    pytest.importorskip("torch")
    from engine.handwriting.checkpoint import load_model_file

    tiny = ["--hidden", "8", "--layers", "2", "--mixtures", "2", "--window", "2", "--batch-size", "4"]
    common = ["--data", str(small_iam.folder), "--device", "cpu", "--no-progress", "--threads", "1"]
    first, second = tmp_path / "first", tmp_path / "second"
    assert main(["train", "handwriting", *tiny, *common, "--run-dir", str(first), "--steps", "3"]) == 0
    init = ["--init-from", str(first / "best.npz"), "--pair-lines", "--steps", "2"]
    assert main(["train", "handwriting", *common, "--run-dir", str(second), *init]) == 0
    resume = ["--resume", str(second / "last.pt"), "--pair-lines", "--steps", "1"]
    assert main(["train", "handwriting", *common, "--run-dir", str(second), *resume]) == 0
    capsys.readouterr()
    training = load_model_file(second / "best.npz").meta["training"]
    first_steps = load_model_file(first / "best.npz").meta["training"]["step"]
    assert training["earlier_steps"] == first_steps > 0 and training["step"] >= 1


def test_oversampling_pair_weight_style_augmentation_and_weight_noise_are_kept_on_resume(small_iam, tmp_path, capsys):
    pytest.importorskip("torch")
    import torch

    tiny = ["--hidden", "8", "--layers", "2", "--mixtures", "2", "--window", "2", "--batch-size", "2"]
    common = ["--data", str(small_iam.folder), "--device", "cpu", "--no-progress", "--threads", "1"]
    run = tmp_path / "run"
    start = ["--oversample-rare", "3", "--pair-lines", "--pair-context-weight", "0.25", "--style-augment", "0.5"]
    start += ["--weight-noise", "0.01", "--steps", "2"]
    assert main(["train", "handwriting", *tiny, *common, "--run-dir", str(run), *start]) == 0
    # no --oversample-rare, --pair-context-weight, --style-augment or --weight-noise: the checkpoint's
    resume = ["--resume", str(run / "last.pt"), "--pair-lines", "--steps", "1"]
    assert main(["train", "handwriting", *common, "--run-dir", str(run), *resume]) == 0
    capsys.readouterr()
    saved = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
    assert saved["settings"]["oversample_rare"] == 3 and saved["meta"]["training"]["oversample_rare"] == 3
    assert saved["settings"]["pair_context_weight"] == 0.25
    assert saved["settings"]["style_augment"] == 0.5 and saved["meta"]["training"]["style_augment"] == 0.5
    assert saved["settings"]["weight_noise"] == 0.01 and saved["meta"]["training"]["weight_noise"] == 0.01


def test_models_lists_both_kinds(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("synthesis") and "\nprediction" in out
