"""Unary sources: what turns a photo into per-pixel class scores, whichever network and runtime it is.

Why a seam here: the job API, the CLI and the evaluation should not care whether ESPNetv2 runs in
PyTorch, in ONNX Runtime (no torch installed), or whether the user brought an ONNX model of their own.
Each source says its name, classes, colours and backend, and gives C x h x w float32 logits at the
network's resolution. Opening a source is slow (reading and checking weights), so opened sources are
cached per (model, backend) for the process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from engine.segmentation.errors import SegmentationModelError
from engine.segmentation.manifest import SegmentationWeights

BACKENDS = ("auto", "torch", "onnx")


class UnarySource(Protocol):
    """A segmentation network ready to run: photo -> C x h x w float32 logits (higher = more likely)."""

    name: str
    classes: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    backend: str

    def logits(self, photo: Image.Image) -> np.ndarray: ...


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: a known published checkpoint (weights + path) or a user's ONNX model (path)."""

    name: str
    path: Path
    weights: SegmentationWeights | None = None


def resolve_model(model: str | Path | None) -> ModelRef:
    """A model name, a checkpoint file or an installed ONNX model -> ModelRef; a clear error if absent."""
    from engine.segmentation.install import identify
    from engine.segmentation.models import checkpoint_path

    if model is None:
        model = SegmentationWeights.DEFAULT.meta.name
    text = str(model)
    if Path(text).suffix.lower() == ".pth" or Path(text).is_file():
        if Path(text).suffix.lower() == ".onnx":
            from engine.segmentation.custom import custom_ref

            return custom_ref(Path(text))
        weights = identify(text)
        return ModelRef(weights.meta.name, Path(text), weights)
    try:
        weights = SegmentationWeights.by_name(text)
    except KeyError as exc:
        from engine.segmentation.custom import find_installed_custom

        found = find_installed_custom(text)
        if found is not None:
            return found
        raise SegmentationModelError(exc.args[0]) from None
    path = checkpoint_path(weights)
    if not path.is_file():
        raise SegmentationModelError(
            f"{weights.meta.name} is not installed: run `penwright models download {weights.meta.name}` "
            f"or `penwright models install FILE` (published at {weights.meta.url})"
        )
    return ModelRef(weights.meta.name, path, weights)


class TorchEspnetSource:
    """A published ESPNetv2 checkpoint in the project's PyTorch module."""

    backend = "torch"

    def __init__(self, weights: SegmentationWeights, path: Path) -> None:
        from engine.segmentation.models import load_network

        self.weights = weights
        self.name = weights.meta.name
        self.classes = weights.meta.classes
        self.palette = weights.meta.palette
        self.network = load_network(weights, path)

    def logits(self, photo: Image.Image) -> np.ndarray:
        from engine.segmentation.models import segment

        return segment(self.network, photo, self.weights).logits


def _choose_backend(ref: ModelRef, backend: str) -> str:
    if backend not in BACKENDS:
        raise SegmentationModelError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if ref.weights is None:  # a user's ONNX model runs only in ONNX Runtime
        if backend == "torch":
            raise SegmentationModelError(f"{ref.name} is an ONNX model: it runs with --backend onnx (or auto)")
        return "onnx"
    if backend == "auto":
        return "torch" if torch_available() else "onnx"
    if backend == "torch" and not torch_available():
        raise SegmentationModelError("--backend torch needs PyTorch (pip install 'penwright[torch]'); use onnx")
    return backend


def _open(ref: ModelRef, backend: str) -> UnarySource:
    if backend == "torch":
        assert ref.weights is not None
        return TorchEspnetSource(ref.weights, ref.path)
    if ref.weights is None:
        from engine.segmentation.custom import CustomOnnxSource

        return CustomOnnxSource(ref.path)
    from engine.segmentation.onnx_espnet import OnnxEspnetSource

    return OnnxEspnetSource(ref.weights, ref.path)


_cache: dict[tuple[str, str, str], UnarySource] = {}
_cache_lock = threading.Lock()


def open_source(
    model: str | Path | None = None, backend: str = "auto", opener: Callable[[ModelRef, str], UnarySource] = _open
) -> UnarySource:
    """The source for `model` (name, .pth, installed or given .onnx; None: the default) on `backend`, cached."""
    ref = resolve_model(model)
    chosen = _choose_backend(ref, backend)
    key = (ref.name, str(ref.path.resolve()), chosen)
    with _cache_lock:
        source = _cache.get(key)
        if source is None:
            source = _cache[key] = opener(ref, chosen)
    return source


def clear_cache() -> None:
    """Forget opened sources (after installing or removing a model)."""
    with _cache_lock:
        _cache.clear()
