"""A small-grid search of the dense CRF's parameters with the unaries frozen, and an honest selection.

Why a grid and not gradients: with 67 fitting photos, the 1323 (or even 63) learned numbers of CRF-RNN
fine-tuning overfit. Here the parameters are crfasrnn's form with four free numbers (a Potts
compatibility -I, scalar kernel weights w_s I and w_b I, thetas alpha and beta; theta_gamma fixed), searched
on a coarse grid at the app's working resolution and with the app's iteration (10 mean-field iterations,
`min_probability` 0.01).

Selection (never on the held-back sets): the fit photos are split by a hash of their names into fit-train
and fit-validation; the grid is scored on fit-train, the `shortlist` best points are scored on
fit-validation together with the no-CRF point (zero weights, i.e. the unaries), and the one with the best
fit-validation mIoU is kept (`select`, `fit.write_selection`): a CRF ships only if it beats the unaries there.

Speed: a photo's lattices depend only on it and the thetas, so each bilateral lattice is built once per
(alpha, beta) and every weight pair runs on it; `refine_batch` runs several weight pairs at once, their Q
side by side as columns of one filtering call (sparse products over 12 columns cost about a third per
column of those over 3).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from engine.segmentation.crf.meanfield import CrfParams, ImageKernels, softmax

MIN_PROBABILITY = 0.01  # the app's default (SegmentationRequest.min_probability)
BATCH_COLUMNS = 12  # filtering columns per call: candidates x classes that send messages


@dataclass(frozen=True)
class Candidate:
    """One grid point: Potts compatibility, w_s I and w_b I, thetas (alpha, beta, gamma) at 500 x 375."""

    spatial: float
    bilateral: float
    theta_alpha: float
    theta_beta: float
    theta_gamma: float = 3.0

    def params(self, num_classes: int) -> CrfParams:
        eye = np.eye(num_classes)
        return CrfParams(
            self.spatial * eye, self.bilateral * eye, -eye, self.theta_alpha, self.theta_beta, self.theta_gamma
        )

    @property
    def label(self) -> str:
        return (
            f"w_s {self.spatial:g}, w_b {self.bilateral:g}, alpha {self.theta_alpha:g}, "
            f"beta {self.theta_beta:g}, gamma {self.theta_gamma:g}"
        )


NO_CRF = Candidate(0.0, 0.0, 160.0, 3.0)  # zero kernel weights: the mean-field keeps Q = softmax(unaries)


def grid(
    spatial: Iterable[float], bilateral: Iterable[float], alphas: Iterable[float], betas: Iterable[float]
) -> list[Candidate]:
    """Every combination, grouped by thetas (so one lattice serves a run of candidates)."""
    spatial, bilateral = list(spatial), list(bilateral)
    return [Candidate(s, b, a, t) for a in alphas for t in betas for b in bilateral for s in spatial]


def is_validation(name: str) -> bool:
    """The fixed split of the fit photos: by a hash of the name alone (not by order or by what else exists)."""
    return zlib.crc32(name.encode("utf-8")) % 2 == 1


def split_fit(names: Sequence[str]) -> tuple[list[int], list[int]]:
    """(fit-train, fit-validation) positions in `names`."""
    validation = [i for i, name in enumerate(names) if is_validation(name)]
    train = [i for i, name in enumerate(names) if not is_validation(name)]
    return train, validation


def shortlist(train_scores: dict[Candidate, float], size: int) -> list[Candidate]:
    """The `size` best candidates on fit-train (ties: the weaker CRF first)."""
    return sorted(train_scores, key=lambda c: (-train_scores[c], c.spatial + c.bilateral))[:size]


def select(validation_scores: dict[Candidate, float]) -> Candidate:
    """The shortlisted candidate with the best fit-validation mIoU (ties: the weaker CRF). Nothing else counts."""
    return max(validation_scores, key=lambda c: (validation_scores[c], -(c.spatial + c.bilateral)))


def refine_batch(
    unaries: np.ndarray,
    kernels: ImageKernels,
    weights: Sequence[tuple[float, float]],
    iterations: int = 10,
    min_probability: float = MIN_PROBABILITY,
) -> np.ndarray:
    """uint8 labels (K x h x w) of `meanfield.mean_field_steps` for K (w_s, w_b) pairs sharing one image's
    kernels, Potts compatibility (-I) and diagonal weights; the same iteration, only batched.

    With diagonal weights and Potts compatibility the live classes are the message sources; the other
    classes' logits stay the unaries and enter each softmax through a per-pixel sum computed once.
    """
    c, h, w = unaries.shape
    u = np.ascontiguousarray(unaries.reshape(c, h * w).T, np.float32)
    q0 = softmax(u)
    live = np.flatnonzero(q0.max(axis=0) >= min_probability) if min_probability > 0 else np.arange(c)
    rest = np.setdiff1d(np.arange(c), live)
    u_live = np.ascontiguousarray(u[:, live])
    k, a = len(weights), len(live)
    w_s = np.repeat(np.array([s for s, _ in weights], np.float32), a)  # (K*a,): candidate-major columns
    w_b = np.repeat(np.array([b for _, b in weights], np.float32), a)
    q = np.tile(q0[:, live], (1, k))
    u_tiled = np.tile(u_live, (1, k))
    if len(rest):
        rest_max = u[:, rest].max(axis=1)
        rest_sum = np.exp(u[:, rest] - rest_max[:, None]).sum(axis=1)
    for _ in range(iterations):
        logits = u_tiled + kernels.spatial(q) * w_s + kernels.bilateral(q) * w_b
        per = logits.reshape(-1, k, a)
        shift = per.max(axis=2)
        if len(rest):
            np.maximum(shift, rest_max[:, None], out=shift)
        e = np.exp(per - shift[:, :, None])
        denominator = e.sum(axis=2)
        if len(rest):
            denominator += rest_sum[:, None] * np.exp(rest_max[:, None] - shift)
        q = (e / denominator[:, :, None]).reshape(-1, k * a)
    per = q.reshape(-1, k, a)
    labels = live[per.argmax(axis=2)]  # (N, K)
    if len(rest):  # the best other class's Q is exp(rest_max - shift) / denominator, as above
        best_rest = np.exp(rest_max[:, None] - shift) / denominator
        labels = np.where(best_rest > per.max(axis=2), rest[u[:, rest].argmax(axis=1)][:, None], labels)
    return labels.T.reshape(k, h, w).astype(np.uint8)


def refine_many(
    unaries: np.ndarray,
    kernels: ImageKernels,
    weights: Sequence[tuple[float, float]],
    iterations: int = 10,
    min_probability: float = MIN_PROBABILITY,
) -> np.ndarray:
    """`refine_batch` in chunks of about BATCH_COLUMNS filtering columns."""
    q0 = softmax(np.moveaxis(unaries, 0, -1).reshape(-1, unaries.shape[0]))
    sources = max(1, int((q0.max(axis=0) >= min_probability).sum()) if min_probability > 0 else unaries.shape[0])
    step = max(1, BATCH_COLUMNS // sources)
    out = [
        refine_batch(unaries, kernels, weights[i : i + step], iterations, min_probability)
        for i in range(0, len(weights), step)
    ]
    return np.concatenate(out)
