"""CRF-RNN layer: permutohedral lattice vs brute force, mean-field (numpy and torch), gradients, batches.

The needs_data test reads the ESPNetv2 reference logits and images in ../shared/models/espnetv2/reference
(or $PENWRIGHT_SHARED/models/espnetv2/reference); nothing from there is copied into the repo.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.segmentation.crf.kernels import NormalisedKernel, bilateral_features, spatial_features
from engine.segmentation.crf.meanfield import CrfParams, ImageKernels, mean_field
from engine.segmentation.crf.permutohedral import build_lattice, filter_lattice
from engine.segmentation.crf.working import refine_photo, resize_planes, working_size

REPO = Path(__file__).resolve().parents[2]


def _dense_normalised(features: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Brute-force sum_j exp(-|f_i - f_j|^2 / 2) v_j / sum_j exp(...): what the lattice approximates."""
    kernel = np.exp(-0.5 * ((features[:, None] - features[None]) ** 2).sum(-1))
    return kernel @ values / kernel.sum(1, keepdims=True)


def _two_regions(h: int = 30, w: int = 40, noise: float = 1.0, seed: int = 0):
    """A red left half and a blue right half, with unaries that favour the truth only weakly."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((h, w), np.int64)
    truth[:, w // 2 :] = 1
    image = np.where(truth[..., None] == 0, [200.0, 40, 40], [40.0, 40, 200]) + rng.normal(0, 5, (h, w, 3))
    unaries = rng.normal(0, noise, (3, h, w))
    unaries[0][truth == 0] += 0.8
    unaries[1][truth == 1] += 0.8
    return image.clip(0, 255), unaries.astype(np.float32), truth


def _params(num_classes: int, theta_alpha: float) -> CrfParams:
    params = CrfParams.default(num_classes)
    params.theta_alpha = theta_alpha
    return params


def _smooth_image(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([255 * x, 255 * y, 128 + 100 * np.sin(6 * x * y)], axis=-1)
    return (base + rng.normal(0, 4, (h, w, 3))).clip(0, 255)


@pytest.mark.parametrize(
    ("thetas", "tolerance"),
    [(None, 0.12), ((160.0, 3.0), 0.08), ((10.0, 20.0), 0.25)],
    ids=["spatial-3", "bilateral-160-3", "bilateral-10-20"],
)
def test_lattice_approximates_dense_gaussian(thetas: tuple[float, float] | None, tolerance: float) -> None:
    """Measured (20 x 15): spatial 0.10, bilateral 0.04 at crfasrnn's thetas, 0.17 when the 5-D points are sparse."""
    h, w = 15, 20
    image = _smooth_image(h, w, 1)
    features = spatial_features(h, w, 3.0) if thetas is None else bilateral_features(image, *thetas)
    values = np.random.default_rng(2).normal(size=(h * w, 4))
    exact = _dense_normalised(features, values)
    approx = NormalisedKernel(features)(values)
    error = np.linalg.norm(approx - exact) / np.linalg.norm(exact)
    print(f"relative error of the lattice vs dense Gaussian filtering: {error:.3f}")
    assert error < tolerance


def test_barycentric_weights_and_constants() -> None:
    features = np.random.default_rng(0).normal(size=(200, 5)) * 2
    lattice = build_lattice(features)
    assert np.all(lattice.weight >= -1e-12)
    np.testing.assert_allclose(lattice.weight.sum(1), 1.0, atol=1e-12)
    kernel = NormalisedKernel(features)
    np.testing.assert_allclose(kernel(np.full((200, 3), 2.5)), 2.5, rtol=1e-5)


def test_filter_is_linear_symmetric_and_reverse_is_adjoint() -> None:
    rng = np.random.default_rng(3)
    lattice = build_lattice(bilateral_features(_smooth_image(8, 9, 0), 4.0, 30.0))
    a, b = rng.normal(size=(72, 2)), rng.normal(size=(72, 2))
    np.testing.assert_allclose(
        filter_lattice(lattice, 2 * a - 3 * b), 2 * filter_lattice(lattice, a) - 3 * filter_lattice(lattice, b)
    )
    matrix = filter_lattice(lattice, np.eye(72))
    np.testing.assert_allclose(filter_lattice(lattice, np.eye(72), reverse=True), matrix.T, atol=1e-14)
    # symmetric only up to the truncated blurs, which do not commute (measured 0.15 here, 0.03 on a full
    # 2-D grid); the adjoint (reverse), which the backward pass uses, is exact
    assert np.linalg.norm(matrix - matrix.T) < 0.2 * np.linalg.norm(matrix)
    grid = filter_lattice(build_lattice(spatial_features(15, 20, 3.0)), np.eye(300))
    assert np.linalg.norm(grid - grid.T) < 0.05 * np.linalg.norm(grid)


