"""The fused step that ONNX export uses computes exactly the network's own step (torch, no export)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine.backends.fused_step import fused_step_module  # noqa: E402
from engine.backends.onnx_export import example_inputs, step_module  # noqa: E402
from engine.handwriting.model import HandwritingNet, ModelConfig  # noqa: E402


@pytest.mark.parametrize("kind", ["synthesis", "prediction"])
def test_fused_step_matches_the_network(kind):
    torch.manual_seed(0)
    config = ModelConfig(
        kind=kind, hidden=16, layers=3, mixtures=4, window=3, alphabet_size=9 if kind == "synthesis" else 0
    )
    net = HandwritingNet(config).eval()
    with torch.no_grad():
        for p in net.parameters():  # away from the initial zeros, so every weight matters
            p.add_(0.3 * torch.randn_like(p))
    reference, fused = step_module(net), fused_step_module(net)
    for batch, text in [(1, 1), (4, 6)]:
        inputs = [torch.from_numpy(v) for v in example_inputs(net, batch, text, seed=batch).values()]
        with torch.no_grad():
            expected, got = reference(*inputs), fused(*inputs)
        assert len(expected) == len(got)
        for a, b in zip(expected, got, strict=True):
            np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-5)
