"""Bring your own segmentation model: any ONNX model that outputs per-pixel class scores, plus a sidecar.

The sidecar (`MODEL.json` beside `MODEL.onnx`, or given with `--sidecar`) says what the model needs and
what its outputs mean, since an ONNX file does not::

    {
      "name": "lraspp-voc",                      # optional; default: the .onnx file's stem
      "classes": ["background", "aeroplane", ...],  # one per output channel
      "colours": [[0, 0, 0], [128, 0, 0], ...],   # optional; default: the VOC palette
      "preprocessing": {
        "size": [520, 520],                      # W, H the image is stretched to; or null: keep the photo's
        "max_side": 520,                         #   aspect, longest side at most this (null size only)
        "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
        "scale": 255,                            # pixel values are divided by this first
        "channel_order": "RGB"                   # or "BGR"
      },
      "output": {"name": null, "kind": "logits"}  # which output (null: the first); "logits" or "probabilities"
    }

Input: one N x 3 x H x W float32 tensor. Output: N x C x h x w scores (any h x w: the CRF resizes them).
`penwright models install MODEL.onnx [--sidecar FILE]` checks both (the model is loaded and run once on a
small image) and copies them to <data>/models/segmentation/custom/NAME.onnx and NAME.json.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from engine.atomic import atomic_write_bytes, atomic_write_text
from engine.segmentation.errors import SegmentationModelError
from engine.segmentation.manifest import voc_palette
from engine.segmentation.ort_session import open_session
from engine.segmentation.sources import ModelRef

CUSTOM_FOLDER = "custom"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Sidecar:
    """A user's model description, checked."""

    name: str
    classes: tuple[str, ...]
    colours: tuple[tuple[int, int, int], ...]
    size: tuple[int, int] | None
    max_side: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: float
    channel_order: str
    output_name: str | None
    output_kind: str

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "classes": list(self.classes),
            "colours": [list(c) for c in self.colours],
            "preprocessing": {
                "size": list(self.size) if self.size else None,
                "max_side": self.max_side,
                "mean": list(self.mean),
                "std": list(self.std),
                "scale": self.scale,
                "channel_order": self.channel_order,
            },
            "output": {"name": self.output_name, "kind": self.output_kind},
        }


def _byte(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _triple(value, what: str, source: str) -> tuple[float, float, float]:
    if not (isinstance(value, list) and len(value) == 3 and all(isinstance(v, int | float) for v in value)):
        raise SegmentationModelError(f"{source}: preprocessing.{what} must be a list of 3 numbers")
    return tuple(float(v) for v in value)  # type: ignore[return-value]


def parse_sidecar(data: dict, default_name: str, source: str) -> Sidecar:
    """A Sidecar from parsed JSON; SegmentationModelError naming the first field that is wrong."""
    if not isinstance(data, dict):
        raise SegmentationModelError(f"{source}: expected a JSON object")
    name = data.get("name") or default_name
    if not isinstance(name, str) or not NAME.match(name):
        raise SegmentationModelError(f"{source}: name {name!r} must be 1-64 letters, digits, '.', '_' or '-'")
    classes = data.get("classes")
    if not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)) or len(classes) > 255:
        raise SegmentationModelError(f"{source}: 'classes' must be a list of 1-255 class names")
    colours = data.get("colours", data.get("colors"))
    if colours is None:
        colours = voc_palette(len(classes))
    elif not (
        isinstance(colours, list)
        and len(colours) == len(classes)
        and all(isinstance(c, list) and len(c) == 3 and all(_byte(v) for v in c) for c in colours)
    ):
        raise SegmentationModelError(f"{source}: 'colours' must hold one [r, g, b] (0-255) per class")
    prep = data.get("preprocessing", {})
    if not isinstance(prep, dict):
        raise SegmentationModelError(f"{source}: 'preprocessing' must be an object")
    size = prep.get("size")
    if size is not None and not (isinstance(size, list) and len(size) == 2 and all(_positive_int(v) for v in size)):
        raise SegmentationModelError(f"{source}: preprocessing.size must be [width, height] or null")
    max_side = prep.get("max_side", 520)
    if not isinstance(max_side, int) or max_side < 8:
        raise SegmentationModelError(f"{source}: preprocessing.max_side must be a whole number of at least 8")
    std = _triple(prep.get("std", [1.0, 1.0, 1.0]), "std", source)
    if min(std) <= 0:
        raise SegmentationModelError(f"{source}: preprocessing.std must be positive")
    scale = prep.get("scale", 255)
    if not isinstance(scale, int | float) or scale <= 0:
        raise SegmentationModelError(f"{source}: preprocessing.scale must be a positive number")
    order = prep.get("channel_order", "RGB")
    if order not in ("RGB", "BGR"):
        raise SegmentationModelError(f"{source}: preprocessing.channel_order must be 'RGB' or 'BGR'")
    output = data.get("output", {})
    kind = output.get("kind", "logits") if isinstance(output, dict) else None
    if kind not in ("logits", "probabilities"):
        raise SegmentationModelError(f"{source}: output.kind must be 'logits' or 'probabilities'")
    return Sidecar(
        name=name,
        classes=tuple(classes),
        colours=tuple(tuple(int(v) for v in c) for c in colours),  # type: ignore[misc]
        size=tuple(size) if size else None,  # type: ignore[arg-type]
        max_side=max_side,
        mean=_triple(prep.get("mean", [0.0, 0.0, 0.0]), "mean", source),
        std=std,
        scale=float(scale),
        channel_order=order,
        output_name=output.get("name"),
        output_kind=kind,
    )


