"""CRF-RNN as a torch layer: mean-field iterations with learnable kernel weights and compatibility.

The lattice (indices, barycentric weights, neighbours) is built per image with numpy (`permutohedral`),
then applied with torch ops, so the layer runs on any device. Filtering is a custom autograd Function:
for fixed features the filter is a linear operator K = S B S^T, so the gradient of K v is K^T g, the same
filter with the blur directions in reverse order (crfasrnn's backward). The normalisation 1 / K 1 is a
constant of the image. No gradient flows to the image features (crfasrnn does not learn them either);
thetas are fixed hyper-parameters. The iteration is `meanfield.mean_field`'s, line for line.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from engine.segmentation.crf.meanfield import INFERENCE_ITERATIONS, TRAIN_ITERATIONS, CrfParams, ImageKernels
from engine.segmentation.crf.permutohedral import Lattice


class TorchLattice:
    """A numpy Lattice's index arrays as tensors, and its filter in torch ops."""

    def __init__(self, lattice: Lattice, device: torch.device | str | None = None) -> None:
        self.index = torch.as_tensor(lattice.index, device=device)
        self.weight = torch.as_tensor(lattice.weight, device=device)
        self.neighbours = torch.as_tensor(lattice.neighbours, device=device)
        self.size = lattice.size

    def filter(self, values: torch.Tensor, reverse: bool = False) -> torch.Tensor:
        """Unnormalised filtering of values (N, C); `reverse` gives the adjoint."""
        n, channels = values.shape
        weight = self.weight.to(values.dtype)
        grid = values.new_zeros(self.size + 1, channels)  # row `size` stays zero: the absent neighbour
        splat = (weight[:, :, None] * values[:, None, :]).reshape(-1, channels)
        grid = grid.index_add(0, self.index.reshape(-1), splat)
        directions = range(len(self.neighbours) - 1, -1, -1) if reverse else range(len(self.neighbours))
        for j in directions:
            blurred = 0.5 * grid[: self.size] + 0.25 * (grid[self.neighbours[j, 0]] + grid[self.neighbours[j, 1]])
            grid = torch.cat([blurred, grid[self.size :]])
        return (weight[:, :, None] * grid[self.index]).sum(dim=1)


class LatticeFilter(torch.autograd.Function):
    """K v for fixed features; backward: K^T g (the same filter, directions reversed)."""

    @staticmethod
    def forward(ctx, values: torch.Tensor, lattice: TorchLattice) -> torch.Tensor:  # type: ignore[override]
        ctx.lattice = lattice
        with torch.no_grad():
            return lattice.filter(values)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return ctx.lattice.filter(grad, reverse=True), None


class TorchKernels:
    """One image's two normalised kernels as torch operators (built once, reused every iteration)."""

    def __init__(self, kernels: ImageKernels, device: torch.device | str | None = None) -> None:
        self.spatial = TorchLattice(kernels.spatial.lattice, device)
        self.bilateral = TorchLattice(kernels.bilateral.lattice, device)
        self.spatial_norm = torch.as_tensor(kernels.spatial.norm, device=device)
        self.bilateral_norm = torch.as_tensor(kernels.bilateral.norm, device=device)


