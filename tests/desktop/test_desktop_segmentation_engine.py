"""The Segmentation tab and `--selftest=all` with the real engine and a published ESPNetv2 checkpoint.

The checkpoint is installed through the tab's model picker (install from file, on the worker) into this
test's own data folder ($PENWRIGHT_DATA_DIR, set by conftest) from $PENWRIGHT_SHARED/models/espnetv2 or
../shared/models/espnetv2; skipped when absent. The small s0.5 model keeps it to a few seconds.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
CHECKPOINT = "espnetv2_s_0.5_pascal_256x256.pth"

pytestmark = pytest.mark.needs_data


def shared_checkpoint() -> Path:
    env = os.environ.get("PENWRIGHT_SHARED")
    path = (Path(env) if env else REPO.parent / "shared") / "models" / "espnetv2" / CHECKPOINT
    if not path.is_file():
        pytest.skip(f"ESPNetv2 checkpoint {CHECKPOINT} not found: set PENWRIGHT_SHARED or use ../shared")
    return path


def test_install_from_file_then_segment_the_sample_with_the_real_engine(qtbot, tmp_path):
    from desktop.segmentation.tab import SegmentationTab

    checkpoint = shared_checkpoint()
    tab = SegmentationTab()
    tab.request_options = {"max_pixels": 225 * 150}
    qtbot.addWidget(tab)
    tab.show()
    qtbot.waitUntil(lambda: tab.photo is not None and not tab.busy, timeout=5000)
    assert not tab.picker.has_model
    tab.segment()
    assert "No segmentation model installed" in tab.status_text
    # a file that is not a known checkpoint: a readable error, nothing installed
    bogus = tmp_path / "bogus.pth"
    bogus.write_bytes(b"not a checkpoint")
    tab.picker.install(str(bogus))
    qtbot.waitUntil(lambda: not tab.picker.jobs.busy, timeout=10000)
    assert "Could not install the model" in tab.status_text and "not a segmentation checkpoint" in tab.status_text
    assert not tab.picker.has_model
    # the real one installs, is listed and selected
    tab.picker.install(str(checkpoint))
    qtbot.waitUntil(lambda: not tab.picker.jobs.busy, timeout=10000)
    assert tab.picker.current == "espnetv2-s0.5-pascal-256"
    assert "Installed espnetv2-s0.5-pascal-256" in tab.status_text
    tab.crf_panel.iterations.setValue(3)
    tab.crf_panel.flush_silently()
    tab.segment()
    qtbot.waitUntil(lambda: tab.model.has_result and not tab.busy, timeout=60000)
    result = tab.model.result
    assert result.model_name == "espnetv2-s0.5-pascal-256" and result.labels.shape == (300, 451)
    assert tab.model.last_iteration == 3
    assert "cat" in tab.legend.shown_names()  # the sample is Chelsea the cat
    cat = result.classes.index("cat")
    assert np.mean(result.labels == cat) > 0.3
    tab.shutdown()


def test_selftest_all_segments_the_sample(tmp_path, monkeypatch):
    from desktop.segmentation import selftest_check
    from desktop.segmentation.selftest_check import check_segmentation
    from engine.segmentation.install import install_from_file

    data = tmp_path / "user-data"
    monkeypatch.setattr(selftest_check, "MAX_PIXELS", 225 * 150)  # a quarter of the work, same checks
    monkeypatch.setenv("PENWRIGHT_DATA_DIR", str(data))

    class Report:
        def __init__(self) -> None:
            self.lines: list[tuple[str, str, str]] = []

        def line(self, status, name, detail=""):
            self.lines.append((status, name, detail))

        def check(self, name, func):
            self.line("ok", name, func())

    selftest_tmp = tmp_path / "selftest"
    selftest_tmp.mkdir()
    install_from_file(shared_checkpoint(), data / "models" / "segmentation")
    report = Report()
    check_segmentation(report, selftest_tmp)
    status, name, detail = report.lines[-1]
    assert status == "ok" and "cat on" in detail, detail
    assert sorted(p.name for p in selftest_tmp.glob("sample-*.png")) == [
        "sample-classes.png",
        "sample-compare.png",
        "sample-overlay.png",
    ]
