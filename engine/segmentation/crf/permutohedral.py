"""Permutohedral lattice (Adams, Baek, Davis 2010): Gaussian filtering in d dimensions, linear in pixels.

Pure vectorised numpy (no loop over pixels, no compiled code) so it runs wherever numpy does. The lattice
depends only on the features, so it is built once per image and reused for every mean-field iteration and
every class (all C channels are filtered together). The index arithmetic follows the reference
implementation (and crfasrnn's `modified_permutohedral`): embed the scaled features in the hyperplane
H_d of R^{d+1}, find the enclosing simplex, splat with barycentric weights, blur with [1, 2, 1] / 4 along
each of the d+1 lattice directions, slice with the same weights.

Lattice points are d integer coordinates (the (d+1)-th is implied: they sum to zero) packed mixed-radix
into one int64 key; `np.unique` deduplicates them and, because packing is linear, the neighbour of a point
along a lattice direction is the key plus a constant, found with `searchsorted` on the sorted keys.

For fixed features the filter K = S B S^T (S: slice, B: blur) is linear; B is a product of per-direction
blurs that do not quite commute on a finite lattice, so the exact adjoint blurs in reverse direction order
(`reverse=True`), as crfasrnn's backward pass does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Lattice:
    """Splat/slice indices and weights of N points in a lattice of M vertices, and blur neighbours."""

    index: np.ndarray  # (N, d+1) int64: lattice vertex of each simplex corner
    weight: np.ndarray  # (N, d+1) float64: barycentric weights (rows sum to 1)
    neighbours: np.ndarray  # (d+1, 2, M) int64: the two neighbours along each direction; M means "absent"

    @property
    def size(self) -> int:
        return int(self.neighbours.shape[2])

    @property
    def points(self) -> int:
        return int(self.index.shape[0])


def _embed(features: np.ndarray) -> np.ndarray:
    """Scaled features (N, d) -> points of H_d (N, d+1), scaled so the blur approximates a unit Gaussian."""
    d = features.shape[1]
    i = np.arange(1, d + 1, dtype=np.float64)
    scaled = features * (np.sqrt(2.0 / 3.0) * (d + 1) / np.sqrt(i * (i + 1)))
    suffix = np.concatenate([np.cumsum(scaled[:, ::-1], axis=1)[:, ::-1], np.zeros((len(scaled), 1))], axis=1)
    elevated = suffix.copy()
    elevated[:, 1:] -= i * scaled
    return elevated


def _simplex(elevated: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The nearest remainder-0 point, the rank of each coordinate's remainder, and barycentric weights."""
    n, d1 = elevated.shape
    d = d1 - 1
    v = elevated / d1
    up, down = np.ceil(v) * d1, np.floor(v) * d1
    rem0 = np.where(up - elevated < elevated - down, up, down)
    total = np.rint(rem0.sum(axis=1) / d1).astype(np.int64)
    diff = elevated - rem0
    # rank[i] = #{j > i: diff_j > diff_i} + #{j < i: diff_j >= diff_i} (the reference's tie-break)
    greater = diff[:, None, :] > diff[:, :, None]
    greater_eq = diff[:, None, :] >= diff[:, :, None]
    upper = np.triu(np.ones((d1, d1), dtype=bool), 1)
    rank = (greater & upper).sum(axis=2) + (greater_eq & upper.T).sum(axis=2)
    s = total[:, None]
    pos = (s > 0) & (rank >= d1 - s)
    neg = (s < 0) & (rank < -s)
    rank = rank + s - d1 * pos + d1 * neg
    rem0 = rem0 - d1 * pos + d1 * neg
    diff = (elevated - rem0) / d1
    bary = np.zeros((n, d + 2))
    rows = np.arange(n)
    for i in range(d1):  # loop over dimensions, vectorised over points
        bary[rows, d - rank[:, i]] += diff[:, i]  # one column per row: no repeated index
        bary[rows, d + 1 - rank[:, i]] -= diff[:, i]
    bary[:, 0] += 1.0 + bary[:, d + 1]
    return rem0.astype(np.int64), rank, bary[:, :d1]


def build_lattice(features: np.ndarray) -> Lattice:
    """The lattice for N points with features (N, d), already divided by the kernel's standard deviations."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[1] < 1:
        raise ValueError(f"expected features of shape (N, d), got {features.shape}")
    n, d = features.shape
    d1 = d + 1
    rem0, rank, bary = _simplex(_embed(features))
    k = np.arange(d1)[None, :, None]  # remainder of each simplex corner
    keys = rem0[:, None, :d] + k - d1 * (rank[:, None, :d] > d - k)  # (N, d+1, d)
    low = keys.min(axis=(0, 1)) - d1
    span = keys.max(axis=(0, 1)) + d1 - low + 1
    if np.sum(np.log2(span.astype(np.float64))) > 62:
        raise ValueError("lattice too large to pack into int64 keys: features are too spread out for their scale")
    radix = np.concatenate([[1], np.cumprod(span[:-1])]).astype(np.int64)
    packed = ((keys - low) * radix).sum(axis=2)
    unique, inverse = np.unique(packed.ravel(), return_inverse=True)
    m = len(unique)
    steps = np.full(d1, -radix.sum(), dtype=np.int64)  # all coordinates -1, one coordinate +d
    steps[:d] += d1 * radix
    neighbours = np.empty((d1, 2, m), dtype=np.int64)
    for j, step in enumerate(steps):
        for side, target in enumerate((unique + step, unique - step)):
            pos = np.minimum(np.searchsorted(unique, target), m - 1)
            neighbours[j, side] = np.where(unique[pos] == target, pos, m)
    return Lattice(inverse.reshape(n, d1).astype(np.int64), bary, neighbours)


def filter_lattice(lattice: Lattice, values: np.ndarray, reverse: bool = False) -> np.ndarray:
    """Unnormalised Gaussian filtering of values (N, C): splat, blur, slice. `reverse`: the adjoint.

    float64 values are filtered in float64 (gradient checks), anything else in float32 (half the memory
    traffic, which is what bounds the speed here).
    """
    values = np.asarray(values)
    if values.ndim != 2 or values.shape[0] != lattice.points:
        raise ValueError(f"expected values of shape ({lattice.points}, C), got {values.shape}")
    dtype = np.float64 if values.dtype == np.float64 else np.float32
    m, channels = lattice.size, values.shape[1]
    flat_index = lattice.index.ravel()
    grid = np.zeros((m + 1, channels), dtype)  # row m stays zero: the "absent neighbour"
    for c in range(channels):
        weights = (lattice.weight * values[:, c : c + 1]).ravel()
        grid[:, c] = np.bincount(flat_index, weights=weights, minlength=m + 1)
    before, after, inner = np.empty((m, channels), dtype), np.empty((m, channels), dtype), grid[:m]
    order = range(len(lattice.neighbours) - 1, -1, -1) if reverse else range(len(lattice.neighbours))
    for j in order:  # [1, 2, 1] / 4 along direction j
        np.take(grid, lattice.neighbours[j, 0], axis=0, out=before)
        np.take(grid, lattice.neighbours[j, 1], axis=0, out=after)
        before += after
        before *= 0.25
        inner *= 0.5
        inner += before
    out = np.zeros((lattice.points, channels), dtype)
    corner = np.empty_like(out)
    weight = lattice.weight.astype(dtype)
    for k in range(lattice.index.shape[1]):
        np.take(grid, lattice.index[:, k], axis=0, out=corner)
        corner *= weight[:, k : k + 1]
        out += corner
    return out
