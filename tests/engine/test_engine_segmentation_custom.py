"""Bring your own ONNX model (engine.segmentation.custom) and `penwright eval segmentation`.

The ONNX model is built here with onnx.helper: a 1x1 convolution scoring background / red / green / blue,
then a 2x2 average pool (scores at half resolution, as many real networks give them).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from engine.segmentation.custom import CustomOnnxSource, install_custom, parse_sidecar
from engine.segmentation.errors import SegmentationModelError
from engine.segmentation.evaluate import Scores, confusion, pair_by_stem
from engine.segmentation.job import SegmentationJob, SegmentationRequest
from engine.segmentation.photo import SegmentationInputError

CLASSES = ["background", "red", "green", "blue"]
COLOURS = [[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]]


def tiny_onnx(path: Path, channels: int = 4) -> Path:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    weight = np.array([[0, 0, 0], [1, -0.5, -0.5], [-0.5, 1, -0.5], [-0.5, -0.5, 1]], np.float32)[:channels]
    bias = np.array([0.3, 0, 0, 0], np.float32)[:channels]
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["image", "w", "b"], ["full"], kernel_shape=[1, 1]),
            helper.make_node("AveragePool", ["full"], ["scores"], kernel_shape=[2, 2], strides=[2, 2]),
        ],
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", channels, "h", "w"])],
        [numpy_helper.from_array(weight.reshape(channels, 3, 1, 1), "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def sidecar(path: Path, **changes) -> Path:
    data = {
        "name": "tiny-rgb",
        "classes": CLASSES,
        "colours": COLOURS,
        "preprocessing": {"size": None, "max_side": 64, "mean": [0, 0, 0], "std": [1, 1, 1], "scale": 255},
        "output": {"kind": "logits"},
    }
    data.update(changes)
    path.write_text(json.dumps(data))
    return path


def scene(size=(48, 32)) -> tuple[Image.Image, np.ndarray]:
    """Grey background, a red block on the left, a blue block on the right; and its mask (255 on edges)."""
    w, h = size
    rgb = np.full((h, w, 3), 128, np.uint8)
    mask = np.zeros((h, w), np.uint8)
    rgb[4:20, 4:20] = (230, 20, 20)
    mask[4:20, 4:20] = 1
    rgb[8:28, 28:44] = (20, 20, 230)
    mask[8:28, 28:44] = 3
    mask[4, 4:20] = 255
    return Image.fromarray(rgb), mask


def test_sidecar_is_checked_field_by_field(tmp_path) -> None:
    good = json.loads(sidecar(tmp_path / "s.json").read_text())
    assert parse_sidecar(good, "m", "s.json").colours[1] == (255, 0, 0)
    assert parse_sidecar({"classes": ["a", "b"]}, "m", "s.json").name == "m"  # defaults: VOC colours, no norm
    for bad, message in [
        ({"classes": []}, "'classes'"),
        ({**good, "colours": [[0, 0, 0]]}, "'colours'"),
        ({**good, "preprocessing": {"size": [0, 5]}}, "preprocessing.size"),
        ({**good, "preprocessing": {"std": [1, 0, 1]}}, "std must be positive"),
        ({**good, "preprocessing": {"channel_order": "GRB"}}, "channel_order"),
        ({**good, "output": {"kind": "softmax"}}, "output.kind"),
        ({**good, "name": "../evil"}, "name"),
    ]:
        with pytest.raises(SegmentationModelError, match=message):
            parse_sidecar(bad, "m", "s.json")


def test_custom_model_runs_in_the_job(tmp_path) -> None:
    model = tiny_onnx(tmp_path / "tiny.onnx")
    sidecar(tmp_path / "tiny.json")
    image, mask = scene()
    source = CustomOnnxSource(model)
    assert source.logits(image).shape == (4, 16, 24)  # half resolution
    result = SegmentationJob(SegmentationRequest(image, model=str(model), crf="none")).run()
    assert result.model_name == "tiny-rgb" and result.backend == "onnx" and result.classes == tuple(CLASSES)
    known = mask != 255
    assert (result.labels[known] == mask[known]).mean() > 0.9
    refined = SegmentationJob(SegmentationRequest(image, model=str(model), iterations=3)).run()
    assert refined.labels.shape == (32, 48) and refined.palette[3] == (0, 0, 255)
    with pytest.raises(SegmentationModelError, match="runs with --backend onnx"):
        SegmentationJob(SegmentationRequest(image, model=str(model), backend="torch")).run()


def test_install_list_segment_and_errors(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PENWRIGHT_DATA_DIR", str(tmp_path / "data"))
    model = tiny_onnx(tmp_path / "net.onnx")
    side = sidecar(tmp_path / "description.json")
    assert main(["models", "install", str(model)]) == 2  # no net.json beside it
    assert "no sidecar file" in capsys.readouterr().err
    assert main(["models", "install", str(model), "--sidecar", str(side)]) == 0
    assert "installed tiny-rgb" in capsys.readouterr().out
    assert main(["models", "list"]) == 0
    assert "segmentation tiny-rgb: your ONNX model, 4 classes, installed" in capsys.readouterr().out
    image, _ = scene()
    image.save(tmp_path / "scene.png")
    out = tmp_path / "labels.png"
    assert main(["segment", str(tmp_path / "scene.png"), "-o", str(out), "--model", "tiny-rgb"]) == 0
    assert Image.open(out).getpalette()[9:12] == [0, 0, 255]
    wrong = tiny_onnx(tmp_path / "three.onnx", channels=3)
    with pytest.raises(SegmentationModelError, match="one channel per class"):
        install_custom(wrong, side)
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(SegmentationModelError, match="ONNX Runtime cannot load it"):
        install_custom(tmp_path / "junk.onnx", side)


def test_confusion_and_scores_by_hand() -> None:
    truth = np.array([[0, 0, 1, 255], [2, 2, 1, 1]], np.uint8)
    predicted = np.array([[0, 1, 1, 3], [2, 0, 1, 1]], np.uint8)
    matrix = confusion(truth, predicted, 4)
    assert matrix.sum() == 7 and matrix[0, 0] == 1 and matrix[2, 0] == 1
    scores = Scores(matrix, 1)
    # IoU: class 0: 1 / (2 + 2 - 1) = 1/3; class 1: 3 / (3 + 4 - 3) = 3/4; class 2: 1 / 2; class 3 absent
    assert scores.miou == pytest.approx((1 / 3 + 3 / 4 + 1 / 2) / 3)
    assert scores.pixel_accuracy == pytest.approx(5 / 7)
    with pytest.raises(SegmentationInputError, match="differ in size"):
        confusion(truth, predicted[:, :3], 4)


def test_eval_segmentation_prints_the_summary_line(tmp_path, monkeypatch, capsys) -> None:
    model = tiny_onnx(tmp_path / "tiny.onnx")
    sidecar(tmp_path / "tiny.json")
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for i, size in enumerate([(48, 32), (64, 40)]):
        image, mask = scene(size)
        image.save(images / f"img{i}.jpg", quality=95)
        Image.fromarray(mask, "L").convert("P").save(masks / f"img{i}.png")
    Image.new("RGB", (8, 8)).save(images / "unpaired.jpg")
    assert [stem for stem, _, _ in pair_by_stem(images, masks)] == ["img0", "img1"]
    argv = ["eval", "segmentation", "--images", str(images), "--masks", str(masks), "--model", str(model)]
    assert main([*argv, "--crf", "none"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    fields = dict(item.split("=") for item in last.split())
    assert list(fields) == ["miou", "pixel_acc", "images"] and fields["images"] == "2"
    assert float(fields["miou"]) > 80 and float(fields["pixel_acc"]) > 90
    assert main([*argv, "--masks", str(images)]) == 2
    assert "mask must be a palette or greyscale PNG" in capsys.readouterr().err
