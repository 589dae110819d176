"""PyTorch backend: runs a handwriting model file's network step by step (imports torch)."""

from __future__ import annotations

import numpy as np
import torch

from engine.handwriting.checkpoint import ModelFile, ModelFileError
from engine.handwriting.model import HandwritingNet, ModelConfig


def build_network(model: ModelFile, device: str = "cpu") -> HandwritingNet:
    net = HandwritingNet(ModelConfig.from_dict(model.meta["config"]))
    try:
        net.load_state_dict({k: torch.from_numpy(v) for k, v in model.weights.items()})
    except RuntimeError as exc:
        raise ModelFileError(f"the model's weights do not match its configuration: {exc}") from exc
    return net.to(device).eval()


class TorchStepper:
    def __init__(self, model: ModelFile, device: str = "cpu"):
        self.net = build_network(model, device)
        self.device = device
        self.mixtures = self.net.config.mixtures
        self.synthesis = self.net.synthesis

    @torch.no_grad()
    def start(self, chars: np.ndarray, prime_inputs: np.ndarray | None = None):
        B = chars.shape[0]
        ch = torch.from_numpy(np.ascontiguousarray(chars)).to(self.device)
        state = self.net.initial_state(B, self.device)
        if prime_inputs is not None and len(prime_inputs) > 1:
            # Feed the prime as in training: zeros first, then each point but the last (which the
            # sampler feeds as its first input).
            seq = np.concatenate([np.zeros((1, 3), np.float32), np.asarray(prime_inputs[:-1], np.float32)])
            x = torch.from_numpy(seq).to(self.device).unsqueeze(0).expand(B, -1, -1).contiguous()
            _, state, _ = self.net(x, ch, state)
        return ch, state

    @torch.no_grad()
    def step(self, x: np.ndarray, state):
        ch, st = state
        inp = torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(self.device).unsqueeze(1)
        y, st, phi = self.net(inp, ch, st, return_window=self.synthesis)
        phi_np = phi[:, 0].cpu().numpy() if phi is not None else None
        return y[:, 0].cpu().numpy(), phi_np, (ch, st)
