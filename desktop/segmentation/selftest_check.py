"""`penwright --selftest=all`: segment the shipped sample photo with an installed model and export the PNGs.

It runs the network with ONNX Runtime, as the app does (a frozen build has no torch). The self-test
redirects the data folder to a temporary one, so the installed models are looked up where the user keeps
them: $PENWRIGHT_DATA_DIR when the user set it, else the platform's data folder. Nothing is written there.
With no model installed the check is skipped with a note saying how to install one.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

ITERATIONS = 5
MAX_PIXELS: int | None = None  # the CRF's working resolution: None = the engine's default (tests lower it)


def user_models_folder(selftest_tmp: Path) -> Path:
    """<user data>/models/segmentation, ignoring the self-test's own temporary data folder."""
    override = os.environ.get("PENWRIGHT_DATA_DIR")
    if override and not Path(override).resolve().is_relative_to(selftest_tmp.resolve()):
        base = Path(override)
    else:
        import platformdirs

        base = Path(platformdirs.user_data_dir("Penwright", appauthor=False))
    return base / "models" / "segmentation"


def check_segmentation(report: Any, selftest_tmp: Path) -> None:
    """Adds a 'segment the sample photo' line (ok, FAIL or skip) to the self-test's report."""
    from engine.segmentation.install import installed_models
    from engine.segmentation.manifest import SegmentationWeights

    folder = user_models_folder(selftest_tmp)
    try:
        usable = [m for m in installed_models(folder) if m.ok]
    except OSError as exc:
        usable = []
        report.line("note", "segmentation", f"could not read {folder}: {exc}")
    if not usable:
        report.line(
            "skip",
            "segment the sample photo",
            f"no segmentation model installed in {folder} (penwright models install FILE or models download)",
        )
        return
    default = SegmentationWeights.DEFAULT.meta.name
    model = next((m for m in usable if m.meta.name == default), usable[0])
    report.check("segment the sample photo", lambda: _segment_sample(model.path, selftest_tmp))


def _segment_sample(model_path: Path, out: Path) -> str:
    import numpy as np

    from desktop.segmentation import exports
    from desktop.segmentation.photos import SAMPLE_PHOTO, load_file
    from desktop.segmentation.view_model import SegmentationViewModel
    from engine.segmentation.job import SegmentationJob, SegmentationRequest

    started = time.perf_counter()
    photo = load_file(SAMPLE_PHOTO)
    options = {"max_pixels": MAX_PIXELS} if MAX_PIXELS else {}
    request = SegmentationRequest(
        photo.image, model=str(model_path), iterations=ITERATIONS, backend="onnx", **options
    )  # ONNX Runtime: what the app (and a frozen build without torch) runs
    result = SegmentationJob(request).run()
    if result.labels.shape != photo.pixels.shape[:2]:
        raise RuntimeError(f"labels {result.labels.shape} do not fit the {photo.image.size} photo")
    counts = np.bincount(result.labels.ravel(), minlength=len(result.classes))
    found = [result.classes[i] for i in np.argsort(counts)[::-1] if counts[i] and i != 0]
    if not found:
        raise RuntimeError("nothing but background was found in the sample photo (a cat)")
    model = SegmentationViewModel()
    model.set_result(result)
    written = [
        exports.export_class_ids(model, out / "sample-classes.png"),
        exports.export_overlay(model, photo.pixels, out / "sample-overlay.png"),
        exports.export_side_by_side(model, photo.pixels, out / "sample-compare.png"),
    ]
    if any(not path.is_file() or path.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n" for path in written):
        raise RuntimeError("the exported PNGs were not written")
    share = counts[result.classes.index(found[0])] / result.labels.size
    return (
        f"{result.model_name} ({result.backend}), default CRF x {ITERATIONS}: {found[0]} on {100 * share:.0f} % of the "
        f"photo; 3 PNGs exported in {time.perf_counter() - started:.1f} s"
    )
