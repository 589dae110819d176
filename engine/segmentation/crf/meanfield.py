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

from collections.abc import Iterator
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


class MeanFieldStep:
    """Q and logits after one iteration, kept compact: only the `live` classes' columns were computed.

    Classes outside `live` receive no message, so their logits stay the unaries and their Q is
    exp(U - rest_max) * exp(rest_max - shift) / denominator: a constant plane times a per-pixel factor.
    """

    def __init__(
        self,
        u: np.ndarray,
        live: np.ndarray,
        logits_live: np.ndarray,
        q_live: np.ndarray,
        rest: tuple[np.ndarray, np.ndarray] | None = None,
        factor: np.ndarray | None = None,
    ) -> None:
        self.u, self.live, self.logits_live, self.q_live = u, live, logits_live, q_live
        self._rest, self._factor = rest, factor  # (class ids, exp(U - rest_max) planes), per-pixel factor

    def full(self) -> tuple[np.ndarray, np.ndarray]:
        """(Q, logits) for all classes, (H*W, C) pixel-major."""
        if self._rest is None:
            return self.q_live, self.logits_live
        logits = self.u.copy()
        logits[:, self.live] = self.logits_live
        return self.planes().T, logits

    def planes(self) -> np.ndarray:
        """Q for all classes as contiguous (C, H*W) float planes (what a viewer shows)."""
        out = np.empty((self.u.shape[1], self.u.shape[0]), self.q_live.dtype)
        out[self.live] = self.q_live.T
        if self._rest is not None:
            classes, planes = self._rest
            out[classes] = planes * self._factor
        return out


def mean_field_steps(
    unaries: np.ndarray,
    image: np.ndarray,
    params: CrfParams | None = None,
    iterations: int = INFERENCE_ITERATIONS,
    kernels: ImageKernels | None = None,
    min_probability: float = 0.0,
) -> Iterator[MeanFieldStep]:
    """Yield a MeanFieldStep before the first iteration (Q = softmax(U)) and after each one.

    Why a generator: a caller (the job API) can show the RNN unrolling, report progress and stop between
    iterations. See `mean_field` for the arguments.

    The iteration works on the `live` classes only: the message sources (classes whose initial Q reaches
    `min_probability` somewhere; all with 0) and the classes those messages reach through the weights
    and compatibility. The messages are (K_s Q_a, K_b Q_a) for the sources a, mapped to logits by one
    (2|a| x |live|) matrix A = [W_s^T; W_b^T]_a mu^T. The other classes' logits stay the unaries, so they
    enter each softmax only through a per-pixel sum computed once. With Potts compatibility and diagonal
    weights (the defaults) live = a, so the cost is linear in the number of classes present.
    """
    unaries = np.asarray(unaries)
    c, h, w = unaries.shape
    if np.asarray(image).shape[:2] != (h, w):
        raise ValueError(f"image {np.asarray(image).shape[:2]} and unaries {(h, w)} differ in size")
    params = params if params is not None else CrfParams.default(c)
    kernels = kernels if kernels is not None else ImageKernels.build(image, *params.thetas)
    dtype = np.float64 if unaries.dtype == np.float64 else np.float32  # float64 only for exactness checks
    u = np.ascontiguousarray(unaries.reshape(c, h * w).T, dtype)  # (N, C): one row per pixel
    q = softmax(u)
    everything = np.arange(c)
    yield MeanFieldStep(u, everything, u, q)
    active = np.flatnonzero(q.max(axis=0) >= min_probability) if min_probability > 0 else everything
    w_s, w_b, mu = (
        np.asarray(m, np.float64).T for m in (params.spatial_weights, params.bilateral_weights, params.compatibility)
    )
    mapping = np.concatenate([w_s[active] @ mu, w_b[active] @ mu])  # (2|a|, C), in float64 then cast
    live = np.union1d(active, np.flatnonzero(np.abs(mapping).sum(axis=0) > 0))
    mapping = np.ascontiguousarray(mapping[:, live], dtype)
    sources = np.searchsorted(live, active)
    rest = np.setdiff1d(everything, live)
    u_live = np.ascontiguousarray(u[:, live])
    q_live = np.ascontiguousarray(q[:, live])
    rest_planes = None
    if len(rest):
        rest_max = u[:, rest].max(axis=1)
        rest_planes = (rest, np.exp(u[:, rest].T - rest_max))  # constant: these logits never change
        rest_sum = rest_planes[1].sum(axis=0)
    for _ in range(iterations):
        source = np.ascontiguousarray(q_live[:, sources])
        messages = np.concatenate([kernels.spatial(source), kernels.bilateral(source)], axis=1)
        logits_live = u_live - messages @ mapping
        shift = logits_live.max(axis=1)
        factor = None
        if rest_planes is not None:
            np.maximum(shift, rest_max, out=shift)
            scale = np.exp(rest_max - shift)
        q_live = np.exp(logits_live - shift[:, None])
        denominator = q_live.sum(axis=1)
        if rest_planes is not None:
            denominator += rest_sum * scale
            factor = scale / denominator
        q_live /= denominator[:, None]
        yield MeanFieldStep(u, live, logits_live, q_live, rest_planes, factor)


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
    c, h, w = np.asarray(unaries).shape
    step = None
    for step in mean_field_steps(unaries, image, params, iterations, kernels, min_probability):  # noqa: B007
        pass  # only the last step is wanted
    assert step is not None
    q, logits = step.full()
    shape = (c, h, w)
    return q.T.reshape(shape), logits.T.reshape(shape)
