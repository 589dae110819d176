"""Loading a published segmentation checkpoint into the project's network, and running it on images.

Reading and verifying the file needs no torch (`read_checkpoint`); building the PyTorch network
and `segment` do, and import it only when called. Every way a checkpoint can be unusable (absent,
damaged, another file, another architecture) ends in one `SegmentationModelError` that names the
file and what is wrong with it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from engine.paths import data_dir
from engine.segmentation.errors import SegmentationModelError
from engine.segmentation.manifest import SegmentationWeights
from engine.segmentation.preprocessing import labels_from_logits, preprocess, resize_labels
from engine.segmentation.pth_reader import read_state_dict

if TYPE_CHECKING:
    from engine.segmentation.espnetv2 import ESPNetv2Seg

__all__ = [
    "Segmentation",
    "SegmentationModelError",
    "build_network",
    "checkpoint_path",
    "load_network",
    "read_checkpoint",
    "segment",
    "sha256_file",
]


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_path(weights: SegmentationWeights, folder: str | Path | None = None) -> Path:
    """Where the checkpoint is expected: `folder`, else <data dir>/models/segmentation."""
    base = Path(folder) if folder is not None else data_dir() / "models" / "segmentation"
    return base / weights.meta.checkpoint


def read_checkpoint(
    weights: SegmentationWeights, path: str | Path | None = None, verify: bool = True
) -> dict[str, np.ndarray]:
    """The checkpoint's state dict as numpy arrays (no torch); `verify` checks the file's SHA-256."""
    meta = weights.meta
    path = Path(path) if path is not None else checkpoint_path(weights)
    if not path.is_file():
        raise SegmentationModelError(f"{meta.name}: checkpoint {path} does not exist (published at {meta.url})")
    if verify:
        digest = sha256_file(path)
        if digest != meta.sha256:
            raise SegmentationModelError(
                f"{path} is not the {meta.name} checkpoint or is damaged: sha256 {digest}, expected {meta.sha256}"
            )
    return read_state_dict(path)


def build_network(
    weights: SegmentationWeights, state_dict: Mapping[str, Any] | None = None, source: str = "state dict"
) -> ESPNetv2Seg:
    """The network for `weights` in eval mode, with `state_dict` loaded strictly (random weights if None)."""
    import torch

    from engine.segmentation.espnetv2 import ESPNetv2Seg

    meta = weights.meta
    network = ESPNetv2Seg(meta.scale)
    if state_dict is not None:
        tensors = {
            k: v if isinstance(v, torch.Tensor) else torch.from_numpy(np.array(v))  # copy: reader views are read-only
            for k, v in state_dict.items()
        }
        problems = _mismatches(network.state_dict(), tensors)
        if problems:
            raise SegmentationModelError(f"{source} does not fit {meta.name}: {problems}")
        try:
            network.load_state_dict(tensors, strict=True)
        except RuntimeError as exc:  # anything _mismatches did not foresee
            raise SegmentationModelError(f"{source} does not fit {meta.name}: {exc}") from exc
    return network.eval()


def _mismatches(expected: Mapping[str, Any], found: Mapping[str, Any], show: int = 3) -> str:
    """A short account of missing, unexpected and wrongly shaped entries ('' when the state dicts fit)."""

    def listing(what: str, names: list[str]) -> str:
        more = f" and {len(names) - show} more" if len(names) > show else ""
        return f"{len(names)} {what} ({', '.join(names[:show])}{more})"

    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [
        f"{k} {tuple(found[k].shape)} vs {tuple(expected[k].shape)}"
        for k in expected
        if k in found and tuple(found[k].shape) != tuple(expected[k].shape)
    ]
    parts = [
        listing(what, names)
        for what, names in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes))
        if names
    ]
    return "; ".join(parts)


def load_network(
    weights: SegmentationWeights = SegmentationWeights.DEFAULT, path: str | Path | None = None, verify: bool = True
) -> ESPNetv2Seg:
    """Read, verify and load a published checkpoint into a fresh network (eval mode)."""
    path = Path(path) if path is not None else checkpoint_path(weights)
    return build_network(weights, read_checkpoint(weights, path, verify), source=str(path))


@dataclass
class Segmentation:
    """One image's result: logits and labels at network resolution, labels at the image's own size."""

    logits: np.ndarray  # float32, C x h x w (network input size)
    labels_netres: np.ndarray  # uint8, h x w
    labels: np.ndarray  # uint8, H x W (original image size)


def segment(
    network: ESPNetv2Seg, images: Image.Image | Sequence[Image.Image], weights: SegmentationWeights
) -> Segmentation | list[Segmentation]:
    """Run the reference protocol on one image or a batch: preprocess, forward, argmax, resize labels back."""
    import torch

    single = isinstance(images, Image.Image)
    batch = [images] if single else list(images)
    inputs = np.stack([preprocess(image, weights.meta.preprocessing) for image in batch])
    with torch.inference_mode():
        logits = network(torch.from_numpy(inputs)).numpy()
    results = []
    for image, image_logits in zip(batch, logits, strict=True):
        netres = labels_from_logits(image_logits)
        results.append(Segmentation(image_logits, netres, resize_labels(netres, image.size)))
    return results[0] if single else results
