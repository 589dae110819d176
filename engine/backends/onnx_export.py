"""Export a handwriting model file's network, one generation step, to ONNX (needs torch, onnx, onnxscript).

    python -m engine.backends.onnx_export resources/models/handwriting-synthesis.npz
    python -m engine.backends.onnx_export MODEL.npz -o OUT.onnx

writes ``OUT.onnx`` (default: beside the model file, same stem, where the "onnx" and "auto" backends look
for it) and its manifest ``OUT.onnx.json`` (see engine.backends.onnx_backend for the graph's inputs and
outputs). The exporter is ``torch.onnx.export(..., dynamo=True)`` over a wrapper that calls
the network's step with its LSTM weights fused (engine.backends.fused_step: fewer, larger nodes, about a
quarter faster in ONNX Runtime); batch and text length are dynamic. Before the file is written, ONNX
Runtime runs it beside ``HandwritingNet.forward`` (a sequence of length 1) on random states and the two
must agree (the largest difference is printed and kept in the manifest).
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
import torch
from torch import Tensor, nn

from engine.atomic import atomic_write_text
from engine.backends.fused_step import fused_step_module
from engine.backends.onnx_backend import (
    MANIFEST_FORMAT,
    MANIFEST_VERSION,
    PREDICTION_INPUTS,
    PREDICTION_OUTPUTS,
    SYNTHESIS_INPUTS,
    SYNTHESIS_OUTPUTS,
    manifest_path_for,
    one_hot_text,
    onnx_path_for,
    sha256_bytes,
)
from engine.backends.torch_backend import build_network
from engine.handwriting.checkpoint import ModelFileError, load_model_file
from engine.handwriting.model import HandwritingNet

VERIFY_TOLERANCE = 1e-4  # ONNX Runtime vs torch, absolute and relative, on every output


class SynthesisStep(nn.Module):
    """One step of the synthesis network: (x, text, h, c, kappa, w) -> (y, phi, h, c, kappa, w), by the
    network's own ``forward`` (the reference the exported graph is checked against). ``text`` is one-hot as
    the graph takes it; the characters are read back from it."""

    def __init__(self, net: HandwritingNet):
        super().__init__()
        self.net = net

    def forward(self, x: Tensor, text: Tensor, h: Tensor, c: Tensor, kappa: Tensor, w: Tensor):
        chars = torch.where(text.sum(-1) > 0, text.argmax(-1), -1)
        state = {"h": h, "c": c, "kappa": kappa, "w": w}
        y, new, phi = self.net(x.unsqueeze(1), chars, state, return_window=True)
        return y[:, 0], phi[:, 0], new["h"], new["c"], new["kappa"], new["w"]


class PredictionStep(nn.Module):
    """One step of the prediction network: (x, h, c) -> (y, h, c)."""

    def __init__(self, net: HandwritingNet):
        super().__init__()
        self.net = net

    def forward(self, x: Tensor, h: Tensor, c: Tensor):
        y, new, _ = self.net(x.unsqueeze(1), None, {"h": h, "c": c})
        return y[:, 0], new["h"], new["c"]


def step_module(net: HandwritingNet) -> nn.Module:
    return (SynthesisStep(net) if net.synthesis else PredictionStep(net)).eval()


def example_inputs(net: HandwritingNet, batch: int, text: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random step inputs (a state somewhere mid-line) in the graph's input order."""
    cfg = net.config
    rng = np.random.default_rng(seed)
    L, H = cfg.layers, cfg.hidden
    inputs = {"x": rng.normal(0, 1, (batch, 3)).astype(np.float32)}
    inputs["x"][:, 2] = rng.random(batch) < 0.3
    if net.synthesis:
        chars = rng.integers(0, cfg.alphabet_size, (batch, text))
        chars[0, text // 2 :] = -1  # padding
        inputs["text"] = one_hot_text(chars, cfg.alphabet_size)
    inputs["h"] = rng.uniform(-1, 1, (L, batch, H)).astype(np.float32)
    inputs["c"] = rng.normal(0, 1, (L, batch, H)).astype(np.float32)
    if net.synthesis:
        inputs["kappa"] = rng.uniform(0, text, (batch, cfg.window)).astype(np.float32)
        w = rng.random((batch, cfg.alphabet_size))
        inputs["w"] = (w / w.sum(1, keepdims=True)).astype(np.float32)
    return inputs


def _export_program(module: nn.Module, net: HandwritingNet, opset: int | None):
    names = SYNTHESIS_INPUTS if net.synthesis else PREDICTION_INPUTS
    outputs = SYNTHESIS_OUTPUTS if net.synthesis else PREDICTION_OUTPUTS
    # Batch 3 and text 7: sizes 0 and 1 would be specialised, and no other dimension equals them.
    args = tuple(torch.from_numpy(v) for v in example_inputs(net, 3, 7).values())
    batch = torch.export.Dim("batch", min=1)
    text = torch.export.Dim("text", min=1)
    dims = {"x": {0: batch}, "text": {0: batch, 1: text}, "h": {1: batch}, "c": {1: batch}}
    dims.update(kappa={0: batch}, w={0: batch})
    dynamic_shapes = {k: dims[k] for k in names}
    quiet = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [logger.level for logger in quiet]
    try:
        for logger in quiet:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # exporter chatter about nn.LSTM's flat weights and size checks
            return torch.onnx.export(
                module,
                args,
                dynamo=True,
                input_names=list(names),
                output_names=list(outputs),
                dynamic_shapes=dynamic_shapes,
                opset_version=opset,
                verbose=False,
            )
    finally:
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)


