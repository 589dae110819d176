"""CRF-only fine-tuning (Zheng et al. 2015, the unaries frozen): fit the CRF's weights and compatibility.

Why: crfasrnn's fixed defaults were tuned on VOC; on other photos (COCO) they over-smooth and lower mIoU.
With the network frozen, its logits are computed once per image and cached (float32, at the network's
resolution, in the user's cache folder, never in the repository); then only the CRF-RNN layer
(`crfrnn.CrfRnn`: spatial and bilateral C x C weights and the C x C compatibility; thetas fixed) is
trained by backpropagation through T = 5 mean-field iterations, with cross-entropy on the labelled pixels
(255 ignored), at a reduced working resolution (the thetas scale with it, as at inference).

Split (deterministic): coco128-voc images sorted by name, even positions + labelme-voc to fit, odd
positions held back; voc2012-val held back entirely. The epoch kept is the one with the best mIoU on the
fit images at inference settings (10 iterations), and its parameters are written only if they beat the
defaults there and do not fall below the unaries; the held-back figures come from `evaluate`.

    python -m engine.segmentation.crf.fit train --data ../shared/data/segmentation \
        --model ../shared/models/espnetv2/espnetv2_s_2.0_pascal_384x384.pth --out resources/models/crf-learned.npz
    python -m engine.segmentation.crf.fit evaluate --data ../shared/data/segmentation \
        --model ../shared/models/espnetv2/espnetv2_s_2.0_pascal_384x384.pth --params resources/models/crf-learned.npz
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from engine.paths import cache_dir
from engine.segmentation.crf.learned import load_params, save_params
from engine.segmentation.crf.meanfield import CrfParams, ImageKernels
from engine.segmentation.crf.working import working_inputs, working_params
from engine.segmentation.evaluate import Scores, confusion, pair_by_stem, read_mask
from engine.segmentation.manifest import SegmentationWeights
from engine.segmentation.photo import load_photo
from engine.segmentation.preprocessing import resize_labels

FIT_PIXELS = 250 * 188  # training resolution (a quarter of the reference): 4x cheaper per step


@dataclass
class Sample:
    name: str
    photo: Path
    mask: Path


def split(data: Path) -> dict[str, list[Sample]]:
    """{"fit": ..., "coco-held": ..., "voc-held": ...} from the three folders under `data`."""

    def folder(name: str) -> list[Sample]:
        base = data / name
        return [
            Sample(f"{name}/{stem}", image, mask) for stem, image, mask in pair_by_stem(base / "images", base / "masks")
        ]

    coco = folder("coco128-voc")
    return {
        "fit": coco[0::2] + folder("labelme-voc"),
        "coco-held": coco[1::2],
        "voc-held": folder("voc2012-val"),
    }


class CachedLogits:
    """The frozen network's logits per image, computed once and kept as .npy in the user's cache folder."""

    def __init__(self, model: str | None, backend: str = "auto") -> None:
        from engine.segmentation.sources import open_source

        self.source = open_source(model, backend)
        self.folder = cache_dir() / "crf-fit" / self.source.name

    def __call__(self, sample: Sample, photo: Image.Image) -> np.ndarray:
        path = self.folder / f"{sample.name}.npy"
        if path.is_file():
            return np.load(path)
        logits = np.asarray(self.source.logits(photo), np.float32)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, logits)
        tmp.replace(path)
        return logits


@dataclass
class Prepared:
    """One fit image at the training resolution: unaries, mask, the photo's size and its lattices."""

    unaries: np.ndarray  # C x h x w float32
    mask: np.ndarray  # h x w uint8 (255 = ignore)
    image: np.ndarray
    photo_size: tuple[int, int]
    kernels: ImageKernels


def prepare(sample: Sample, logits: CachedLogits, max_pixels: int, params: CrfParams) -> Prepared:
    photo = load_photo(sample.photo)
    image, unaries = working_inputs(logits(sample, photo), photo, max_pixels)
    mask = resize_labels(read_mask(sample.mask), image.shape[1::-1])
    thetas = working_params(params, photo.size, image.shape[1::-1]).thetas
    return Prepared(unaries, mask, image, photo.size, ImageKernels.build(image, *thetas))


