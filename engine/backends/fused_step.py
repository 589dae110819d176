"""One generation step of a handwriting network, written for export: fewer, larger graph nodes.

Exporting ``HandwritingNet.forward`` with a sequence of length 1 gives a correct graph, but nn.LSTM
becomes ONNX's sequence LSTM op wrapped in transposes, reshapes and weight re-ordering, and the first
layer's input and recurrent products stay separate: about 135 nodes, half of ONNX Runtime's step time
spent in small ops. Here each LSTM layer is one matrix product over [inputs, previous h] with weights
concatenated once at export (constants in the graph), then the gate arithmetic. The synthesis step
takes the text already one-hot (made once per batch by the backend, not at every step: building it
in the graph cost a page of ten lines about a tenth of each step). The maths is the network's own;
the exporter checks the graph against ``HandwritingNet.forward`` before writing it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from engine.handwriting.model import HandwritingNet


def _cell(gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """LSTM gate arithmetic (PyTorch's gate order i, f, g, o) -> (h, c)."""
    i, f, g, o = gates.chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def _fused(weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor, bias_hh: Tensor) -> tuple[Tensor, Tensor]:
    """(in + H, 4H) weight for [input, h] and the summed bias, detached copies."""
    return torch.cat([weight_ih, weight_hh], dim=1).t().contiguous().detach(), (bias_ih + bias_hh).detach()


class _FusedLayers(nn.Module):
    def __init__(self, net: HandwritingNet):
        super().__init__()
        self.layers = net.config.layers
        first = net.layer1
        suffix = "" if net.synthesis else "_l0"  # nn.LSTMCell vs nn.LSTM parameter names
        w, b = _fused(*(getattr(first, f"{n}{suffix}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
        self.register_buffer("w1", w)
        self.register_buffer("b1", b)
        for i, lstm in enumerate(net.upper, start=2):
            w, b = _fused(lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)
            self.register_buffer(f"w{i}", w)
            self.register_buffer(f"b{i}", b)
        self.register_buffer("output_weight", net.output.weight.t().contiguous().detach())
        self.register_buffer("output_bias", net.output.bias.detach().clone())

    def upper(self, i: int, inputs: list[Tensor], h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        gates = torch.addmm(getattr(self, f"b{i}"), torch.cat([*inputs, h], dim=1), getattr(self, f"w{i}"))
        return _cell(gates, c)


class FusedSynthesisStep(_FusedLayers):
    """(x, text, h, c, kappa, w) -> (y, phi, h, c, kappa, w), as ``SynthesisStep`` but fused; ``text`` is
    ``HandwritingNet.one_hot(chars)``: (B, U, A) floats, zero rows for padding."""

    def __init__(self, net: HandwritingNet):
        super().__init__(net)
        self.window = net.config.window
        self.register_buffer("window_weight", net.window_layer.weight.t().contiguous().detach())
        self.register_buffer("window_bias", net.window_layer.bias.detach().clone())

    def forward(self, x: Tensor, text: Tensor, h: Tensor, c: Tensor, kappa: Tensor, w: Tensor):
        K = self.window
        u = torch.arange(text.shape[1], dtype=x.dtype).view(1, 1, -1)
        h1, c1 = _cell(torch.addmm(self.b1, torch.cat([x, w, h[0]], dim=1), self.w1), c[0])
        alpha, beta, dk = torch.addmm(self.window_bias, h1, self.window_weight).exp().split(K, dim=1)
        kappa = kappa + dk
        phi = (alpha.unsqueeze(2) * torch.exp(-beta.unsqueeze(2) * (kappa.unsqueeze(2) - u) ** 2)).sum(1)
        w = torch.bmm(phi.unsqueeze(1), text).squeeze(1)
        hs, cs, below = [h1], [c1], h1
        for i in range(2, self.layers + 1):
            below, c_i = self.upper(i, [x, below, w], h[i - 1], c[i - 1])
            hs.append(below)
            cs.append(c_i)
        y = torch.addmm(self.output_bias, torch.cat(hs, dim=1), self.output_weight)
        return y, phi, torch.stack(hs), torch.stack(cs), kappa, w


class FusedPredictionStep(_FusedLayers):
    """(x, h, c) -> (y, h, c), as ``PredictionStep`` but fused."""

    def forward(self, x: Tensor, h: Tensor, c: Tensor):
        h1, c1 = _cell(torch.addmm(self.b1, torch.cat([x, h[0]], dim=1), self.w1), c[0])
        hs, cs, below = [h1], [c1], h1
        for i in range(2, self.layers + 1):
            below, c_i = self.upper(i, [x, below], h[i - 1], c[i - 1])
            hs.append(below)
            cs.append(c_i)
        y = torch.addmm(self.output_bias, torch.cat(hs, dim=1), self.output_weight)
        return y, torch.stack(hs), torch.stack(cs)


def fused_step_module(net: HandwritingNet) -> nn.Module:
    return (FusedSynthesisStep(net) if net.synthesis else FusedPredictionStep(net)).eval()
