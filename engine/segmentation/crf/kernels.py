"""Pixel features of the dense CRF's two Gaussian kernels, as crfasrnn defines them.

Spatial (smoothness) kernel: position / theta_gamma. Bilateral (appearance) kernel: position / theta_alpha
and RGB (0-255 scale) / theta_beta. Position is (x, y) in pixels of the image the CRF runs on; the thetas
are in those pixels, so a working resolution must scale theta_alpha and theta_gamma with it.
"""

from __future__ import annotations

import numpy as np

from engine.segmentation.crf.permutohedral import Lattice, SparseFilter, build_lattice, filter_lattice


def positions(height: int, width: int) -> np.ndarray:
    """(H*W, 2) pixel coordinates (x, y), row-major like a flattened H x W image."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x.ravel(), y.ravel()], axis=1).astype(np.float64)


def spatial_features(height: int, width: int, theta_gamma: float) -> np.ndarray:
    return positions(height, width) / theta_gamma


def bilateral_features(image: np.ndarray, theta_alpha: float, theta_beta: float) -> np.ndarray:
    """image: H x W x 3 RGB in 0-255 (uint8 or float)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 RGB image, got shape {image.shape}")
    h, w, _ = image.shape
    rgb = image.reshape(-1, 3).astype(np.float64) / theta_beta
    return np.concatenate([positions(h, w) / theta_alpha, rgb], axis=1)


class NormalisedKernel:
    """A lattice plus crfasrnn's normalisation 1 / (K 1 + 1e-20): filtering a constant returns it.

    float64 values go through `filter_lattice` (exactness and gradient checks); anything else through the
    lattice's sparse matrices in float32 (the fast inference path), built on first use.
    """

    def __init__(self, features: np.ndarray) -> None:
        self.lattice: Lattice = build_lattice(features)
        self.norm = 1.0 / (filter_lattice(self.lattice, np.ones((self.lattice.points, 1))) + 1e-20)
        self._sparse: SparseFilter | bool | None = None
        self._norm32 = self.norm.astype(np.float32)

    def sparse_filter(self) -> SparseFilter | None:
        """The float32 filter as scipy sparse matrices (normalisation folded in), or None without scipy."""
        if self._sparse is None:
            self._sparse = _sparse_filter(self.lattice, self.norm)
        return self._sparse or None

    def __call__(self, values: np.ndarray, channel_scale: np.ndarray | None = None) -> np.ndarray:
        """The normalised filtering of values (N, C); `channel_scale` (C,): a factor per output channel (the
        sparse path applies it to the lattice grid, cheaper than to the pixels)."""
        if np.asarray(values).dtype == np.float64:
            out = filter_lattice(self.lattice, values)
            out *= self.norm
        else:
            sparse = self.sparse_filter()
            if sparse is not None:
                return sparse(values, channel_scale)  # the normalisation is folded into its slice matrix
            out = filter_lattice(self.lattice, values)
            out *= self._norm32
        if channel_scale is not None:
            out *= np.asarray(channel_scale, out.dtype)
        return out


def _sparse_filter(lattice: Lattice, norm: np.ndarray) -> SparseFilter | bool:
    """The scipy filter, or False where scipy is missing (a bundle that left it out): numpy's, 3x slower."""
    try:
        return SparseFilter(lattice, scale=norm)
    except ImportError:
        return False
