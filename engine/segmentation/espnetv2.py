"""ESPNetv2 segmentation network (EdgeNets variant), written from the shared ARCHITECTURE.md.

Sub-module names mirror the published PASCAL VOC checkpoints so their state dicts load with
`strict=True`; section numbers (§) refer to ARCHITECTURE.md. The forward pass reproduces the
reference implementation bit for bit on CPU float32.

Input size: the reference only accepts sides that are multiples of 16 (four stride-2 stages whose
outputs must line up with 2x up-sampled decoder maps). `ESPNetv2Seg.forward` accepts any size: it
pads the bottom and right edges by edge replication up to the next multiple of 16, runs the network
and crops the logits back, so inputs that already are multiples of 16 go through unchanged.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

NUM_CLASSES = 21
BRANCHES = 4  # EESP branches K at every level
R_LIM = (13, 11, 9, 7, 5)
PROJECTION = 10  # EPP projection width P = min(21 // 2, 16)
DECODER_WIDTHS = (64, 48, 32, NUM_CLASSES)
EPP_SCALES = (2.0, 1.5, 1.0, 0.5, 0.1)
ENCODER_WIDTHS = {  # s -> (c0, c1, c2, c3); a lookup in the reference, not a formula
    0.5: (16, 32, 64, 128),
    1.0: (32, 64, 128, 256),
    1.25: (32, 80, 160, 320),
    1.5: (32, 96, 192, 384),
    2.0: (32, 128, 256, 512),
}
STRIDE = 16  # total down-sampling; input sides are padded to a multiple of this


def _conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, dilation: int = 1) -> nn.Conv2d:
    padding = dilation * ((k - 1) // 2)
    return nn.Conv2d(cin, cout, k, stride, padding, dilation=dilation, groups=groups, bias=False)


# --- encoder-style helpers (§2): keys conv / bn / act ---------------------------------------------


class _ECBR(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.conv = _conv(cin, cout, k, stride, groups)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.PReLU(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class _ECB(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.conv = _conv(cin, cout, k, stride, groups)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class _EBR(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(c)
        self.act = nn.PReLU(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(x))


class _ECd(nn.Module):
    def __init__(self, c: int, dilation: int, stride: int) -> None:
        super().__init__()
        self.conv = _conv(c, c, 3, stride, groups=c, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


# --- decoder-style helpers (§2): keys cbr.0/1/2 and br.0/1 ------------------------------------------


class _DCBR(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, groups: int = 1) -> None:
        super().__init__()
        self.cbr = nn.Sequential(_conv(cin, cout, k, 1, groups), nn.BatchNorm2d(cout), nn.PReLU(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cbr(x)


class _DBR(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.br = nn.Sequential(nn.BatchNorm2d(c), nn.PReLU(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.br(x)


def _avg_pool(x: torch.Tensor) -> torch.Tensor:
    """3x3/2 average pooling, padding 1, zeros counted (divisor 9): n -> ceil(n/2)."""
    return F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=True)


def _pool_along(x: torch.Tensor, dim: int, size: int) -> torch.Tensor:
    """Adaptive average pooling along one axis as differences of a cumulative sum (torch's bins)."""
    n = int(x.shape[dim])
    start = np.array([(i * n) // size for i in range(size)], np.int64)
    end = np.array([-((-(i + 1) * n) // size) for i in range(size)], np.int64)
    pad = [0, 0] * (x.dim() - 1 - dim % x.dim()) + [1, 0]
    total = torch.cumsum(F.pad(x, pad), dim)  # total[k] = sum of the first k entries
    counts = torch.from_numpy((end - start).astype(np.float32)).to(x.dtype)
    shape = [1] * x.dim()
    shape[dim] = size
    sums = total.index_select(dim, torch.from_numpy(end)) - total.index_select(dim, torch.from_numpy(start))
    return sums / counts.reshape(shape)


def _adaptive_pool(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """F.adaptive_avg_pool2d; while exporting to ONNX, the same bins from cumulative sums.

    Why: the ONNX exporter refuses adaptive pooling whose output size does not divide the input size
    (EPP's 1.5x and 0.1x scales). The graph is exported at a fixed input size, so the bins are constants
    (index lists, built in numpy so that tracing records them as constants).
    """
    if not torch.onnx.is_in_onnx_export():
        return F.adaptive_avg_pool2d(x, size)
    size = (int(size[0]), int(size[1]))  # fixed at export: the graph has a fixed input size
    if x.shape[-2] % size[0] == 0 and x.shape[-1] % size[1] == 0:
        return F.adaptive_avg_pool2d(x, size)  # exported as a plain average pool
    return _pool_along(_pool_along(x, -2, size[0]), -1, size[1])


def _up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


# --- encoder units ------------------------------------------------------------------------------------


class EESP(nn.Module):
    """Extremely Efficient Spatial Pyramid unit (§3): grouped reduce, K dilated depthwise branches, HFF."""

    def __init__(self, cin: int, cout: int, stride: int, r_lim: int, k: int = BRANCHES) -> None:
        super().__init__()
        n = cout // k
        sizes = sorted(3 + 2 * i if 3 + 2 * i <= r_lim else 3 for i in range(k))
        self.stride = stride
        self.proj_1x1 = _ECBR(cin, n, 1, 1, groups=k)
        self.spp_dw = nn.ModuleList(_ECd(n, (e - 1) // 2, stride) for e in sizes)
        self.conv_1x1_exp = _ECB(cout, cout, 1, 1, groups=k)
        self.br_after_cat = _EBR(cout)
        self.module_act = nn.PReLU(cout)  # unused when stride 2, but in the checkpoint

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.proj_1x1(x)
        fused: list[torch.Tensor] = []
        for branch in self.spp_dw:  # hierarchical feature fusion: cumulative sum
            b = branch(r)
            fused.append(b if not fused else b + fused[-1])
        z = self.conv_1x1_exp(self.br_after_cat(torch.cat(fused, 1)))
        if self.stride == 2:
            return z
        return self.module_act(z + x)


class _DownSampler(nn.Module):
    """Strided EESP beside an average pool, plus input reinforcement from the full-size image (§4)."""

    def __init__(self, cin: int, cout: int, r_lim: int, k: int = BRANCHES) -> None:
        super().__init__()
        self.eesp = EESP(cin, cout - cin, 2, r_lim, k)
        self.inp_reinf = nn.Sequential(_ECBR(3, 3, 3, 1), _ECB(3, cout, 1, 1))
        self.act = nn.PReLU(cout)

    def forward(self, x: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        pooled = _avg_pool(x)
        u = torch.cat([pooled, self.eesp(x)], 1)
        reinf = image
        while reinf.shape[-2] > pooled.shape[-2]:  # re-pool the input image step by step
            reinf = _avg_pool(reinf)
        return self.act(u + self.inp_reinf(reinf))


class _Encoder(nn.Module):
    """The ImageNet backbone's levels 1-4 (`base_net`, §5); returns E1..E4."""

    def __init__(self, widths: tuple[int, int, int, int]) -> None:
        super().__init__()
        c0, c1, c2, c3 = widths
        self.level1 = _ECBR(3, c0, 3, 2)
        self.level2_0 = _DownSampler(c0, c1, R_LIM[0])
        self.level3_0 = _DownSampler(c1, c2, R_LIM[1])
        self.level3 = nn.ModuleList(EESP(c2, c2, 1, R_LIM[2]) for _ in range(3))
        self.level4_0 = _DownSampler(c2, c3, R_LIM[2])
        self.level4 = nn.ModuleList(EESP(c3, c3, 1, R_LIM[3]) for _ in range(7))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        e1 = self.level1(image)
        e2 = self.level2_0(e1, image)
        e3 = self.level3_0(e2, image)
        for unit in self.level3:
            e3 = unit(e3)
        e4 = self.level4_0(e3, image)
        for unit in self.level4:
            e4 = unit(e4)
        return e1, e2, e3, e4


# --- decoder blocks -------------------------------------------------------------------------------------


class _ChannelShuffle(nn.Module):
    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


class _EfficientPyramidPooling(nn.Module):
    """EPP (§6): project, filter at five scales, shuffle and merge; the final block gives the logits."""

    def __init__(self, cin: int, cout: int, final: bool = False, proj: int = PROJECTION) -> None:
        super().__init__()
        self.projection_layer = _DCBR(cin, proj, 1)
        self.stages = nn.ModuleList(nn.Conv2d(proj, proj, 3, 1, 1, groups=proj, bias=False) for _ in EPP_SCALES)
        self.merge_layer = nn.Sequential(
            _DBR(len(EPP_SCALES) * proj),
            _ChannelShuffle(len(EPP_SCALES)),
            _DCBR(len(EPP_SCALES) * proj, proj, 3, groups=proj),
            nn.Conv2d(proj, cout, 1, bias=final),
        )
        self.br = None if final else _DBR(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        p = self.projection_layer(x)
        branches = []
        for scale, stage in zip(EPP_SCALES, self.stages, strict=True):
            size = (max(math.ceil(h * scale), 5), max(math.ceil(w * scale), 5))
            if scale > 1.0:
                branches.append(_adaptive_pool(stage(_up(p, size)), (h, w)))
            elif scale < 1.0:
                branches.append(_up(stage(_adaptive_pool(p, size)), (h, w)))
            else:
                branches.append(stage(p))
        out = self.merge_layer(torch.cat(branches, 1))
        return out if self.br is None else self.br(out)


class _MergeEncoderDecoder(nn.Module):
    """Gated projection of an encoder map onto the decoder width (§7)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.wt_layer = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1, bias=False), nn.Sigmoid())
        self.expansion_layer = _DCBR(cin, cout, 3, groups=math.gcd(cin, cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.expansion_layer(x) * self.wt_layer(x)


def _bn_prelu(c: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(c), nn.PReLU(c))


class ESPNetv2Seg(nn.Module):
    """ESPNetv2 for 21-class PASCAL VOC segmentation: N x 3 x H x W normalised RGB -> N x 21 x H x W logits."""

    def __init__(self, scale: float = 2.0) -> None:
        super().__init__()
        if scale not in ENCODER_WIDTHS:
            raise ValueError(f"ESPNetv2 has no width table for s={scale}; known: {sorted(ENCODER_WIDTHS)}")
        self.scale = scale
        c0, c1, c2, c3 = ENCODER_WIDTHS[scale]
        d1, d2, d3, classes = DECODER_WIDTHS
        self.base_net = _Encoder((c0, c1, c2, c3))
        self.bu_dec_l1 = _EfficientPyramidPooling(c3, d1)
        self.bu_dec_l2 = _EfficientPyramidPooling(d1, d2)
        self.bu_dec_l3 = _EfficientPyramidPooling(d2, d3)
        self.bu_dec_l4 = _EfficientPyramidPooling(d3, classes, final=True)
        self.merge_enc_dec_l2 = _MergeEncoderDecoder(c2, d1)
        self.merge_enc_dec_l3 = _MergeEncoderDecoder(c1, d2)
        self.merge_enc_dec_l4 = _MergeEncoderDecoder(c0, d3)
        self.bu_br_l2 = _bn_prelu(d1)
        self.bu_br_l3 = _bn_prelu(d2)
        self.bu_br_l4 = _bn_prelu(d3)

    def forward_padded(self, image: torch.Tensor) -> torch.Tensor:
        """The reference forward pass (§8); H and W must be multiples of 16."""
        if image.shape[-2] % STRIDE or image.shape[-1] % STRIDE:
            raise ValueError(f"forward_padded needs sides that are multiples of {STRIDE}, got {tuple(image.shape)}")
        e1, e2, e3, e4 = self.base_net(image)
        d = self.bu_dec_l1(e4)
        for merge, br, dec, skip in (
            (self.merge_enc_dec_l2, self.bu_br_l2, self.bu_dec_l2, e3),
            (self.merge_enc_dec_l3, self.bu_br_l3, self.bu_dec_l3, e2),
            (self.merge_enc_dec_l4, self.bu_br_l4, self.bu_dec_l4, e1),
        ):
            d = dec(br(merge(skip) + F.interpolate(d, scale_factor=2.0, mode="bilinear", align_corners=True)))
        return _up(d, tuple(image.shape[-2:]))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Logits for any H x W: pad bottom/right by edge replication to a multiple of 16, then crop back."""
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"expected an N x 3 x H x W batch, got shape {tuple(image.shape)}")
        h, w = image.shape[-2:]
        pad_h, pad_w = -h % STRIDE, -w % STRIDE
        if not pad_h and not pad_w:
            return self.forward_padded(image)
        padded = F.pad(image, (0, pad_w, 0, pad_h), mode="replicate")
        return self.forward_padded(padded)[..., :h, :w]
