"""The CRF parameters this project fitted with the unaries frozen (`--crf learned`), shipped in resources/models.

Why a file and not constants: they come out of `python -m engine.segmentation.crf.fit` with a model card
beside them (data, command, figures); the .npz holds the three C x C matrices and the thetas.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.atomic import atomic_write_bytes
from engine.segmentation.crf.meanfield import CrfParams
from engine.segmentation.errors import SegmentationModelError

LEARNED_PATH = Path(__file__).resolve().parents[3] / "resources" / "models" / "crf-learned.npz"
MATRICES = ("spatial_weights", "bilateral_weights", "compatibility")
THETAS = ("theta_alpha", "theta_beta", "theta_gamma")


def save_params(path: str | Path, params: CrfParams, **meta: str) -> None:
    """Write params (and string metadata) as .npz, atomically."""
    import io

    buffer = io.BytesIO()
    arrays = {name: np.asarray(getattr(params, name), np.float32) for name in MATRICES}
    arrays.update({name: np.float32(getattr(params, name)) for name in THETAS})
    arrays.update({f"meta_{k}": np.str_(v) for k, v in meta.items()})
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def load_params(path: str | Path) -> CrfParams:
    path = Path(path)
    if not path.is_file():
        raise SegmentationModelError(f"CRF parameter file {path} does not exist")
    try:
        with np.load(path) as data:
            matrices = [np.asarray(data[name], np.float64) for name in MATRICES]
            thetas = [float(data[name]) for name in THETAS]
    except (KeyError, ValueError, OSError) as exc:
        raise SegmentationModelError(f"{path} is not a CRF parameter file ({exc})") from None
    return CrfParams(*matrices, *thetas)


def load_learned_params(num_classes: int, path: str | Path = LEARNED_PATH) -> CrfParams:
    """The shipped learned parameters; a clear error when absent or fitted for another number of classes."""
    if not Path(path).is_file():
        raise SegmentationModelError(
            f"no learned CRF parameters at {path}; use crf 'default' "
            "(or fit them: python -m engine.segmentation.crf.fit)"
        )
    params = load_params(path)
    if params.compatibility.shape != (num_classes, num_classes):
        raise SegmentationModelError(
            f"the learned CRF parameters are for {params.compatibility.shape[0]} classes, "
            f"this model has {num_classes}; use crf 'default'"
        )
    return params
