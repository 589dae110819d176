"""The text prediction network (Graves 2013, section 3) in PyTorch.

A stack of LSTM layers with skip connections: every layer sees the one-hot input character, layers 2..
also see the layer below, and every layer feeds the softmax output over the vocabulary. The input is a
one-hot vector, so each layer's input weights for it are a per-layer embedding of the characters.
Optional dropout on each layer's output (training only) helps the larger networks on small corpora, and
optional weight drop (DropConnect on the recurrent weights, as AWD-LSTM: Merity et al. 2018) regularises
the recurrence itself; both act in training only and leave the weights' names and the exported step as they are.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn import functional as F


@dataclass
class TextConfig:
    vocab_size: int
    hidden: int = 256
    layers: int = 2
    dropout: float = 0.0  # on each layer's output, in training only
    weight_drop: float = 0.0  # DropConnect on each layer's hidden-to-hidden weights, in training only
    kind: str = "text"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TextConfig:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def one_hot(x: Tensor, size: int) -> Tensor:
    """(…,) int64 -> (…, size) float32; a comparison, which every exporter handles."""
    return (x.unsqueeze(-1) == torch.arange(size, device=x.device)).to(torch.float32)


class TextNet(nn.Module):
    def __init__(self, config: TextConfig):
        super().__init__()
        if config.vocab_size <= 0 or config.hidden <= 0 or config.layers <= 0:
            raise ValueError(f"invalid text network config {config}")
        self.config = config
        V, H = config.vocab_size, config.hidden
        self.lstms = nn.ModuleList(nn.LSTM(V + (H if i else 0), H, batch_first=True) for i in range(config.layers))
        self.output = nn.Linear(H * config.layers, V)
        self.dropout = nn.Dropout(config.dropout)

    def initial_state(self, batch: int, device=None) -> tuple[Tensor, Tensor]:
        shape = (self.config.layers, batch, self.config.hidden)
        return torch.zeros(shape, device=device), torch.zeros(shape, device=device)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """x: (B, T) character indices -> logits (B, T, V) and the new state ((L, B, H), (L, B, H))."""
        if state is None:
            state = self.initial_state(x.shape[0], x.device)
        h0, c0 = state
        inp = one_hot(x, self.config.vocab_size)
        outs, hs, cs = [], [], []
        below = None
        for i, lstm in enumerate(self.lstms):
            layer_in = inp if below is None else torch.cat([inp, below], dim=-1)
            start = (h0[i : i + 1].contiguous(), c0[i : i + 1].contiguous())
            if self.training and self.config.weight_drop > 0:  # one mask per segment, shared by its time steps
                dropped = {"weight_hh_l0": F.dropout(lstm.weight_hh_l0, self.config.weight_drop, training=True)}
                below, (h, c) = functional_call(lstm, dropped, (layer_in, start))
            else:
                below, (h, c) = lstm(layer_in, start)
            below = self.dropout(below)
            outs.append(below)
            hs.append(h)
            cs.append(c)
        logits = self.output(torch.cat(outs, dim=-1))
        return logits, (torch.cat(hs, 0), torch.cat(cs, 0))

    def step(self, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One step: x (B,) -> logits (B, V), h, c."""
        logits, (h, c) = self(x.unsqueeze(1), (h, c))
        return logits[:, 0], h, c


def build_text_network(weights: dict, config: TextConfig) -> TextNet:
    net = TextNet(config)
    net.load_state_dict({k: torch.as_tensor(v, dtype=torch.float32) for k, v in weights.items()})
    return net.eval()


class TorchTextStepper:
    """Steps a text network on numpy arrays (the same interface as the ONNX Runtime stepper)."""

    def __init__(self, net: TextNet):
        self.net = net.eval()
        self.config = net.config

    def initial_state(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        shape = (self.config.layers, batch, self.config.hidden)
        return np.zeros(shape, np.float32), np.zeros(shape, np.float32)

    @torch.no_grad()
    def step(self, x: np.ndarray, state: tuple[np.ndarray, np.ndarray]):
        logits, h, c = self.net.step(torch.as_tensor(x, dtype=torch.int64), *(torch.as_tensor(s) for s in state))
        return logits.numpy(), (h.numpy(), c.numpy())

    @torch.no_grad()
    def prime(self, ids: np.ndarray, state: tuple[np.ndarray, np.ndarray]):
        """Feed a (B, T) block at once; logits of the last position and the state after it."""
        logits, (h, c) = self.net(torch.as_tensor(ids, dtype=torch.int64), tuple(torch.as_tensor(s) for s in state))
        return logits[:, -1].numpy(), (h.numpy(), c.numpy())