def test_float32_values_stay_float32() -> None:
    lattice = build_lattice(spatial_features(6, 7, 2.0))
    assert filter_lattice(lattice, np.ones((42, 2), np.float32)).dtype == np.float32
    assert filter_lattice(lattice, np.ones((42, 2))).dtype == np.float64


def test_mean_field_improves_noisy_unaries() -> None:
    image, unaries, truth = _two_regions()
    q, logits = mean_field(unaries, image, _params(3, 20.0), iterations=10)  # the image is 40 px wide
    before, after = (unaries.argmax(0) == truth).mean(), (q.argmax(0) == truth).mean()
    print(f"synthetic two-region accuracy: unaries {before:.3f} -> CRF {after:.3f}")
    assert after > before + 0.2 and after > 0.95
    np.testing.assert_allclose(q.sum(0), 1.0, atol=1e-5)
    assert q.shape == logits.shape == unaries.shape


def test_zero_iterations_is_softmax_and_kernels_are_reusable() -> None:
    image, unaries, _ = _two_regions(10, 12)
    q0, logits0 = mean_field(unaries, image, iterations=0)
    np.testing.assert_allclose(logits0, unaries)
    kernels = ImageKernels.build(image)
    np.testing.assert_allclose(mean_field(unaries, image, kernels=kernels)[0], mean_field(unaries, image)[0])
    pruned, _ = mean_field(unaries, image, kernels=kernels, min_probability=0.5)  # drops some senders
    assert np.abs(pruned - mean_field(unaries, image, kernels=kernels)[0]).max() < 0.1
    with pytest.raises(ValueError):
        mean_field(unaries, image[:5])


def test_refine_photo_at_working_resolution() -> None:
    image, unaries, truth = _two_regions(60, 80, seed=8)
    photo = Image.fromarray(image.astype(np.uint8))
    assert working_size(8000, 6000) == (500, 375) and working_size(320, 240) == (320, 240)
    network = resize_planes(unaries, (24, 24))  # unaries at a network's square resolution
    labels = refine_photo(network, photo, _params(3, 40.0), max_pixels=1200)  # works at 40 x 30
    assert labels.shape == (60, 80) and labels.dtype == np.uint8
    assert (labels == truth).mean() > 0.95
    full = refine_photo(resize_planes(unaries, (80, 60)), photo, _params(3, 40.0))
    assert (full == truth).mean() > 0.95


torch = pytest.importorskip("torch")

from engine.segmentation.crf.crfrnn import CrfRnn  # noqa: E402


def test_torch_and_numpy_agree() -> None:
    image, unaries, _ = _two_regions(20, 24, noise=1.5, seed=4)
    layer = CrfRnn(3, theta_alpha=20.0).eval()
    with torch.no_grad():  # learned-looking weights, handed to numpy through to_params
        layer.compatibility.add_(0.3 * torch.tensor(np.random.default_rng(1).normal(size=(3, 3)), dtype=torch.float32))
    q_np, logits_np = mean_field(unaries, image, layer.to_params(), iterations=10)
    with torch.no_grad():
        logits_t = layer(torch.tensor(unaries)[None], [image])[0]
    q_t = torch.softmax(logits_t, 0).numpy()
    assert np.abs(q_t - q_np).max() < 1e-4
    np.testing.assert_array_equal(q_t.argmax(0), q_np.argmax(0))
    assert layer.training is False and layer.eval_iterations == 10 and layer.train_iterations == 5


def test_gradcheck_unaries_and_parameters() -> None:
    rng = np.random.default_rng(5)
    image = rng.uniform(0, 255, (5, 6, 3))
    layer = CrfRnn(3, theta_alpha=4.0, theta_beta=60.0, theta_gamma=2.0).double()
    kernels = [layer.kernels(image)]
    names = [name for name, _ in layer.named_parameters()]
    params = [(p.detach() + torch.tensor(rng.normal(0, 0.3, p.shape))).requires_grad_(True) for p in layer.parameters()]
    unaries = torch.tensor(rng.normal(size=(1, 3, 5, 6)), requires_grad=True)

    def run(u: torch.Tensor, *values: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(
            layer, dict(zip(names, values, strict=True)), (u, None), {"kernels": kernels, "iterations": 2}
        )

    assert torch.autograd.gradcheck(run, (unaries, *params))


def test_batch_of_different_sizes_matches_single_images() -> None:
    first, u1, _ = _two_regions(12, 16, seed=6)
    second, u2, _ = _two_regions(9, 14, seed=7)
    layer = CrfRnn(3, theta_alpha=20.0).train()
    batch = torch.zeros(2, 3, 12, 16)
    batch[0], batch[1, :, :9, :14] = torch.tensor(u1), torch.tensor(u2)
    images = torch.zeros(2, 3, 12, 16)
    images[0], images[1, :, :9, :14] = torch.tensor(first).permute(2, 0, 1), torch.tensor(second).permute(2, 0, 1)
    out = layer(batch, images, sizes=[(12, 16), (9, 14)])
    assert out.shape == batch.shape
    alone = layer(torch.tensor(u2)[None], [second])[0]
    torch.testing.assert_close(out[1, :, :9, :14], alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[1, :, 9:], batch[1, :, 9:])
    q_np, _ = mean_field(u1, first, _params(3, 20.0), iterations=5)  # training mode: T = 5
    assert np.abs(torch.softmax(out[0], 0).detach().numpy() - q_np).max() < 1e-4
    loss = torch.nn.functional.cross_entropy(out, torch.zeros(2, 12, 16, dtype=torch.long))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in layer.parameters())