def train(args: argparse.Namespace) -> int:
    import torch

    from engine.segmentation.crf.crfrnn import CrfRnn, TorchKernels

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    sets = split(Path(args.data))
    logits = CachedLogits(args.model, args.backend)
    classes = len(logits.source.classes)
    default = CrfParams.default(classes)
    start = time.perf_counter()
    fit = [prepare(s, logits, args.max_pixels, default) for s in sets["fit"]]
    print(
        f"prepared {len(fit)} fit images at <= {args.max_pixels} px in {time.perf_counter() - start:.0f} s", flush=True
    )
    torch_kernels = [TorchKernels(p.kernels) for p in fit]
    layer = CrfRnn(classes)
    initial = [p.detach().clone() for p in layer.parameters()]
    optimiser = torch.optim.Adam(layer.parameters(), lr=args.lr)
    history = []
    baseline = {name: _fit_miou(fit, params, classes) for name, params in (("unaries", None), ("default", default))}
    print(f"fit-set mIoU at {args.max_pixels} px: unaries {baseline['unaries']:.2f}, default {baseline['default']:.2f}")
    best = (baseline["default"], default, 0)
    order = list(range(len(fit)))
    for epoch in range(1, args.epochs + 1):
        random.Random(args.seed + epoch).shuffle(order)
        layer.train()
        total = 0.0
        for i in order:
            sample = fit[i]
            target = torch.from_numpy(sample.mask.astype(np.int64))
            target[target == 255] = -100
            if (target >= 0).sum() == 0:
                continue
            out = layer.refine(torch.from_numpy(sample.unaries), torch_kernels[i], args.train_iterations)
            loss = torch.nn.functional.cross_entropy(out[None], target[None], ignore_index=-100)
            decay = sum(((p - p0) ** 2).sum() for p, p0 in zip(layer.parameters(), initial, strict=True))
            optimiser.zero_grad()
            (loss + args.l2 * decay).backward()
            if args.diagonal:  # class-specific kernel weights and a Potts compatibility: 3C numbers, not 3C^2
                for parameter in layer.parameters():
                    parameter.grad *= torch.eye(classes)
            optimiser.step()
            total += float(loss)
        params = layer.to_params()
        miou = _fit_miou(fit, params, classes)
        history.append({"epoch": epoch, "loss": total / len(fit), "fit_miou": miou})
        print(
            f"epoch {epoch}: loss {total / len(fit):.4f}, fit mIoU {miou:.2f} ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
        if miou > best[0]:
            best = (miou, params, epoch)
    miou, params, epoch = best
    if epoch == 0 or miou < baseline["unaries"]:
        print("no epoch beat the defaults and the unaries on the fit images; nothing written")
        return 1
    meta = {
        "model": logits.source.name,
        "epoch": str(epoch),
        "fit_miou": f"{miou:.2f}",
        "baseline": json.dumps(baseline),
        "history": json.dumps(history),
        "command": "python -m engine.segmentation.crf.fit train " + " ".join(args.argv),
    }
    save_params(args.out, params, **meta)
    print(f"wrote {args.out} (epoch {epoch}, fit mIoU {miou:.2f})")
    return 0


def shrink(args: argparse.Namespace) -> int:
    """The simplest fit: one factor on both kernel weights, chosen on the fit images (0 = the unaries)."""
    sets = split(Path(args.data))
    logits = CachedLogits(args.model, args.backend)
    classes = len(logits.source.classes)
    base = load_params(args.start) if args.start else CrfParams.default(classes)
    fit = [prepare(s, logits, args.max_pixels, base) for s in sets["fit"]]
    scores = {}
    for factor in args.factors:
        params = CrfParams(
            base.spatial_weights * factor, base.bilateral_weights * factor, base.compatibility, *base.thetas
        )
        scores[factor] = _fit_miou(fit, params, classes)
        print(f"factor {factor:.2f}: fit mIoU {scores[factor]:.2f}", flush=True)
    best = max(scores, key=lambda f: (scores[f], -f))
    params = CrfParams(base.spatial_weights * best, base.bilateral_weights * best, base.compatibility, *base.thetas)
    meta = {
        "factor": str(best),
        "scores": json.dumps(scores),
        "command": "python -m engine.segmentation.crf.fit shrink " + " ".join(args.argv),
    }
    save_params(args.out, params, **meta)
    print(f"wrote {args.out} (factor {best}, fit mIoU {scores[best]:.2f})")
    return 0


def _fit_miou(prepared: list[Prepared], params: CrfParams | None, classes: int) -> float:
    """mIoU at the training resolution with 10 inference iterations (params None: the unaries alone)."""
    from engine.segmentation.crf.meanfield import mean_field

    total = np.zeros((classes, classes), np.int64)
    for p in prepared:
        if params is None:
            labels = p.unaries.argmax(0)
        else:
            scaled = working_params(params, p.photo_size, p.image.shape[1::-1])
            q, _ = mean_field(p.unaries, p.image, scaled, 10, kernels=p.kernels)
            labels = q.argmax(0)
        total += confusion(p.mask, labels.astype(np.uint8), classes)
    return 100 * Scores(total, len(prepared)).miou


def evaluate_sets(args: argparse.Namespace) -> int:
    """mIoU with no CRF, the default and the learned parameters on each set, at inference settings."""
    from engine.segmentation.job import SegmentationJob, SegmentationRequest

    sets = split(Path(args.data))
    logits = CachedLogits(args.model, args.backend)
    classes = len(logits.source.classes)
    every = {"none": None, "default": CrfParams.default(classes)}
    if "learned" in args.modes:
        every["learned"] = load_params(args.params)
    modes = {mode: every[mode] for mode in args.modes}
    results = {}
    for set_name in args.sets:
        matrices = {mode: np.zeros((classes, classes), np.int64) for mode in modes}
        start = time.perf_counter()
        for sample in sets[set_name]:
            photo = load_photo(sample.photo)
            source = _FixedSource(logits.source, logits(sample, photo))
            truth = read_mask(sample.mask)
            for mode, params in modes.items():
                request = SegmentationRequest(photo, crf="none" if params is None else "default", crf_params=params)
                result = SegmentationJob(request, source=source).run()
                matrices[mode] += confusion(truth, result.labels, classes)
        scores = {mode: Scores(m, len(sets[set_name])) for mode, m in matrices.items()}
        results[set_name] = {mode: round(100 * s.miou, 2) for mode, s in scores.items()}
        results[set_name]["images"] = len(sets[set_name])
        line = ", ".join(f"{mode} {100 * s.miou:.2f}" for mode, s in scores.items())
        print(
            f"{set_name} ({len(sets[set_name])} images, {time.perf_counter() - start:.0f} s): mIoU {line}", flush=True
        )
    print(json.dumps(results))
    return 0


class _FixedSource:
    """A unary source that returns logits computed earlier (the cache) for the one photo it is made for."""

    def __init__(self, source, logits: np.ndarray) -> None:
        self.name, self.classes, self.palette, self.backend = source.name, source.classes, source.palette, "cache"
        self._logits = logits

    def logits(self, photo: Image.Image) -> np.ndarray:
        return self._logits


def main(argv: list[str] | None = None) -> int:
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="fit the CRF parameters on the fit split")
    tr.add_argument("--data", required=True, help="folder holding coco128-voc, labelme-voc and voc2012-val")
    tr.add_argument("--model", default=SegmentationWeights.DEFAULT.meta.name, help="unary model (name or file)")
    tr.add_argument("--backend", default="auto")
    tr.add_argument("--out", required=True, help="where to write the learned parameters (.npz)")
    tr.add_argument("--epochs", type=int, default=8)
    tr.add_argument("--lr", type=float, default=0.02)
    tr.add_argument("--l2", type=float, default=1e-4, help="pull towards the defaults (per squared unit)")
    tr.add_argument("--train-iterations", type=int, default=5)
    tr.add_argument("--max-pixels", type=int, default=FIT_PIXELS)
    tr.add_argument(
        "--diagonal",
        action="store_true",
        help="fit only the diagonals (per-class kernel weights, Potts-like compatibility): generalises from few images",
    )
    tr.add_argument("--threads", type=int, default=1)
    tr.add_argument("--seed", type=int, default=0)
    tr.set_defaults(handler=train)
    sh = sub.add_parser("shrink", help="scale both kernel weights by one factor chosen on the fit images")
    sh.add_argument("--data", required=True)
    sh.add_argument("--model", default=SegmentationWeights.DEFAULT.meta.name)
    sh.add_argument("--backend", default="auto")
    sh.add_argument("--start", help="parameters to scale (default: crfasrnn's)")
    sh.add_argument("--factors", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0])
    sh.add_argument("--max-pixels", type=int, default=FIT_PIXELS)
    sh.add_argument("--out", required=True)
    sh.set_defaults(handler=shrink)
    ev = sub.add_parser("evaluate", help="mIoU without CRF, with the defaults and with learned parameters")
    ev.add_argument("--data", required=True)
    ev.add_argument("--model", default=SegmentationWeights.DEFAULT.meta.name)
    ev.add_argument("--backend", default="auto")
    ev.add_argument("--params", help="learned parameters (.npz), for mode learned")
    ev.add_argument(
        "--modes", nargs="+", default=["none", "default", "learned"], choices=["none", "default", "learned"]
    )
    ev.add_argument("--sets", nargs="+", default=["coco-held", "voc-held", "fit"])
    ev.set_defaults(handler=evaluate_sets)
    args = parser.parse_args(argv)
    args.argv = argv[1:]
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
