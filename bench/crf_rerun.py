"""CRF re-run speed on a 500 x 375 photo: the engine's `rerun_crf` and the viewer, from a CRF panel edit to
the new labels on screen. Last line: ``rerun_s=<median>`` (the engine, weight-only change, wall seconds).

    python bench/crf_rerun.py [--runs 5] [--no-viewer]

The photo is the shipped sample (resources/samples/chelsea.png, 451 x 300) resized to 500 x 375, the CRF
size the issue asks about. Unaries: ESPNetv2 s2.0 in ONNX Runtime when its checkpoint is found
($PENWRIGHT_SHARED or ../shared/models/espnetv2), else smooth random logits (fixed seed, 21 classes, 4
present). 10 mean-field iterations, crfasrnn's default parameters, the job's min_probability (0.01).

Measured, each the median of --runs (wall and process CPU seconds; CPU is the fair figure on a shared
machine, wall what a person waits):
- weight: `rerun_crf` with another spatial weight (lattices and unaries cached: the CRF alone);
- iterations: `rerun_crf` with the same parameters and 5 or 15 instead of 10 iterations (the steps already
  run are kept: cut, or continued for 5 more);
- theta: `rerun_crf` with another theta_alpha each time (a new bilateral lattice; the spatial one kept);
- viewer: the Segmentation tab (offscreen) with the same unaries: a spin box edited -> the re-run's labels
  drawn (`_segmented` returned and the event loop turned), with the panel's debounce (what a person
  sees) and without it (the panel flushed at once).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.segmentation.job import CrfParams, SegmentationJob, SegmentationRequest, rerun_crf  # noqa: E402

SIZE = (500, 375)
CHECKPOINT = "models/espnetv2/espnetv2_s_2.0_pascal_384x384.pth"


class RandomSource:
    """21 classes at a 48 x 36 'network resolution': 4 of them smooth random fields (fixed seed), the other
    17 far below (as in a real photo, where a few classes are present)."""

    name, backend = "random-21", "random"
    classes = tuple(f"class {i}" for i in range(21))
    palette = tuple((37 * i % 256, 91 * i % 256, 53 * i % 256) for i in range(21))

    def logits(self, photo: Image.Image) -> np.ndarray:
        coarse = np.full((21, 6, 8), -8.0, np.float32)
        coarse[[0, 8, 12, 15]] = np.random.default_rng(0).normal(0, 2, (4, 6, 8))
        bicubic = Image.Resampling.BICUBIC
        return np.stack([np.asarray(Image.fromarray(c, "F").resize((48, 36), bicubic)) for c in coarse])


def shared() -> Path:
    env = os.environ.get("PENWRIGHT_SHARED")
    return Path(env) if env else REPO.parent / "shared"


def unary_source() -> tuple[object, str]:
    checkpoint = shared() / CHECKPOINT
    if checkpoint.is_file():
        from engine.segmentation.sources import open_source

        return open_source(str(checkpoint), "onnx"), "ESPNetv2 s2.0 (ONNX Runtime)"
    return RandomSource(), "smooth random logits (no checkpoint found)"


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def medians(times: list[tuple[float, float]]) -> str:
    walls, cpus = zip(*times, strict=True)
    spread = f"walls {min(walls):.3f}-{max(walls):.3f}"
    return f"wall {statistics.median(walls):.3f} s, cpu {statistics.median(cpus):.3f} s ({spread})"


def with_params(base: CrfParams, spatial: float = 3.0, alpha: float = 160.0) -> CrfParams:
    return CrfParams(spatial * np.eye(len(base.spatial_weights)), base.bilateral_weights, base.compatibility, alpha)


def engine(photo: Image.Image, source: object, runs: int) -> float:
    request = SegmentationRequest(photo, iterations=10)
    start = time.perf_counter()
    result = SegmentationJob(request, source=source).run()  # type: ignore[arg-type]
    first_wall = time.perf_counter() - start
    base = result.params
    assert base is not None
    print(f"first run (network + lattices + CRF): wall {first_wall:.2f} s; CRF at {result.working_image.shape[1::-1]}")
    weight = [timed(lambda k=k: rerun_crf(result, with_params(base, 2.0 + 0.3 * k))) for k in range(runs)]
    print(f"weight change: {medians(weight)}")
    for more in (5, 15):
        iterations = [timed(lambda n=more: rerun_crf(result, with_params(base), iterations=n)) for _ in range(runs)]
        print(f"iterations 10 -> {more}: {medians(iterations)}")
    theta = [timed(lambda k=k: rerun_crf(result, with_params(base, alpha=100.0 + 10 * k))) for k in range(runs)]
    print(f"theta_alpha change (new bilateral lattice): {medians(theta)}")
    back = rerun_crf(rerun_crf(result, with_params(base, 1.0)), with_params(base))  # all 10 iterations again
    agree = float((back.labels == result.labels).mean())
    print(f"another weight, then the first run's parameters again: labels agree on {agree:.4%} of pixels")
    return statistics.median(w for w, _ in weight)


def viewer(photo: Image.Image, source: object, runs: int) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    data = tempfile.mkdtemp(prefix="penwright-bench-")
    os.environ["PENWRIGHT_DATA_DIR"] = data
    from PySide6.QtCore import QEventLoop, QSettings
    from PySide6.QtWidgets import QApplication

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, data)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    from desktop.segmentation.crf_panel import DEBOUNCE_MS
    from desktop.segmentation.photos import from_pil
    from desktop.segmentation.tab import SegmentationTab

    tab = SegmentationTab(lambda request, progress: SegmentationJob(request, progress, source=source))
    tab.resize(1100, 700)
    tab.show()
    loop = QEventLoop()
    segmented = tab._segmented

    def shown(result: object) -> None:  # the tab's own handler (labels, overlay, legend), then stop waiting
        segmented(result)
        loop.quit()

    tab._segmented = shown  # type: ignore[method-assign]
    tab.set_photo(from_pil(photo, "bench"), segment=True)
    loop.exec()
    panel = tab.crf_panel
    edits = 0
    for debounced in (True, False):
        times = []
        for _ in range(runs):
            edits += 1
            start, cpu = time.perf_counter(), time.process_time()
            panel.spatial_weight.setValue(2.0 + 0.5 * (edits % 5))  # always another value than the last
            if not debounced:
                panel.flush()
            loop.exec()  # until the re-run's result has been shown
            app.processEvents()  # and painted
            times.append((time.perf_counter() - start, time.process_time() - cpu))
        what = f"with the {DEBOUNCE_MS} ms debounce" if debounced else "panel flushed at once"
        print(f"viewer, weight edit -> labels drawn ({what}): {medians(times)}; tab says: {tab.status_text}")
    tab.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-viewer", action="store_true", help="the engine only (no PySide6 needed)")
    args = parser.parse_args()
    photo = Image.open(REPO / "resources/samples/chelsea.png").convert("RGB").resize(SIZE, Image.Resampling.BICUBIC)
    source, what = unary_source()
    print(f"{SIZE[0]}x{SIZE[1]} photo (chelsea.png resized), unaries: {what}, 10 iterations, {os.cpu_count()} CPUs")
    weight_wall = engine(photo, source, args.runs)
    if not args.no_viewer:
        viewer(photo, source, args.runs)
    print(f"rerun_s={weight_wall:.3f}")


if __name__ == "__main__":
    main()