def verify(module: nn.Module, net: HandwritingNet, data: bytes) -> float:
    """Largest |ONNX Runtime - torch ``module``| over all outputs for a few batch and text sizes; raises when
    too large. ``module`` is the reference: the network's own step (``step_module``)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    outputs = SYNTHESIS_OUTPUTS if net.synthesis else PREDICTION_OUTPUTS
    worst = 0.0
    for seed, (batch, text) in enumerate([(1, 1), (2, 13), (5, 4)]):
        inputs = example_inputs(net, batch, text, seed=seed + 1)
        got = session.run(list(outputs), inputs)
        with torch.no_grad():
            expected = module(*(torch.from_numpy(v) for v in inputs.values()))
        for name, a, b in zip(outputs, got, expected, strict=True):
            b = b.numpy()
            if a.shape != b.shape or not np.allclose(a, b, rtol=VERIFY_TOLERANCE, atol=VERIFY_TOLERANCE):
                diff = np.abs(a - b).max() if a.shape == b.shape else f"shape {a.shape} vs {b.shape}"
                raise RuntimeError(f"the exported graph disagrees with torch on {name!r} (B={batch}, U={text}): {diff}")
            worst = max(worst, float(np.abs(a - b).max()))
    return worst


def export_onnx(model_path: str | Path, onnx_path: str | Path | None = None, opset: int | None = None) -> dict:
    """Export ``model_path``'s network step to ``onnx_path`` (default beside it) and write the manifest."""
    model_path = Path(model_path)
    onnx_path = Path(onnx_path) if onnx_path is not None else onnx_path_for(model_path)
    model = load_model_file(model_path)
    model_bytes = model_path.read_bytes()
    net = build_network(model, "cpu").float()
    program = _export_program(fused_step_module(net), net, opset)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = onnx_path.with_name(f".{onnx_path.name}.export.tmp")
    try:
        program.save(str(tmp), external_data=False)
        data = tmp.read_bytes()
        worst = verify(step_module(net), net, data)
        os.replace(tmp, onnx_path)
    finally:
        tmp.unlink(missing_ok=True)
    import onnx  # the exporter needs it anyway; only for the opset number here

    opsets = {o.domain or "ai.onnx": o.version for o in onnx.load_from_string(data).opset_import}
    meta = model.meta
    training = meta.get("training", {})
    manifest = {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "name": onnx_path.stem,
        "kind": model.kind,
        "version": {
            "step_graph": MANIFEST_VERSION,
            "model_format": meta.get("format_version"),
            "training_step": training.get("step"),
        },
        "onnx_file": onnx_path.name,
        "onnx_sha256": sha256_bytes(data),
        "source": {"file": model_path.name, "sha256": sha256_bytes(model_bytes)},
        "alphabet": meta["alphabet"],
        "normalizer": meta["normalizer"],
        "convention": meta["convention"],
        "chars_per_step": meta["config"]["chars_per_step"],
        "config": meta["config"],
        "inputs": list(SYNTHESIS_INPUTS if net.synthesis else PREDICTION_INPUTS),
        "outputs": list(SYNTHESIS_OUTPUTS if net.synthesis else PREDICTION_OUTPUTS),
        "text_input": "text: (B, U, A) float32 one-hot characters, zero rows pad" if net.synthesis else None,
        "opset": opsets.get("ai.onnx"),
        "exporter": f"torch {torch.__version__} (dynamo), onnx {onnx.__version__}",
        "graph": "fused LSTM step (engine.backends.fused_step), checked against HandwritingNet.forward",
        "verified_max_abs_diff": worst,
    }
    atomic_write_text(manifest_path_for(onnx_path), json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a handwriting model file (.npz)")
    parser.add_argument("-o", "--output", help="the .onnx to write (default: beside the model file, same stem)")
    parser.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.output) if args.output else onnx_path_for(args.model)
    try:
        manifest = export_onnx(args.model, out, args.opset)
    except ModelFileError as exc:
        print(f"error: {exc}")
        return 1
    size = out.stat().st_size / 1e6
    print(
        f"wrote {out} ({size:.1f} MB, opset {manifest['opset']}) and {manifest_path_for(out).name}: "
        f"{manifest['kind']} step, ONNX Runtime vs torch max |diff| {manifest['verified_max_abs_diff']:.2e}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
