"""One place that opens ONNX Runtime sessions for segmentation networks (CPU; thread count from the env).

Why: both the project's ESPNetv2 graph and users' own ONNX models run here, and a model ONNX Runtime
cannot load must become a SegmentationModelError that names the file, not a raw runtime error.
"""

from __future__ import annotations

import os

from engine.segmentation.errors import SegmentationModelError


def open_session(model: bytes, source: str, external_initializers: tuple[list, list] | None = None):
    """An InferenceSession on the CPU; intra-op threads = $OMP_NUM_THREADS when set (else ORT's choice).

    external_initializers: (names, OrtValues) for a graph whose weights are external tensors left out.
    """
    try:
        import onnxruntime as ort
    except ImportError:
        message = "running segmentation without PyTorch needs onnxruntime (pip install onnxruntime)"
        raise SegmentationModelError(message) from None
    options = ort.SessionOptions()
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit():
        options.intra_op_num_threads = int(threads)
    options.log_severity_level = 3  # errors only
    if external_initializers is not None:
        options.add_external_initializers(*external_initializers)
    try:
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types for every kind of bad model
        raise SegmentationModelError(f"{source}: ONNX Runtime cannot load it ({exc})") from None
