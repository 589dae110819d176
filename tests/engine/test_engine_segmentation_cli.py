"""`penwright models install|download|list` and `penwright segment`, through engine.cli.main.

Images are made here with Pillow; the checkpoints (needs_data) are read from ../shared/models/espnetv2
(or $PENWRIGHT_SHARED/models/espnetv2) at test time and never copied into the repo.
"""

from __future__ import annotations

import io
import os
import socket
import struct
import sys
import urllib.error
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from engine.segmentation import install
from engine.segmentation.manifest import VOC_CLASSES, SegmentationWeights
from engine.segmentation.photo import SegmentationInputError, load_photo, overlay_image, to_rgb

REPO = Path(__file__).resolve().parents[2]
S2, S05 = SegmentationWeights.ESPNETV2_S2_0_PASCAL_384, SegmentationWeights.ESPNETV2_S0_5_PASCAL_256
NO_DATA = "ESPNetv2 checkpoints not found: set PENWRIGHT_SHARED or place them at ../shared/models/espnetv2"


def shared_checkpoint(weights: SegmentationWeights) -> Path | None:
    """The published checkpoint in $PENWRIGHT_SHARED/models/espnetv2 or ../shared/models/espnetv2, if there."""
    env = os.environ.get("PENWRIGHT_SHARED")
    path = (Path(env) if env else REPO.parent / "shared") / "models" / "espnetv2" / weights.meta.checkpoint
    return path if path.is_file() else None


