"""ESPNetv2 in ONNX Runtime without torch: the shipped graph (structure only) plus the user's checkpoint.

`resources/models/<model>.graph.onnx` holds the project's exported network with every weight as an
external initializer whose data is absent (see `onnx_export`); `<model>.graph.json` lists their shapes.
Here the published `.pth` is read into numpy by `pth_reader` (SHA-256 checked), each array is checked
against the listed shape, and ONNX Runtime gets them as external initializers; nothing is written.
Preprocessing and label conventions are the torch path's (`preprocessing`), so the labels agree.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from engine.segmentation.errors import SegmentationModelError
from engine.segmentation.manifest import SegmentationWeights
from engine.segmentation.ort_session import open_session
from engine.segmentation.preprocessing import preprocess

GRAPH_DIR = Path(__file__).resolve().parents[2] / "resources" / "models"


def graph_paths(weights: SegmentationWeights, folder: Path = GRAPH_DIR) -> tuple[Path, Path]:
    return folder / f"{weights.meta.name}.graph.onnx", folder / f"{weights.meta.name}.graph.json"


def session_with_weights(graph: bytes, arrays: Mapping[str, np.ndarray], source: str):
    """(ONNX Runtime session, the OrtValues it borrows) for a stripped graph and its weights by name."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise SegmentationModelError("running ESPNetv2 without PyTorch needs onnxruntime") from None
    names = list(arrays)
    values = [ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(arrays[n], np.float32)) for n in names]
    session = open_session(graph, source, external_initializers=(names, values))
    return session, values


class OnnxEspnetSource:
    """A published ESPNetv2 checkpoint run in ONNX Runtime through the shipped graph."""

    backend = "onnx"

    def __init__(self, weights: SegmentationWeights, path: str | Path, folder: Path = GRAPH_DIR) -> None:
        from engine.segmentation.models import read_checkpoint

        self.weights = weights
        self.name = weights.meta.name
        self.classes = weights.meta.classes
        self.palette = weights.meta.palette
        graph_file, meta_file = graph_paths(weights, folder)
        if not graph_file.is_file() or not meta_file.is_file():
            raise SegmentationModelError(
                f"{graph_file} is missing: this installation cannot run {self.name} without PyTorch "
                "(reinstall Penwright, or install the torch extra)"
            )
        graph = graph_file.read_bytes()
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if hashlib.sha256(graph).hexdigest() != meta.get("graph_sha256"):
            raise SegmentationModelError(f"{graph_file} is damaged (its SHA-256 does not match {meta_file.name})")
        state = read_checkpoint(weights, path)
        arrays = {}
        for name, shape in meta["initializers"].items():
            if name not in state:
                raise SegmentationModelError(f"{path} has no {name!r}, which the {self.name} graph needs")
            if list(state[name].shape) != shape:
                raise SegmentationModelError(f"{path}: {name} is {list(state[name].shape)}, the graph needs {shape}")
            arrays[name] = state[name]
        self.session, self._values = session_with_weights(graph, arrays, str(graph_file))

    def logits(self, photo: Image.Image) -> np.ndarray:
        x = preprocess(photo, self.weights.meta.preprocessing)[None]
        (logits,) = self.session.run(["logits"], {"image": x})
        return logits[0]
