"""Mean-field inference of the dense CRF, exactly the CRF-RNN iteration (Zheng et al. 2015, numpy only).

One iteration, as in crfasrnn (Caffe `MeanfieldIteration`, and crfasrnn_keras):
  message passing   m_s = norm_s * K_s Q,  m_b = norm_b * K_b Q  (Gaussian filtering, lattice; the pixel's
                    own contribution is included, as crfasrnn does)
  weighting         m = W_s m_s + W_b m_b  (W: C x C, initialised to weight * identity)
  compatibility     p = mu m  (mu: C x C, initialised to -identity)
  unary addition    logits = U - p
  normalisation     Q = softmax(logits)
Sign convention: mu = -I is crfasrnn's Potts initialisation; U - mu m with the Potts energy
mu(l, l') = [l != l'] differs from it by a per-pixel constant, so both give the same Q.
U are the network's logits (higher = more likely). Q0 = softmax(U).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.segmentation.crf.kernels import NormalisedKernel, bilateral_features, spatial_features

TRAIN_ITERATIONS = 5
INFERENCE_ITERATIONS = 10


@dataclass
class CrfParams:
    """Kernel widths (pixels, RGB 0-255) and the learnable C x C matrices; defaults from crfasrnn."""

    spatial_weights: np.ndarray
    bilateral_weights: np.ndarray
    compatibility: np.ndarray
    theta_alpha: float = 160.0
    theta_beta: float = 3.0
    theta_gamma: float = 3.0

    @property
    def thetas(self) -> tuple[float, float, float]:
        return self.theta_alpha, self.theta_beta, self.theta_gamma

    @classmethod
    def default(cls, num_classes: int, spatial_weight: float = 3.0, bilateral_weight: float = 5.0) -> CrfParams:
        eye = np.eye(num_classes)
        return cls(spatial_weight * eye, bilateral_weight * eye, -eye)


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


@dataclass
class ImageKernels:
    """Both normalised kernels of one image: built once, reused for every iteration and class."""

    spatial: NormalisedKernel
    bilateral: NormalisedKernel

    @classmethod
    def build(
        cls, image: np.ndarray, theta_alpha: float = 160.0, theta_beta: float = 3.0, theta_gamma: float = 3.0
    ) -> ImageKernels:
        """image: H x W x 3 RGB, 0-255."""
        h, w = np.asarray(image).shape[:2]
        return cls(
            NormalisedKernel(spatial_features(h, w, theta_gamma)),
            NormalisedKernel(bilateral_features(image, theta_alpha, theta_beta)),
        )


def mean_field(
    unaries: np.ndarray,
    image: np.ndarray,
    params: CrfParams | None = None,
    iterations: int = INFERENCE_ITERATIONS,
    kernels: ImageKernels | None = None,
    min_probability: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(Q, logits), both C x H x W, for unaries C x H x W and an H x W x 3 RGB (0-255) image.

    Pass `kernels` (ImageKernels.build) to re-run with other weights on the same image without
    rebuilding the lattices; the thetas are baked into them. `min_probability` > 0 trades exactness for
    speed (the filtering cost is linear in the classes): classes whose initial Q stays below it at every
    pixel send no messages (a Q < p class changes others' logits by at most |mu W| p); their own Q is still
    updated. 0 (the default) is the exact iteration.
    """
    unaries = np.asarray(unaries)
    c, h, w = unaries.shape
    if np.asarray(image).shape[:2] != (h, w):
        raise ValueError(f"image {np.asarray(image).shape[:2]} and unaries {(h, w)} differ in size")
    params = params if params is not None else CrfParams.default(c)
    kernels = kernels if kernels is not None else ImageKernels.build(image, *params.thetas)
    dtype = np.float64 if unaries.dtype == np.float64 else np.float32  # float64 only for exactness checks
    u = np.ascontiguousarray(unaries.reshape(c, h * w).T, dtype)  # (N, C): one row per pixel
    matrices = (params.spatial_weights, params.bilateral_weights, params.compatibility)
    w_s, w_b, mu = (np.asarray(m, dtype).T for m in matrices)
    logits = u
    q = softmax(u)
    active = np.flatnonzero(q.max(axis=0) >= min_probability) if min_probability > 0 else np.arange(c)
    w_s, w_b = w_s[active], w_b[active]  # rows: the message's source classes
    for _ in range(iterations):
        source = np.ascontiguousarray(q[:, active])
        message = kernels.spatial(source) @ w_s + kernels.bilateral(source) @ w_b
        logits = u - message @ mu
        q = softmax(logits)
    shape = (c, h, w)
    return q.T.reshape(shape), logits.T.reshape(shape)