@pytest.fixture
def data_folder(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "data"
    monkeypatch.setenv("PENWRIGHT_DATA_DIR", str(folder))
    return folder


@pytest.fixture
def small_model() -> Path:
    path = shared_checkpoint(S05)
    if path is None:
        pytest.skip(NO_DATA)
    return path


def photo(size=(40, 30)) -> Image.Image:
    """A small synthetic photo: a gradient with a bright disc."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), np.full_like(x, 90)], -1)
    rgb[(x - w / 2) ** 2 + (y - h / 2) ** 2 < (min(w, h) / 4) ** 2] = (240, 200, 40)
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG that claims width x height but holds no pixels: opening it reads only the header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


# --- models ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["models"], ["models", "list"]])
def test_models_lists_handwriting_and_segmentation(argv, data_folder, capsys):
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "synthesis" in out and "prediction" in out
    assert f"segmentation {S2.meta.name}" in out and f"segmentation {S05.meta.name}" in out
    assert "not installed" in out


def test_models_install_refuses_an_unknown_file(tmp_path, data_folder, capsys):
    fake = tmp_path / "model.pth"
    fake.write_bytes(b"\0" * 100)
    assert main(["models", "install", str(fake)]) == 2
    assert "not a segmentation checkpoint Penwright knows" in capsys.readouterr().err


def test_models_install_then_list(small_model, data_folder, capsys):
    assert main(["models", "install", str(small_model)]) == 0
    assert f"installed {S05.meta.name}" in capsys.readouterr().out
    assert main(["models", "list"]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if S05.meta.name in ln][0]
    assert "installed [" in line and str(data_folder) in line


def test_models_download_offline(monkeypatch, data_folder, capsys):
    def offline(url, timeout):
        raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(install, "_urlopen", offline)
    monkeypatch.setattr(install, "_sleep", lambda seconds: None)
    assert main(["models", "download", S05.meta.name]) == 2
    err = capsys.readouterr().err
    assert "you seem to be offline" in err and "penwright models install FILE" in err
    assert main(["models", "download", "no-such-model"]) == 2
    assert "no segmentation model called 'no-such-model'" in capsys.readouterr().err


# --- segment: errors that need no model --------------------------------------------------------------------


def test_segment_without_an_installed_model(tmp_path, data_folder, capsys):
    photo().save(tmp_path / "p.png")
    assert main(["segment", str(tmp_path / "p.png"), "-o", str(tmp_path / "out.png")]) == 2
    err = capsys.readouterr().err
    assert "is not installed" in err and "penwright models download" in err
    assert main(["segment", str(tmp_path / "p.png"), "-o", str(tmp_path / "out.jpg")]) == 2
    assert "*.png" in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()


def test_segment_without_torch_checks_the_checkpoint(tmp_path, data_folder, monkeypatch, capsys):
    photo().save(tmp_path / "p.png")
    checkpoint = install.segmentation_dir() / S2.meta.checkpoint
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"placeholder")  # present but not the checkpoint: ONNX Runtime path refuses it
    monkeypatch.setitem(sys.modules, "torch", None)
    assert main(["segment", str(tmp_path / "p.png"), "-o", str(tmp_path / "out.png")]) == 2
    assert "is not the espnetv2-s2.0-pascal-384 checkpoint or is damaged" in capsys.readouterr().err


def _truncated_jpeg(path: Path) -> None:
    buffer = io.BytesIO()
    photo((200, 150)).save(buffer, "JPEG", quality=90)
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_truncated_jpeg, "damaged or truncated"),
        (lambda p: p.write_text("not an image"), "not an image file"),
        (lambda p: png_header_only(p, 12_000, 10_000), "too large to segment"),  # above our 100 MP limit
        (lambda p: png_header_only(p, 30_000, 30_000), "too large to segment"),  # a Pillow decompression bomb
        (lambda p: None, "no such file"),
    ],
    ids=["truncated-jpeg", "text", "huge", "bomb", "missing"],
)
def test_segment_bad_images_give_clear_errors(make, message, tmp_path, data_folder, capsys):
    image = tmp_path / "image.jpg"
    make(image)
    with pytest.raises(SegmentationInputError, match=message):
        load_photo(image)
    assert main(["segment", str(image), "-o", str(tmp_path / "out.png")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()


# --- image conversion --------------------------------------------------------------------------------------


def test_to_rgb_scales_16_bit_and_flattens_alpha():
    grey16 = Image.fromarray(np.array([[0, 1000, 65535]], np.uint16))
    assert grey16.mode == "I;16"
    assert np.asarray(to_rgb(grey16))[0, :, 0].tolist() == [0, 4, 255]  # not clipped to 255
    rgba = Image.new("RGBA", (2, 1), (10, 20, 30, 0))
    rgba.putpixel((1, 0), (10, 20, 30, 255))
    assert np.asarray(to_rgb(rgba)).tolist() == [[[255, 255, 255], [10, 20, 30]]]
    assert to_rgb(Image.new("L", (3, 2), 7)).mode == "RGB"
    assert np.asarray(to_rgb(Image.new("F", (1, 1), 0.5)))[0, 0].tolist() == [128] * 3


def test_overlay_leaves_background_alone():
    image = Image.new("RGB", (2, 1), (100, 100, 100))
    labels = np.array([[0, 15]], np.uint8)
    out = np.asarray(overlay_image(image, labels, ((0, 0, 0),) * 15 + ((200, 0, 0),), opacity=0.5))
    assert out.tolist() == [[[100, 100, 100], [150, 50, 50]]]


# --- segment with a real checkpoint ------------------------------------------------------------------------


def _odd_image(kind: str, path: Path) -> tuple[int, int]:
    base = photo()
    if kind == "rgb":
        base.save(path)
    elif kind == "1x1":
        Image.new("RGB", (1, 1), (200, 30, 30)).save(path)
        return 1, 1
    elif kind == "grey":
        base.convert("L").save(path)
    elif kind == "rgba":
        base.convert("RGBA").save(path)
    elif kind == "grey16":
        Image.fromarray(np.asarray(base.convert("L"), np.uint16) * 257).save(path)
    elif kind == "palette":
        base.convert("P").save(path)
    return base.size


@pytest.mark.needs_data
@pytest.mark.parametrize("kind", ["rgb", "1x1", "grey", "rgba", "grey16", "palette"])
def test_segment_writes_class_ids_and_overlay(kind, small_model, tmp_path, data_folder, capsys):
    image, out, overlay = tmp_path / "in.png", tmp_path / "labels.png", tmp_path / "overlay.jpg"
    size = _odd_image(kind, image)
    argv = ["segment", str(image), "-o", str(out), "--model", str(small_model), "--iterations", "2", "--overlay"]
    assert main([*argv, str(overlay)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    labels = Image.open(out)
    assert labels.mode == "P" and labels.size == size
    assert int(np.asarray(labels).max()) < len(VOC_CLASSES)
    assert labels.getpalette()[15 * 3 : 16 * 3] == [192, 128, 128]  # VOC colour of "person"
    with Image.open(overlay) as shown:
        assert shown.mode == "RGB" and shown.size == size
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # atomic: no temp files


@pytest.mark.needs_data
def test_segment_installed_model_with_and_without_crf(small_model, tmp_path, data_folder):
    install.install_from_file(small_model)
    photo((64, 48)).save(tmp_path / "p.jpg")
    for flags in (["--crf", "default"], ["--no-crf"], ["--crf", "none", "--backend", "onnx"]):
        out = tmp_path / f"out{'-'.join(flags)}.png"
        assert main(["segment", str(tmp_path / "p.jpg"), "-o", str(out), "--model", S05.meta.name, *flags]) == 0
        assert Image.open(out).size == (64, 48)


@pytest.mark.needs_data
def test_segment_folder_to_folder_with_overlays(small_model, tmp_path, data_folder, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    photo((40, 30)).save(folder / "a.png")
    photo((30, 40)).save(folder / "b.jpg")
    out = tmp_path / "out"
    argv = ["segment", str(folder), "-o", str(out), "--model", str(small_model), "--iterations", "1", "--overlay"]
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a-overlay.jpg", "a.png", "b-overlay.jpg", "b.png"]
    assert Image.open(out / "b.png").size == (30, 40)


@pytest.mark.needs_data
def test_eval_segmentation_on_voc_val(small_model, data_folder, capsys):
    import re

    env = os.environ.get("PENWRIGHT_SHARED")
    voc = (Path(env) if env else REPO.parent / "shared") / "data" / "segmentation" / "voc2012-val"
    if not (voc / "images").is_dir():
        pytest.skip("voc2012-val not found: set PENWRIGHT_SHARED or place it at ../shared/data/segmentation")
    argv = ["eval", "segmentation", "--images", str(voc / "images"), "--masks", str(voc / "masks")]
    assert main([*argv, "--model", str(small_model), "--crf", "none", "--backend", "onnx"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    match = re.fullmatch(r"miou=(\d+\.\d\d) pixel_acc=(\d+\.\d\d) images=(\d+)", last)
    assert match and int(match.group(3)) == 7 and 10 < float(match.group(1)) < float(match.group(2)) <= 100
