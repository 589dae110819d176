"""The segmentation job API (engine.segmentation.job): shapes, progress, cancel, CRF re-runs, errors.

Most tests use a small fake unary source (no weights needed); the needs_data test runs the published
ESPNetv2 s0.5 checkpoint from $PENWRIGHT_SHARED/models/espnetv2 or ../shared/models/espnetv2 (skipped
when absent; nothing is copied into the repo).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.segmentation import job as job_module
from engine.segmentation.crf import meanfield
from engine.segmentation.crf.meanfield import CrfParams
from engine.segmentation.crf.working import refine_photo
from engine.segmentation.job import (
    SegmentationCancelled,
    SegmentationInputError,
    SegmentationJob,
    SegmentationModelError,
    SegmentationRequest,
    rerun_crf,
)
from engine.segmentation.preprocessing import labels_from_logits, resize_labels

REPO = Path(__file__).resolve().parents[2]
NO_DATA = "ESPNetv2 checkpoints not found: set PENWRIGHT_SHARED or place them at ../shared/models/espnetv2"


class FakeSource:
    """Three classes at a 24 x 16 'network resolution': background, left disc (red), right disc (blue)."""

    name = "fake-3"
    classes = ("background", "red", "blue")
    palette = ((0, 0, 0), (200, 0, 0), (0, 0, 200))
    backend = "fake"

    def __init__(self) -> None:
        self.calls = 0

    def logits(self, photo: Image.Image) -> np.ndarray:
        self.calls += 1
        rgb = np.asarray(photo.convert("RGB").resize((24, 16), Image.Resampling.BILINEAR), np.float32) / 255
        rng = np.random.default_rng(0)
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        scores = np.stack([1.2 * g, r - g, b - g])
        return (scores + rng.normal(0, 0.3, scores.shape)).astype(np.float32)


def photo(size: tuple[int, int] = (60, 40)) -> Image.Image:
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.full((h, w, 3), 230, np.uint8)
    rgb[(x - w / 4) ** 2 + (y - h / 2) ** 2 < (h / 3) ** 2] = (220, 30, 30)
    rgb[(x - 3 * w / 4) ** 2 + (y - h / 2) ** 2 < (h / 3) ** 2] = (30, 30, 220)
    return Image.fromarray(rgb, "RGB")


def small_params(theta_alpha: float = 20.0) -> CrfParams:
    params = CrfParams.default(3)
    params.theta_alpha = theta_alpha
    return params


def run(request: SegmentationRequest, source=None, progress=None):
    return SegmentationJob(request, progress, source=source or FakeSource()).run()


def test_result_shapes_and_final_labels_match_refine_photo() -> None:
    image = photo()
    source = FakeSource()
    result = run(SegmentationRequest(image, crf_params=small_params(), iterations=4), source)
    assert result.photo_size == (60, 40)
    assert result.working_image.shape == (40, 60, 3) and result.working_image.dtype == np.uint8
    assert result.unary_probabilities.shape == (3, 40, 60) and result.unary_probabilities.dtype == np.float32
    np.testing.assert_allclose(result.unary_probabilities.sum(0), 1.0, atol=1e-5)
    assert len(result.iteration_q) == 5 and result.iterations == 4
    assert all(q.shape == (3, 40, 60) for q in result.iteration_q)
    np.testing.assert_allclose(result.iteration_q[0], result.unary_probabilities, atol=1e-3)
    assert result.labels.shape == (40, 60) and result.labels.dtype == np.uint8
    expected = refine_photo(source.logits(image), image, small_params(), iterations=4)
    np.testing.assert_array_equal(result.labels, expected)
    assert result.classes == FakeSource.classes and result.model_name == "fake-3" and result.crf_mode == "default"
    np.testing.assert_array_equal(result.labels_at(4), result.labels)
    np.testing.assert_array_equal(result.labels_at(-1), result.labels)
    assert set(np.unique(result.labels)) == {0, 1, 2}


def test_labels_and_probability_at_every_iteration_on_a_larger_photo() -> None:
    image = photo((120, 90))
    request = SegmentationRequest(image, crf_params=small_params(), iterations=3, max_pixels=60 * 45)
    result = run(request)
    assert result.working_image.shape[:2] == (45, 60)  # downscaled working resolution
    for t in range(4):
        labels = result.labels_at(t)
        assert labels.shape == (90, 120)
        agree = 0
        for x, y in [(5, 5), (30, 45), (90, 45), (119, 89), (60, 10)]:
            cls, prob = result.probability_at(t, x, y)
            assert 0 <= cls < 3 and 0.0 < prob <= 1.0
            agree += cls == labels[y, x]
        assert agree == 5
    with pytest.raises(IndexError):
        result.labels_at(4)
    with pytest.raises(IndexError):
        result.probability_at(0, 120, 0)


def test_no_crf_gives_the_networks_own_labels() -> None:
    image, source = photo(), FakeSource()
    result = run(SegmentationRequest(image, crf="none"), source)
    expected = resize_labels(labels_from_logits(source.logits(image)), image.size)
    np.testing.assert_array_equal(result.labels, expected)
    assert len(result.iteration_q) == 1 and result.params is None
    np.testing.assert_array_equal(result.labels_at(0), result.labels)


def test_progress_stages_in_order_with_one_report_per_iteration() -> None:
    reports: list[tuple[str, float]] = []
    request = SegmentationRequest(photo(), crf_params=small_params(), iterations=5)
    run(request, progress=lambda s, f: reports.append((s, f)))
    stages = [s for s, _ in reports]
    assert stages[0] == "loading model" and stages[-1] == "labels"
    order = ["loading model", "unaries", "crf", "labels"]
    assert [order.index(s) for s in stages] == sorted(order.index(s) for s in stages)
    crf = [f for s, f in reports if s == "crf"]
    assert crf == sorted(crf) and crf[-1] == 1.0
    assert [f for f in crf if f > 0] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])


def test_cancel_between_iterations_and_before_start() -> None:
    job: SegmentationJob

    def progress(stage: str, fraction: float) -> None:
        if stage == "crf" and fraction >= 0.4:
            job.cancel()

    job = SegmentationJob(SegmentationRequest(photo(), iterations=10), progress, source=FakeSource())
    with pytest.raises(SegmentationCancelled):
        job.run()
    source = FakeSource()
    early = SegmentationJob(SegmentationRequest(photo()), source=source)
    early.cancel()
    with pytest.raises(SegmentationCancelled):
        early.run()
    assert source.calls == 0  # stopped before the network ran


def test_cancel_from_another_thread() -> None:
    started, outcome = threading.Event(), []

    def progress(stage: str, fraction: float) -> None:
        if stage == "crf":
            started.set()

    job = SegmentationJob(SegmentationRequest(photo((200, 150)), iterations=100), progress, source=FakeSource())

    def work() -> None:
        try:
            job.run()
            outcome.append("finished")
        except SegmentationCancelled:
            outcome.append("cancelled")

    thread = threading.Thread(target=work)
    thread.start()
    assert started.wait(30)
    job.cancel()
    thread.join(30)
    assert outcome == ["cancelled"]


def test_rerun_crf_reuses_unaries_and_lattices(monkeypatch) -> None:
    image, source = photo(), FakeSource()
    first = run(SegmentationRequest(image, crf_params=small_params(), iterations=2), source)
    builds: list[str] = []
    original = job_module.NormalisedKernel

    def counted(features):
        builds.append("spatial" if features.shape[1] == 2 else "bilateral")
        return original(features)

    monkeypatch.setattr(job_module, "NormalisedKernel", counted)
    stronger = small_params()
    stronger.bilateral_weights = 10 * np.eye(3)
    again = rerun_crf(first, stronger, iterations=6)
    assert source.calls == 1 and builds == []  # no network, no new lattice
    fresh = run(SegmentationRequest(image, crf_params=stronger, iterations=6))
    builds.clear()
    np.testing.assert_array_equal(again.labels, fresh.labels)
    assert len(again.iteration_q) == 7 and again.params is stronger
    for t in (0, 3, 6):
        np.testing.assert_array_equal(again.iteration_q[t], fresh.iteration_q[t])
    rerun_crf(first, small_params(theta_alpha=10.0), iterations=1)  # another bilateral width: one new lattice
    assert builds == ["bilateral"]
    builds.clear()
    gamma = small_params()
    gamma.theta_gamma = 1.5
    rerun_crf(first, gamma, iterations=1)  # another spatial width: the bilateral lattice is kept
    assert builds == ["spatial"]
    no_crf = run(SegmentationRequest(image, crf="none"), source)
    assert rerun_crf(no_crf, iterations=2).crf_mode == "default"


def test_rerun_with_other_iterations_only_reuses_the_steps(monkeypatch) -> None:
    """Fewer iterations cut the steps already run, more continue from the last: no filtering is repeated,
    and the labels and every step equal a fresh run's."""
    from engine.segmentation.crf.kernels import NormalisedKernel

    image = photo((90, 60))
    first = run(SegmentationRequest(image, crf_params=small_params(), iterations=4))
    filtered: list[int] = []
    original = NormalisedKernel.__call__
    monkeypatch.setattr(NormalisedKernel, "__call__", lambda self, *a: filtered.append(1) or original(self, *a))
    for iterations, filterings in ((2, 0), (4, 0), (7, 2 * 3)):
        filtered.clear()
        again = rerun_crf(first, small_params(), iterations=iterations)  # equal parameters, new arrays
        assert len(filtered) == filterings and again.iterations == iterations
        fresh = run(SegmentationRequest(image, crf_params=small_params(), iterations=iterations))
        np.testing.assert_array_equal(again.labels, fresh.labels)
        for t in range(iterations + 1):
            np.testing.assert_array_equal(again.iteration_q[t], fresh.iteration_q[t])
    filtered.clear()
    rerun_crf(first, small_params(theta_alpha=30.0), iterations=3)  # other parameters: all iterations again
    assert len(filtered) == 2 * 3