def _reference_folder() -> Path | None:
    env = os.environ.get("PENWRIGHT_SHARED")
    folder = (Path(env) if env else REPO.parent / "shared") / "models" / "espnetv2" / "reference"
    return folder if (folder / "images").is_dir() else None


def _resize_logits(logits: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """C x S x S network logits -> C x H x W at the image size (bilinear, per class, Pillow float mode)."""
    bilinear = Image.Resampling.BILINEAR
    return np.stack([np.asarray(Image.fromarray(c, "F").resize(size, bilinear)) for c in logits.astype(np.float32)])


def _near_edges(labels: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within `radius` (city-block) of a label boundary."""
    edge = np.zeros(labels.shape, bool)
    for axis in (0, 1):
        step = np.diff(labels, axis=axis) != 0
        pad = [(0, 0), (0, 0)]
        pad[axis] = (1, 0)
        edge |= np.pad(step, pad)
        pad[axis] = (0, 1)
        edge |= np.pad(step, pad)
    for _ in range(radius):
        grown = edge.copy()
        grown[1:] |= edge[:-1]
        grown[:-1] |= edge[1:]
        grown[:, 1:] |= edge[:, :-1]
        grown[:, :-1] |= edge[:, 1:]
        edge = grown
    return edge


@pytest.mark.needs_data
def test_espnetv2_unaries_change_only_near_edges() -> None:
    folder = _reference_folder()
    if folder is None:
        pytest.skip("ESPNetv2 reference outputs not found: set PENWRIGHT_SHARED or place them at ../shared")
    image = Image.open(folder / "images" / "densecrf_im1.png").convert("RGB")  # 320 x 240
    unaries = _resize_logits(np.load(folder / "densecrf_im1_s2.0_logits.npy"), image.size)  # 21 x 384 x 384
    q, _ = mean_field(unaries, np.asarray(image), iterations=5)
    before, after = unaries.argmax(0), q.argmax(0)
    changed = before != after
    near = (changed & _near_edges(before, 10)).sum() / max(changed.sum(), 1)
    print(f"densecrf_im1 s2.0: {changed.mean():.2%} of labels changed, {near:.1%} of them within 10 px of an edge")
    assert changed.mean() < 0.05
    assert near > 0.9
    assert set(np.unique(after)) <= set(np.unique(before))


def test_sparse_filter_matches_the_numpy_lattice_and_falls_back_without_scipy(monkeypatch) -> None:
    from engine.segmentation.crf import kernels as kernels_module
    from engine.segmentation.crf.permutohedral import SparseFilter

    image = _smooth_image(30, 40, 1)
    for features in (spatial_features(30, 40, 3.0), bilateral_features(image, 20.0, 8.0)):
        lattice = build_lattice(features)
        values = np.random.default_rng(2).random((1200, 4)).astype(np.float32)
        np.testing.assert_allclose(SparseFilter(lattice)(values), filter_lattice(lattice, values), rtol=1e-5, atol=1e-6)
    kernel = NormalisedKernel(bilateral_features(image, 20.0, 8.0))
    fast = kernel(values)

    def no_scipy(lattice, scale=None):
        raise ImportError("no scipy")

    scale = np.array([2.0, -0.5, 0.0, 3.0])  # a factor per channel: applied to the grid on the sparse path
    fast_scaled = kernel(values, scale)
    np.testing.assert_allclose(fast_scaled, fast * scale.astype(np.float32), rtol=1e-5, atol=1e-6)
    monkeypatch.setattr(kernels_module, "SparseFilter", no_scipy)
    slow = NormalisedKernel(bilateral_features(image, 20.0, 8.0))
    np.testing.assert_allclose(slow(values), fast, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(slow(values, scale), fast_scaled, rtol=1e-5, atol=1e-6)


def test_steps_yield_every_iteration_and_pruning_keeps_full_q() -> None:
    from engine.segmentation.crf.meanfield import mean_field_steps

    image, unaries, _ = _two_regions()
    wide = np.concatenate([unaries, np.full((4, *unaries.shape[1:]), -12.0, np.float32)])  # 4 classes never used
    steps = list(mean_field_steps(wide, image, _params(7, 20.0), iterations=3, min_probability=0.01))
    assert len(steps) == 4 and len(steps[-1].live) == 3
    q, logits = steps[-1].full()
    np.testing.assert_allclose(q.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(steps[-1].planes(), q.T)
    exact, _ = mean_field(wide, image, _params(7, 20.0), iterations=3)
    assert np.abs(q.T.reshape(exact.shape) - exact).max() < 1e-4
    np.testing.assert_array_equal(logits[:, 3:], wide[3:].reshape(4, -1).T)  # unused classes keep their unaries


def test_float32_iteration_matches_float64_for_diagonal_and_full_mappings() -> None:
    """The float32 fast path (scipy sparse filters, BLAS-free mapping, compact argmax) against the float64
    iteration through `filter_lattice`, for Potts (diagonal) and full mixing matrices."""
    from engine.segmentation.crf.meanfield import mean_field_steps

    image, unaries, _ = _two_regions(24, 32, seed=3)
    wide = np.concatenate([unaries, np.full((2, *unaries.shape[1:]), -9.0, np.float32)])
    full = _params(5, 20.0)
    full.bilateral_weights = full.bilateral_weights + 0.3 * np.random.default_rng(1).random((5, 5))
    for params in (_params(5, 20.0), full):
        kernels = ImageKernels.build(image, *params.thetas)
        for min_probability in (0.0, 0.01):
            fast = list(mean_field_steps(wide, image, params, 4, kernels, min_probability))[-1].compact()
            exact = list(mean_field_steps(wide.astype(np.float64), image, params, 4, kernels, min_probability))
            exact_q = exact[-1].planes()
            np.testing.assert_allclose(fast.planes(), exact_q, atol=2e-5)
            np.testing.assert_array_equal(fast.argmax(), fast.planes().argmax(0))
            assert (fast.argmax() == exact_q.argmax(0)).mean() > 0.999


def test_learned_parameters_round_trip_and_refuse_other_class_counts(tmp_path) -> None:
    from engine.segmentation.crf.learned import load_learned_params, load_params, save_params
    from engine.segmentation.errors import SegmentationModelError

    params = CrfParams.default(3)
    params.compatibility = params.compatibility * 0.5
    save_params(tmp_path / "p.npz", params, note="test")
    back = load_params(tmp_path / "p.npz")
    np.testing.assert_allclose(back.compatibility, params.compatibility)
    assert back.thetas == params.thetas
    with pytest.raises(SegmentationModelError, match="for 3 classes, this model has 21"):
        load_learned_params(21, tmp_path / "p.npz")
    with pytest.raises(SegmentationModelError, match="no learned CRF parameters"):
        load_learned_params(3, tmp_path / "absent.npz")


def test_fit_split_is_deterministic_and_disjoint(tmp_path) -> None:
    from engine.segmentation.crf.fit import split

    for name, count in (("coco128-voc", 5), ("labelme-voc", 2), ("voc2012-val", 1)):
        for kind in ("images", "masks"):
            (tmp_path / name / kind).mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (4, 4)).save(tmp_path / name / "images" / f"{i:03}.jpg")
            Image.new("L", (4, 4)).save(tmp_path / name / "masks" / f"{i:03}.png")
    sets = split(tmp_path)
    names = {key: [s.name for s in value] for key, value in sets.items()}
    assert names["fit"] == [
        "coco128-voc/000",
        "coco128-voc/002",
        "coco128-voc/004",
        "labelme-voc/000",
        "labelme-voc/001",
    ]
    assert names["coco-held"] == ["coco128-voc/001", "coco128-voc/003"] and names["voc-held"] == ["voc2012-val/000"]


def test_shipped_learned_parameters_load_for_the_voc_classes() -> None:
    from engine.segmentation.crf.learned import LEARNED_PATH, load_learned_params

    assert LEARNED_PATH.is_file() and LEARNED_PATH.with_suffix(".md").is_file()  # the parameters and their card
    params = load_learned_params(21)
    default = CrfParams.default(21)
    assert params.spatial_weights.shape == (21, 21) and min(params.thetas) > 0
    assert params.thetas != default.thetas or not np.allclose(params.bilateral_weights, default.bilateral_weights)
    with np.load(LEARNED_PATH) as data:  # the card's reproduce command is the one that wrote the file
        command = str(data["meta_command"])
    assert command.startswith("python -m engine.segmentation.crf.fit search ")
    assert command in LEARNED_PATH.with_suffix(".md").read_text().replace("\\\n    ", "")
