"""The CRF on a photo of any size: inference at a working resolution, labels at the photo's size.

Why: time and memory grow linearly with pixels (per pixel: d+1 lattice indices and weights per kernel,
C floats per Q-sized buffer), so a 4000 x 3000 photo at full size would take minutes and several GiB.
The unaries come from a 384 x 384 network anyway, so the CRF runs on the photo downscaled to at most
`max_pixels` (default: 500 x 375, the PASCAL scale crfasrnn's thetas were tuned at), then Q is upsampled
class by class (bilinear) with a running argmax, so only one full-size float plane exists at a time.
Position thetas act as if the CRF ran at min(photo, reference) size: they shrink only when `max_pixels`
is set below the reference (for speed).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from engine.segmentation.crf.meanfield import INFERENCE_ITERATIONS, CrfParams, mean_field

REFERENCE_PIXELS = 500 * 375


def working_size(width: int, height: int, max_pixels: int = REFERENCE_PIXELS) -> tuple[int, int]:
    """(W, H) with the photo's aspect ratio and at most max_pixels pixels (the photo's size if smaller)."""
    scale = min(1.0, math.sqrt(max_pixels / (width * height)))
    return max(1, int(width * scale)), max(1, int(height * scale))


def resize_planes(planes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """C x h x w float planes -> C x H x W float32, bilinear (Pillow float mode), size = (W, H)."""
    bilinear = Image.Resampling.BILINEAR
    return np.stack([np.asarray(Image.fromarray(p, "F").resize(size, bilinear)) for p in planes.astype(np.float32)])


def working_params(params: CrfParams, photo_size: tuple[int, int], size: tuple[int, int]) -> CrfParams:
    """`params` with the position thetas scaled for running at `size` instead of the photo's size."""
    theta_scale = math.sqrt(size[0] * size[1] / min(photo_size[0] * photo_size[1], REFERENCE_PIXELS))
    return CrfParams(
        params.spatial_weights,
        params.bilateral_weights,
        params.compatibility,
        params.theta_alpha * theta_scale,
        params.theta_beta,
        params.theta_gamma * theta_scale,
    )


def working_inputs(
    unaries: np.ndarray, photo: Image.Image, max_pixels: int = REFERENCE_PIXELS
) -> tuple[np.ndarray, np.ndarray]:
    """(h x w x 3 uint8 image, C x h x w float32 unaries) at the working resolution."""
    size = working_size(*photo.size, max_pixels)
    image = np.asarray(photo.convert("RGB").resize(size, Image.Resampling.BILINEAR))
    return image, resize_planes(unaries, size)


def upsample_argmax(q: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 H x W labels from C x h x w scores: each class plane upsampled (bilinear) to size = (W, H)
    in turn with a running argmax, so one full-size float plane exists at a time. Ties go to the lower class."""
    if q.shape[1:] == size[::-1]:
        return q.argmax(0).astype(np.uint8)
    best = np.full(size[::-1], -np.inf, np.float32)
    labels = np.zeros(size[::-1], np.uint8)
    for c, plane in enumerate(q):
        up = resize_planes(plane[None], size)[0]
        better = up > best
        labels[better] = c
        np.maximum(best, up, out=best)
    return labels


def refine_photo(
    unaries: np.ndarray,
    photo: Image.Image,
    params: CrfParams | None = None,
    iterations: int = INFERENCE_ITERATIONS,
    max_pixels: int = REFERENCE_PIXELS,
    min_probability: float = 0.0,
) -> np.ndarray:
    """uint8 labels at the photo's size from unaries C x h x w at any resolution (e.g. the network's)."""
    params = params if params is not None else CrfParams.default(unaries.shape[0])
    image, working = working_inputs(unaries, photo, max_pixels)
    scaled = working_params(params, photo.size, image.shape[1::-1])
    q, _ = mean_field(working, image, scaled, iterations, min_probability=min_probability)
    return upsample_argmax(q, photo.size)