def test_rerun_equals_a_fresh_mean_field_and_keeps_few_lattices() -> None:
    """The cached path (shared softmax, kept lattices, lazy steps, compact argmax) against mean_field."""
    from engine.segmentation.crf.working import working_params

    image = photo((90, 60))
    first = run(SegmentationRequest(image, crf_params=small_params(), iterations=1, min_probability=0.0))
    for alpha in (10.0, 15.0, 25.0, 30.0):
        params = small_params(theta_alpha=alpha)
        params.spatial_weights = np.array([[2.0, 0.5, 0], [0, 3, 0], [0.2, 0, 4]])  # not diagonal: the matmul path
        again = rerun_crf(first, params, iterations=4)
        assert again.iteration_q.materialised == 0  # nothing made before it is looked at
        scaled = working_params(params, first.photo_size, first.working_image.shape[1::-1])
        q, _ = meanfield.mean_field(first._unaries, first.working_image, scaled, iterations=4)
        np.testing.assert_array_equal(again.labels, q.argmax(0))
        np.testing.assert_allclose(again.iteration_q[4].astype(np.float32), q, atol=1e-3)
        assert again.iteration_q.materialised == 1
    assert len(first._kernels) == job_module.KERNEL_CACHE == 3


def test_bad_requests_raise_clear_errors(tmp_path, monkeypatch) -> None:
    with pytest.raises(SegmentationInputError, match="crf must be one of"):
        run(SegmentationRequest(photo(), crf="strong"))  # type: ignore[arg-type]
    with pytest.raises(SegmentationInputError, match="iterations"):
        run(SegmentationRequest(photo(), iterations=-1))
    with pytest.raises(SegmentationInputError, match="no such file"):
        run(SegmentationRequest(tmp_path / "missing.jpg"))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(SegmentationInputError, match="broken.jpg"):
        run(SegmentationRequest(broken))
    with pytest.raises(SegmentationInputError, match="3 classes"):
        run(SegmentationRequest(photo(), crf_params=CrfParams.default(21)))
    with pytest.raises(SegmentationInputError, match="PIL image or a file path"):
        run(SegmentationRequest(np.zeros((4, 4, 3))))  # type: ignore[arg-type]
    monkeypatch.setenv("PENWRIGHT_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(SegmentationModelError, match="no segmentation model called 'nope'"):
        SegmentationJob(SegmentationRequest(photo(), model="nope")).run()
    with pytest.raises(SegmentationModelError, match="not installed"):
        SegmentationJob(SegmentationRequest(photo())).run()
    with pytest.raises(SegmentationModelError, match="learned CRF"):
        run(SegmentationRequest(photo(), crf="learned"))  # fitted for 21 classes (or absent), not 3


@pytest.mark.parametrize("mode", ["RGBA", "L", "I;16", "CMYK", "P"])
def test_any_image_mode_and_tiny_images(mode: str) -> None:
    image = photo((30, 20)).convert(mode) if mode != "I;16" else Image.new("I;16", (30, 20), 40000)
    assert run(SegmentationRequest(image, iterations=2)).labels.shape == (20, 30)
    tiny = run(SegmentationRequest(Image.new("RGB", (1, 1), (200, 10, 10)), iterations=2))
    assert tiny.labels.shape == (1, 1) and tiny.probability_at(2, 0, 0)[1] > 0


def test_importing_the_job_api_does_not_import_torch() -> None:
    code = "import sys; sys.modules['torch'] = None\nimport engine.segmentation.job\nprint('ok')"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def shared_checkpoint(name: str) -> Path | None:
    env = os.environ.get("PENWRIGHT_SHARED")
    path = (Path(env) if env else REPO.parent / "shared") / "models" / "espnetv2" / name
    return path if path.is_file() else None


@pytest.mark.needs_data
def test_real_checkpoint_job_matches_the_cli_pipeline() -> None:
    pytest.importorskip("torch")
    path = shared_checkpoint("espnetv2_s_0.5_pascal_256x256.pth")
    if path is None:
        pytest.skip(NO_DATA)
    from engine.segmentation.manifest import SegmentationWeights
    from engine.segmentation.models import load_network, segment

    weights = SegmentationWeights.ESPNETV2_S0_5_PASCAL_256
    image = photo((100, 75))
    result = SegmentationJob(SegmentationRequest(image, model=str(path), iterations=3, backend="torch")).run()
    reference = segment(load_network(weights, path), image, weights)
    expected = refine_photo(reference.logits, image, iterations=3, min_probability=0.01)
    np.testing.assert_array_equal(result.labels, expected)
    assert result.classes == weights.meta.classes and result.model_name == weights.meta.name
    plain = SegmentationJob(SegmentationRequest(image, model=str(path), crf="none", backend="torch")).run()
    np.testing.assert_array_equal(plain.labels, reference.labels)


def test_zero_kernel_weights_skip_the_lattices_and_keep_the_unaries(monkeypatch) -> None:
    """No kernel weight means no messages (the shipped learned parameters): Q stays softmax(U) at every step."""
    image = photo()
    builds: list[int] = []
    original = job_module.NormalisedKernel
    monkeypatch.setattr(job_module, "NormalisedKernel", lambda features: builds.append(1) or original(features))
    params = small_params()
    params.spatial_weights = np.zeros((3, 3))
    params.bilateral_weights = np.zeros((3, 3))
    result = run(SegmentationRequest(image, crf_params=params, iterations=4), FakeSource())
    assert builds == [] and len(result.iteration_q) == 5
    for t in (0, 4):
        np.testing.assert_array_equal(result.iteration_q[t], result.iteration_q[0])
    monkeypatch.setattr(job_module, "NormalisedKernel", original)
    q, _ = meanfield.mean_field(result._unaries, result.working_image, params, iterations=4)
    np.testing.assert_array_equal(result.labels, q.argmax(0))
