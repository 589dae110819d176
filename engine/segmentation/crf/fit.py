"""Fitting the CRF's parameters with the unaries frozen (Zheng et al. 2015's CRF-only fine-tuning).

Why: crfasrnn's fixed defaults were tuned on VOC; on other photos (COCO) they over-smooth and lower mIoU.
With the network frozen, its logits are computed once per image and cached (float32, at the network's
resolution, in the user's cache folder, never in the repository).

Split (deterministic): coco128-voc images sorted by name, even positions + labelme-voc are the fit photos,
odd positions held back; voc2012-val held back entirely. The fit photos are split again by a hash of their
names into fit-train and fit-validation (`search.split_fit`).

- `search` (what ships): a small grid of crfasrnn-form parameters (Potts compatibility, scalar kernel
  weights, thetas) scored on fit-train at the app's working resolution and iteration; the best few are
  scored on fit-validation and the best there is written (`search` module). The held-back sets are not read.
- `train`: CRF-RNN's backpropagation through the mean-field iterations (C x C weights and compatibility)
  at a reduced resolution; with so few photos it overfits (see the model card).
- `evaluate`: mIoU with no CRF, the defaults and a parameter file on any set, through the app's job.

    python -m engine.segmentation.crf.fit search --data ../shared/data/segmentation \
        --model ../shared/models/espnetv2/espnetv2_s_2.0_pascal_384x384.pth --backend onnx \
        --out resources/models/crf-learned.npz
    python -m engine.segmentation.crf.fit evaluate --data ../shared/data/segmentation \
        --model ../shared/models/espnetv2/espnetv2_s_2.0_pascal_384x384.pth --backend onnx \
        --params resources/models/crf-learned.npz --sets coco-held voc-held
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
from engine.segmentation.crf.search import Candidate, split_fit
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
    """{"fit", "fit-train", "fit-validation", "coco-held", "voc-held": photos} from the folders under `data`."""

    def folder(name: str) -> list[Sample]:
        base = data / name
        return [
            Sample(f"{name}/{stem}", image, mask) for stem, image, mask in pair_by_stem(base / "images", base / "masks")
        ]

    coco = folder("coco128-voc")
    fit = coco[0::2] + folder("labelme-voc")
    train, validation = split_fit([s.name for s in fit])
    return {
        "fit": fit,
        "fit-train": [fit[i] for i in train],
        "fit-validation": [fit[i] for i in validation],
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


def search_grid(args: argparse.Namespace) -> int:
    """Grid on fit-train, shortlist on fit-validation, keep the best there (`search`); held-back sets unseen."""
    from engine.segmentation.crf.search import grid, shortlist

    sets = split(Path(args.data))
    logits = CachedLogits(args.model, args.backend)
    classes = len(logits.source.classes)
    train, validation = sets["fit-train"], sets["fit-validation"]
    print(f"fit-train {len(train)} photos, fit-validation {len(validation)}", flush=True)
    candidates = grid(args.spatial, args.bilateral, args.alphas, args.betas)
    train_scores, train_unaries = _grid_scores(candidates, train, logits, classes, "fit-train")
    listed = shortlist(train_scores, args.shortlist)
    validation_scores, validation_unaries = _grid_scores(listed, validation, logits, classes, "fit-validation")
    write_selection(
        args.out,
        classes,
        logits.source.name,
        args.argv,
        (train_scores, train_unaries),
        listed,
        (validation_scores, validation_unaries),
    )
    return 0


def write_selection(
    out: str | Path,
    classes: int,
    model: str,
    argv: list[str],
    train: tuple[dict[Candidate, float], float],
    listed: list[Candidate],
    validation: tuple[dict[Candidate, float], float],
) -> Candidate:
    """Pick among the shortlist and the no-CRF point (zero weights: the unaries) by fit-validation mIoU
    alone, and write the pick with every score that led to it. (train, validation): ({candidate: mIoU},
    the unaries' mIoU)."""
    from engine.segmentation.crf.search import NO_CRF, select

    (train_scores, train_unaries), (validation_scores, validation_unaries) = train, validation
    competing = {c: validation_scores[c] for c in listed}
    competing[NO_CRF] = validation_unaries  # the CRF must earn its place on fit-validation
    best = select(competing)
    fit_train = {**train_scores, NO_CRF: train_unaries}
    table = [
        {"candidate": c.label, "fit_train": round(fit_train[c], 2), "fit_validation": round(competing[c], 2)}
        for c in competing
    ]
    for row in table:
        print(f"{row['candidate']}: fit-train {row['fit_train']:.2f}, fit-validation {row['fit_validation']:.2f}")
    meta = {
        "model": model,
        "selected": best.label,
        "fit_train_miou": f"{fit_train[best]:.2f}",
        "fit_validation_miou": f"{competing[best]:.2f}",
        "unaries": json.dumps({"fit_train": round(train_unaries, 2), "fit_validation": round(validation_unaries, 2)}),
        "shortlist": json.dumps(table),
        "grid": json.dumps({c.label: round(v, 2) for c, v in train_scores.items()}),
        "command": "python -m engine.segmentation.crf.fit search " + " ".join(_without_out(argv)),
    }
    save_params(out, best.params(classes), **meta)
    print(f"wrote {out} ({best.label})")
    return best


def _without_out(argv: list[str]) -> list[str]:
    """The arguments less `--out PATH`: where a file was written is no part of what made it."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--out":
            skip = True
        elif not arg.startswith("--out="):
            kept.append(arg)
    return kept


def _grid_scores(candidates: list, samples: list[Sample], logits: CachedLogits, classes: int, what: str):
    """({candidate: mIoU}, unaries mIoU) on `samples`, at the app's working resolution and iteration."""
    from engine.segmentation.crf.kernels import NormalisedKernel, bilateral_features, spatial_features
    from engine.segmentation.crf.search import refine_many

    totals = {c: np.zeros((classes, classes), np.int64) for c in candidates}
    unaries_total = np.zeros((classes, classes), np.int64)
    groups: dict[tuple[float, float, float], list] = {}
    for c in candidates:
        groups.setdefault((c.theta_alpha, c.theta_beta, c.theta_gamma), []).append(c)
    start = time.perf_counter()
    for n, sample in enumerate(samples, 1):
        photo = load_photo(sample.photo)
        image, unaries = working_inputs(logits(sample, photo), photo)
        mask = resize_labels(read_mask(sample.mask), image.shape[1::-1])
        unaries_total += confusion(mask, unaries.argmax(0).astype(np.uint8), classes)
        h, w = image.shape[:2]
        spatial: dict[float, NormalisedKernel] = {}
        for members in groups.values():
            alpha, beta, gamma = working_params(members[0].params(classes), photo.size, (w, h)).thetas
            if gamma not in spatial:
                spatial[gamma] = NormalisedKernel(spatial_features(h, w, gamma))
            kernels = ImageKernels(spatial[gamma], NormalisedKernel(bilateral_features(image, alpha, beta)))
            labels = refine_many(unaries, kernels, [(c.spatial, c.bilateral) for c in members])
            for c, predicted in zip(members, labels, strict=True):
                totals[c] += confusion(mask, predicted, classes)
        print(f"{what} {n}/{len(samples)} {sample.name} ({time.perf_counter() - start:.0f} s)", flush=True)
    scores = {c: 100 * Scores(m, len(samples)).miou for c, m in totals.items()}
    return scores, 100 * Scores(unaries_total, len(samples)).miou


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
    se = sub.add_parser("search", help="grid search on fit-train, selection on fit-validation (what ships)")
    se.add_argument("--data", required=True)
    se.add_argument("--model", default=SegmentationWeights.DEFAULT.meta.name)
    se.add_argument("--backend", default="auto")
    se.add_argument("--spatial", type=float, nargs="+", default=[0.0, 1.0], help="spatial kernel weights")
    se.add_argument("--bilateral", type=float, nargs="+", default=[0.5, 1.5, 4.0], help="bilateral weights")
    se.add_argument("--alphas", type=float, nargs="+", default=[50.0, 120.0], help="bilateral position widths")
    se.add_argument("--betas", type=float, nargs="+", default=[3.0, 8.0], help="bilateral colour widths")
    se.add_argument("--shortlist", type=int, default=3, help="fit-train's best, scored on fit-validation")
    se.add_argument("--out", required=True)
    se.set_defaults(handler=search_grid)
    ev = sub.add_parser("evaluate", help="mIoU without CRF, with the defaults and with learned parameters")
    ev.add_argument("--data", required=True)
    ev.add_argument("--model", default=SegmentationWeights.DEFAULT.meta.name)
    ev.add_argument("--backend", default="auto")
    ev.add_argument("--params", help="learned parameters (.npz), for mode learned")
    ev.add_argument(
        "--modes", nargs="+", default=["none", "default", "learned"], choices=["none", "default", "learned"]
    )
    ev.add_argument(
        "--sets",
        nargs="+",
        default=["coco-held", "voc-held"],
        choices=["fit", "fit-train", "fit-validation", "coco-held", "voc-held"],
    )
    ev.set_defaults(handler=evaluate_sets)
    args = parser.parse_args(argv)
    args.argv = argv[1:]
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
