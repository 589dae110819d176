"""The text network's step as ONNX, and an ONNX Runtime stepper (numpy and onnxruntime only).

``export_text_onnx(MODEL.npz)`` (needs torch, onnx, onnxscript; ``python -m engine.text.onnx_step MODEL.npz``)
writes ``MODEL.onnx`` and its manifest ``MODEL.onnx.json`` with ``torch.onnx.export(..., dynamo=True)`` over
:meth:`TextNet.step`; ONNX Runtime must agree with torch before the file is kept. The graph: inputs ``x``
(B,) int64, ``h`` and ``c`` (L, B, H) float32; outputs ``logits`` (B, V), ``h_out``, ``c_out``; B is dynamic.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort

from engine.atomic import atomic_write_text
from engine.backends.onnx_backend import manifest_path_for, onnx_path_for, sha256_bytes
from engine.handwriting.checkpoint import ModelFileError
from engine.text.model_file import load_text_model

MANIFEST_FORMAT = "penwright-text-onnx"
MANIFEST_VERSION = 1
INPUTS = ("x", "h", "c")
OUTPUTS = ("logits", "h_out", "c_out")
VERIFY_TOLERANCE = 1e-4


def _example(config, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (config.layers, batch, config.hidden)
    return {
        "x": rng.integers(0, config.vocab_size, batch).astype(np.int64),
        "h": rng.uniform(-1, 1, shape).astype(np.float32),
        "c": rng.normal(0, 1, shape).astype(np.float32),
    }


def _session(data: bytes, threads: int = 1) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def export_text_onnx(model_path: str | Path, onnx_path: str | Path | None = None) -> dict:
    import onnx
    import torch
    from torch import nn

    from engine.text.model import build_text_network

    model_path = Path(model_path)
    onnx_path = Path(onnx_path) if onnx_path is not None else onnx_path_for(model_path)
    model = load_text_model(model_path)
    net = build_text_network(model.weights, model.config)

    class Step(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x, h, c):
            return self.net.step(x, h, c)

    module = Step().eval()
    args = tuple(torch.from_numpy(v) for v in _example(model.config, 3).values())
    batch = torch.export.Dim("batch", min=1)
    quiet = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [q.level for q in quiet]
    try:
        for q in quiet:
            q.setLevel(logging.ERROR)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module,
                args,
                dynamo=True,
                input_names=list(INPUTS),
                output_names=list(OUTPUTS),
                dynamic_shapes={"x": {0: batch}, "h": {1: batch}, "c": {1: batch}},
                verbose=False,
            )
    finally:
        for q, level in zip(quiet, levels, strict=True):
            q.setLevel(level)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = onnx_path.with_name(f".{onnx_path.name}.export.tmp")
    try:
        program.save(str(tmp), external_data=False)
        data = tmp.read_bytes()
        session = _session(data)
        worst = 0.0
        for seed, b in enumerate((1, 2, 5)):
            inputs = _example(model.config, b, seed + 1)
            got = session.run(list(OUTPUTS), inputs)
            with torch.no_grad():
                expected = module(*(torch.from_numpy(v) for v in inputs.values()))
            for name, a, e in zip(OUTPUTS, got, expected, strict=True):
                e = e.numpy()
                if a.shape != e.shape or not np.allclose(a, e, rtol=VERIFY_TOLERANCE, atol=VERIFY_TOLERANCE):
                    raise RuntimeError(f"the exported text graph disagrees with torch on {name!r} (B={b})")
                worst = max(worst, float(np.abs(a - e).max()))
        os.replace(tmp, onnx_path)
    finally:
        tmp.unlink(missing_ok=True)
    opsets = {o.domain or "ai.onnx": o.version for o in onnx.load_from_string(data).opset_import}
    manifest = {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "onnx_file": onnx_path.name,
        "onnx_sha256": sha256_bytes(data),
        "source": {"file": model_path.name, "sha256": sha256_bytes(model_path.read_bytes())},
        "config": model.meta["config"],
        "vocabulary": model.meta["vocabulary"],
        "inputs": list(INPUTS),
        "outputs": list(OUTPUTS),
        "opset": opsets.get("ai.onnx"),
        "exporter": f"torch {torch.__version__} (dynamo), onnx {onnx.__version__}",
        "verified_max_abs_diff": worst,
    }
    atomic_write_text(manifest_path_for(onnx_path), json.dumps(manifest, indent=1) + "\n")
    return manifest


class TextOnnxStepper:
    """Runs an exported text step with ONNX Runtime on the CPU; same interface as TorchTextStepper."""

    def __init__(self, onnx_path: str | Path, threads: int = 1):
        onnx_path = Path(onnx_path)
        mpath = manifest_path_for(onnx_path)
        if not onnx_path.exists() or not mpath.exists():
            raise ModelFileError(f"{onnx_path} or its manifest is missing: python -m engine.text.onnx_step MODEL.npz")
        self.manifest = json.loads(mpath.read_text(encoding="utf-8"))
        if self.manifest.get("format") != MANIFEST_FORMAT or self.manifest.get("format_version") != MANIFEST_VERSION:
            raise ModelFileError(f"{mpath} is not a Penwright text ONNX manifest of version {MANIFEST_VERSION}")
        data = onnx_path.read_bytes()
        if sha256_bytes(data) != self.manifest["onnx_sha256"]:
            raise ModelFileError(f"{onnx_path} does not match its manifest (sha256 differs); export it again")
        self.session = _session(data, threads)
        cfg = self.manifest["config"]
        self.layers, self.hidden = cfg["layers"], cfg["hidden"]

    def initial_state(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        shape = (self.layers, batch, self.hidden)
        return np.zeros(shape, np.float32), np.zeros(shape, np.float32)

    def step(self, x: np.ndarray, state: tuple[np.ndarray, np.ndarray]):
        logits, h, c = self.session.run(list(OUTPUTS), {"x": np.asarray(x, np.int64), "h": state[0], "c": state[1]})
        return logits, (h, c)


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description="Export a text model file's step to ONNX.")
    parser.add_argument("model", help="a text model file (.npz)")
    parser.add_argument("-o", "--output", help="the .onnx to write (default: beside the model file)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.output) if args.output else onnx_path_for(args.model)
    manifest = export_text_onnx(args.model, out)
    print(f"wrote {out} (opset {manifest['opset']}), max |diff| vs torch {manifest['verified_max_abs_diff']:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