class CrfRnn(nn.Module):
    """Mean-field CRF on unaries (logits) -> refined logits; crfasrnn's parameters and defaults.

    `spatial_weights`, `bilateral_weights` (C x C, init weight * I) and `compatibility` (C x C, init -I,
    crfasrnn's Potts) are learnable. T = 5 iterations in training mode, 10 in eval mode (crfasrnn).
    Output: logits U - mu (W_s m_s + W_b m_b) of the last iteration (softmax them for Q; cross-entropy
    takes them as they are).
    """

    def __init__(
        self,
        num_classes: int,
        theta_alpha: float = 160.0,
        theta_beta: float = 3.0,
        theta_gamma: float = 3.0,
        spatial_weight: float = 3.0,
        bilateral_weight: float = 5.0,
        train_iterations: int = TRAIN_ITERATIONS,
        eval_iterations: int = INFERENCE_ITERATIONS,
    ) -> None:
        super().__init__()
        eye = torch.eye(num_classes)
        self.spatial_weights = nn.Parameter(spatial_weight * eye)
        self.bilateral_weights = nn.Parameter(bilateral_weight * eye)
        self.compatibility = nn.Parameter(-eye.clone())
        self.thetas = (theta_alpha, theta_beta, theta_gamma)
        self.train_iterations, self.eval_iterations = train_iterations, eval_iterations

    def to_params(self) -> CrfParams:
        """The learned weights for the numpy inference (`meanfield.mean_field`), which needs no torch."""
        matrices = (self.spatial_weights, self.bilateral_weights, self.compatibility)
        return CrfParams(*(m.detach().cpu().double().numpy().copy() for m in matrices), *self.thetas)

    def kernels(self, image: np.ndarray | torch.Tensor, device: torch.device | str | None = None) -> TorchKernels:
        """Kernels for one H x W x 3 (or 3 x H x W tensor) RGB 0-255 image; pass them back to skip rebuilding."""
        if isinstance(image, torch.Tensor):
            image = image.detach().cpu().numpy()
            if image.shape[0] == 3 and image.shape[-1] != 3:
                image = image.transpose(1, 2, 0)
        return TorchKernels(ImageKernels.build(np.asarray(image), *self.thetas), device)

    def refine(self, unaries: torch.Tensor, kernels: TorchKernels, iterations: int | None = None) -> torch.Tensor:
        """One image: unaries C x H x W -> logits C x H x W."""
        c, h, w = unaries.shape
        if iterations is None:
            iterations = self.train_iterations if self.training else self.eval_iterations
        u = unaries.reshape(c, h * w).t()
        norm_s = kernels.spatial_norm.to(u.dtype)
        norm_b = kernels.bilateral_norm.to(u.dtype)
        logits, q = u, torch.softmax(u, dim=1)
        for _ in range(iterations):
            m_s = LatticeFilter.apply(q, kernels.spatial) * norm_s
            m_b = LatticeFilter.apply(q, kernels.bilateral) * norm_b
            message = m_s @ self.spatial_weights.t().to(u.dtype) + m_b @ self.bilateral_weights.t().to(u.dtype)
            logits = u - message @ self.compatibility.t().to(u.dtype)
            q = torch.softmax(logits, dim=1)
        return logits.t().reshape(c, h, w)

    def forward(
        self,
        unaries: torch.Tensor,
        images: torch.Tensor | Sequence[np.ndarray],
        sizes: Sequence[tuple[int, int]] | None = None,
        kernels: Sequence[TorchKernels] | None = None,
        iterations: int | None = None,
    ) -> torch.Tensor:
        """unaries B x C x H x W, images B x 3 x H x W (RGB 0-255) or B arrays H_b x W_b x 3.

        Images of different sizes come zero-padded to H x W with `sizes[b] = (h_b, w_b)`: each image gets
        its own lattices on its valid region, and padded pixels keep their unaries.
        """
        out = []
        for b in range(unaries.shape[0]):
            h, w = sizes[b] if sizes is not None else unaries.shape[2:]
            k = kernels[b] if kernels is not None else self.kernels(_crop(images[b], h, w), unaries.device)
            refined = self.refine(unaries[b, :, :h, :w], k, iterations)
            if (h, w) != tuple(unaries.shape[2:]):
                refined = torch.cat([refined, unaries[b, :, h:, :w]], dim=1)
                refined = torch.cat([refined, unaries[b, :, :, w:]], dim=2)
            out.append(refined)
        return torch.stack(out)


def _crop(image: np.ndarray | torch.Tensor, h: int, w: int) -> np.ndarray | torch.Tensor:
    if isinstance(image, torch.Tensor) and image.shape[0] == 3:
        return image[:, :h, :w]
    return image[:h, :w]
