"""ESPNetv2 in ONNX Runtime without torch: the shipped weightless graphs, filled from the published `.pth`.

The graphs in resources/models hold no weights (checked here); the needs_data tests read the checkpoints
from $PENWRIGHT_SHARED/models/espnetv2 or ../shared/models/espnetv2 and skip when they are absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.segmentation.errors import SegmentationModelError
from engine.segmentation.manifest import SegmentationWeights
from engine.segmentation.onnx_espnet import GRAPH_DIR, OnnxEspnetSource, graph_paths

REPO = Path(__file__).resolve().parents[2]
S2, S05 = SegmentationWeights.ESPNETV2_S2_0_PASCAL_384, SegmentationWeights.ESPNETV2_S0_5_PASCAL_256
NO_DATA = "ESPNetv2 checkpoints not found: set PENWRIGHT_SHARED or place them at ../shared/models/espnetv2"


def shared_dir() -> Path:
    env = os.environ.get("PENWRIGHT_SHARED")
    return (Path(env) if env else REPO.parent / "shared") / "models" / "espnetv2"


def checkpoint(weights: SegmentationWeights) -> Path:
    path = shared_dir() / weights.meta.checkpoint
    if not path.is_file():
        pytest.skip(NO_DATA)
    return path


@pytest.mark.parametrize("weights", [S2, S05], ids=["s2.0", "s0.5"])
def test_shipped_graphs_hold_no_weights(weights: SegmentationWeights) -> None:
    graph, meta = graph_paths(weights)
    description = json.loads(meta.read_text())
    assert description["model"] == weights.meta.name
    assert graph.stat().st_size < 400_000  # structure only (the s2.0 weights alone are 3 MB)
    assert len(description["initializers"]) > 400
    data = graph.read_bytes()
    assert data.count(b"weights-from-the-checkpoint") == len(description["initializers"])
    values = sum(int(np.prod(shape)) for shape in description["initializers"].values())
    assert values * 4 > len(data)  # the weights could not even fit in the file


def test_missing_graph_or_checkpoint_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(SegmentationModelError, match="cannot run espnetv2-s2.0-pascal-384 without PyTorch"):
        OnnxEspnetSource(S2, tmp_path / "x.pth", folder=tmp_path)
    with pytest.raises(SegmentationModelError, match="does not exist"):
        OnnxEspnetSource(S2, tmp_path / "x.pth", folder=GRAPH_DIR)


@pytest.mark.needs_data
@pytest.mark.parametrize("weights", [S2, S05], ids=["s2.0", "s0.5"])
def test_onnx_logits_and_labels_match_torch(weights: SegmentationWeights) -> None:
    pytest.importorskip("torch")
    from engine.segmentation.sources import TorchEspnetSource

    path = checkpoint(weights)
    torch_source, onnx_source = TorchEspnetSource(weights, path), OnnxEspnetSource(weights, path)
    reference = shared_dir() / "reference" / "images"
    images = [Image.open(p).convert("RGB") for p in sorted(reference.glob("*"))] if reference.is_dir() else []
    for image in images or [Image.new("RGB", (50, 40), (90, 140, 200))]:
        expected, got = torch_source.logits(image), onnx_source.logits(image)
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() < 1e-3
        top2 = np.sort(expected, axis=0)[-2:]
        clear = top2[1] - top2[0] > 1e-3  # float rounding can only flip near-ties
        np.testing.assert_array_equal(got.argmax(0)[clear], expected.argmax(0)[clear])
        assert (got.argmax(0) != expected.argmax(0)).mean() < 1e-4


@pytest.mark.needs_data
def test_job_runs_with_torch_blocked_and_matches_the_torch_path(tmp_path) -> None:
    pytest.importorskip("torch")
    from engine.segmentation.job import SegmentationJob, SegmentationRequest

    path = checkpoint(S2)
    image = shared_dir() / "reference" / "images" / "crfasrnn_image.jpg"
    if not image.is_file():
        image = tmp_path / "photo.png"
        Image.new("RGB", (80, 60), (30, 120, 220)).save(image)
    out = tmp_path / "labels.npy"
    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None  # any import of torch now fails
        import numpy as np
        from engine.segmentation.job import SegmentationJob, SegmentationRequest
        request = SegmentationRequest({str(image)!r}, model={str(path)!r}, iterations=3, max_pixels=40_000)
        result = SegmentationJob(request).run()
        assert result.backend == "onnx", result.backend
        assert sys.modules["torch"] is None
        np.save({str(out)!r}, result.labels)
        from engine.cli import main  # the app's way in: install the checkpoint, then segment by name
        assert main(["models", "install", {str(path)!r}]) == 0
        assert main(["segment", {str(image)!r}, "-o", {str(tmp_path / "cli.png")!r}, "--crf", "none"]) == 0
    """)
    env = {**os.environ, "PENWRIGHT_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    expected = SegmentationJob(
        SegmentationRequest(image, model=str(path), iterations=3, backend="torch", max_pixels=40_000)
    ).run()
    np.testing.assert_array_equal(np.load(out), expected.labels)
    assert "wrote" in done.stdout and Image.open(tmp_path / "cli.png").size == Image.open(image).size