def read_sidecar(path: str | Path, default_name: str) -> Sidecar:
    path = Path(path)
    if not path.is_file():
        raise SegmentationModelError(
            f"{path}: no sidecar file; an ONNX model needs one describing its classes and preprocessing "
            "(see `penwright models install --help`)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SegmentationModelError(f"{path}: not valid JSON ({exc})") from None
    return parse_sidecar(data, default_name, str(path))


def sidecar_path(onnx_path: Path) -> Path:
    return onnx_path.with_suffix(".json")


class CustomOnnxSource:
    """A user's ONNX model with its sidecar, run in ONNX Runtime."""

    backend = "onnx"

    def __init__(self, path: str | Path, sidecar: Sidecar | None = None) -> None:
        path = Path(path)
        if not path.is_file():
            raise SegmentationModelError(f"{path}: no such ONNX model")
        self.path = path
        self.sidecar = sidecar or read_sidecar(sidecar_path(path), path.stem)
        self.name = self.sidecar.name
        self.classes = self.sidecar.classes
        self.palette = self.sidecar.colours
        self.session = open_session(path.read_bytes(), str(path))
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            shapes = [i.shape for i in inputs]
            raise SegmentationModelError(f"{path}: expected one N x 3 x H x W image input, found inputs {shapes}")
        self.input_name = inputs[0].name
        outputs = [o.name for o in self.session.get_outputs()]
        wanted = self.sidecar.output_name
        if wanted is not None and wanted not in outputs:
            raise SegmentationModelError(f"{path}: the sidecar names output {wanted!r}, the model has {outputs}")
        self.output_name = wanted or outputs[0]

    def input_size(self, photo_size: tuple[int, int]) -> tuple[int, int]:
        if self.sidecar.size is not None:
            return self.sidecar.size
        w, h = photo_size
        scale = min(1.0, self.sidecar.max_side / max(w, h))
        return max(1, math.floor(w * scale + 0.5)), max(1, math.floor(h * scale + 0.5))

    def preprocess(self, photo: Image.Image) -> np.ndarray:
        s = self.sidecar
        rgb = photo.convert("RGB")
        size = self.input_size(rgb.size)
        if rgb.size != size:
            rgb = rgb.resize(size, Image.Resampling.BILINEAR)
        x = np.asarray(rgb, np.float32) / np.float32(s.scale)
        x = (x - np.asarray(s.mean, np.float32)) / np.asarray(s.std, np.float32)
        if s.channel_order == "BGR":
            x = x[..., ::-1]
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None], np.float32)

    def logits(self, photo: Image.Image) -> np.ndarray:
        try:
            (scores,) = self.session.run([self.output_name], {self.input_name: self.preprocess(photo)})
        except Exception as exc:
            raise SegmentationModelError(f"{self.path}: the model failed to run ({exc})") from None
        scores = np.asarray(scores, np.float32)
        if scores.ndim == 4 and scores.shape[0] == 1:
            scores = scores[0]
        if scores.ndim != 3 or scores.shape[0] != len(self.classes):
            raise SegmentationModelError(
                f"{self.path}: output {self.output_name!r} has shape {scores.shape}; expected 1 x "
                f"{len(self.classes)} x h x w (one channel per class in the sidecar)"
            )
        if self.sidecar.output_kind == "probabilities":
            scores = np.log(np.maximum(scores, 1e-12))
        return scores


def custom_dir(folder: str | Path | None = None) -> Path:
    from engine.segmentation.install import segmentation_dir

    return segmentation_dir(folder) / CUSTOM_FOLDER


def custom_ref(path: Path) -> ModelRef:
    """A ModelRef for an ONNX file given directly (its sidecar beside it)."""
    sidecar = read_sidecar(sidecar_path(path), path.stem)
    return ModelRef(sidecar.name, path)


def find_installed_custom(name: str, folder: str | Path | None = None) -> ModelRef | None:
    path = custom_dir(folder) / f"{name}.onnx"
    return ModelRef(name, path) if NAME.match(name) and path.is_file() else None


def installed_custom(folder: str | Path | None = None) -> list[tuple[str, Path, Sidecar | None, str]]:
    """(name, path, sidecar or None, problem or '') for every installed custom model."""
    found = []
    base = custom_dir(folder)
    for path in sorted(base.glob("*.onnx")) if base.is_dir() else []:
        try:
            found.append((path.stem, path, read_sidecar(sidecar_path(path), path.stem), ""))
        except SegmentationModelError as exc:
            found.append((path.stem, path, None, str(exc)))
    return found


def install_custom(onnx_path: str | Path, sidecar: str | Path | None = None, folder: str | Path | None = None) -> Path:
    """Check the model runs and its output fits the sidecar, then copy both into the data folder atomically."""
    onnx_path = Path(onnx_path)
    side = Path(sidecar) if sidecar is not None else sidecar_path(onnx_path)
    description = read_sidecar(side, onnx_path.stem)
    source = CustomOnnxSource(onnx_path, description)
    probe = Image.new("RGB", (64, 48), (128, 128, 128))
    source.logits(probe)  # raises with a clear message when the output does not fit
    target = custom_dir(folder) / f"{description.name}.onnx"
    atomic_write_bytes(target, onnx_path.read_bytes())
    atomic_write_text(sidecar_path(target), json.dumps(description.to_json(), indent=2) + "\n")
    from engine.segmentation.sources import clear_cache

    clear_cache()
    return target
