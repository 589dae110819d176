"""Our torch-free CRF against pydensecrf2 on the same image, unaries and parameters; last line `ratio=X`.

X = our CRF's time / pydensecrf2's (median of 3 runs each, process CPU time at one thread: on a shared
machine CPU time is the fair measure; wall times are printed too). Both run the full CRF: building the
lattices from the image, 10 mean-field iterations, labels (argmax). Same inputs for both: the image (the
crfasrnn demo photo stretched to --size, about 500 x 375), the ESPNetv2 s2.0 reference logits upsampled
to it, as unaries -log softmax (pydensecrf2) or logits (ours: the same Q up to a per-pixel constant),
21 labels, crfasrnn's parameters (spatial: theta_gamma 3, weight 3; bilateral: theta_alpha 160,
theta_beta 3, weight 5; Potts) and crfasrnn's normalisation (pydensecrf2's NORMALIZE_AFTER). The
labels must agree on at least 99% of pixels. Ours runs with `--min-probability` (default 0.01: classes
below it at every pixel send no messages); 0 is the exact iteration.

Also printed: the full pipeline (photo -> ESPNetv2 in ONNX Runtime -> CRF at the working resolution ->
labels at the photo's size) through the job API when the checkpoint is found, and peak memory.

    OMP_NUM_THREADS=1 python bench/crf_speed.py
    OMP_NUM_THREADS=1 python bench/crf_speed.py --min-probability 0      # exact iteration
    OMP_NUM_THREADS=1 python bench/crf_speed.py --photo 4000x3000        # refine_photo on a large photo

The image and logits come from ../shared/models/espnetv2/reference (or $PENWRIGHT_SHARED); without them,
a synthetic image with random logits (and no full-pipeline figure).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
import tracemalloc
from pathlib import Path

import numpy as np
from PIL import Image

from engine.segmentation.crf.meanfield import ImageKernels, mean_field
from engine.segmentation.crf.working import refine_photo

SPATIAL = {"theta": 3.0, "weight": 3.0}
BILATERAL = {"theta_alpha": 160.0, "theta_beta": 3.0, "weight": 5.0}


def shared() -> Path:
    env = os.environ.get("PENWRIGHT_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared"


def load_case(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, str]:
    folder = shared() / "models/espnetv2/reference"
    if (folder / "crfasrnn_image_s2.0_logits.npy").is_file():
        image = Image.open(folder / "images" / "crfasrnn_image.jpg").convert("RGB").resize(size)
        logits = np.load(folder / "crfasrnn_image_s2.0_logits.npy").astype(np.float32)
        bilinear = Image.Resampling.BILINEAR
        unaries = np.stack([np.asarray(Image.fromarray(c, "F").resize(size, bilinear)) for c in logits])
        return np.asarray(image), unaries, "crfasrnn_image + ESPNetv2 s2.0 logits"
    rng = np.random.default_rng(0)
    w, h = size
    image = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    return image, rng.normal(size=(21, h, w)).astype(np.float32), "synthetic noise image, random logits"


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def ours(image: np.ndarray, unaries: np.ndarray, iterations: int, min_probability: float) -> np.ndarray:
    kernels = ImageKernels.build(image, BILATERAL["theta_alpha"], BILATERAL["theta_beta"], SPATIAL["theta"])
    q, _ = mean_field(unaries, image, iterations=iterations, kernels=kernels, min_probability=min_probability)
    return q.argmax(0)


def pydensecrf(image: np.ndarray, unaries: np.ndarray, iterations: int) -> np.ndarray:
    import pydensecrf.densecrf as dcrf

    c, h, w = unaries.shape
    shifted = unaries - unaries.max(0)
    energy = -(shifted - np.log(np.exp(shifted).sum(0)))  # -log softmax
    crf = dcrf.DenseCRF2D(w, h, c)
    crf.setUnaryEnergy(np.ascontiguousarray(energy.reshape(c, -1), np.float32))
    crf.addPairwiseGaussian(sxy=SPATIAL["theta"], compat=SPATIAL["weight"], normalization=dcrf.NORMALIZE_AFTER)
    crf.addPairwiseBilateral(
        sxy=BILATERAL["theta_alpha"],
        srgb=BILATERAL["theta_beta"],
        rgbim=np.array(image, np.uint8, order="C"),  # a writable copy: pydensecrf2 refuses read-only buffers
        compat=BILATERAL["weight"],
        normalization=dcrf.NORMALIZE_AFTER,
    )
    return np.asarray(crf.inference(iterations)).argmax(0).reshape(h, w)


def median_of(runs: int, fn) -> tuple[np.ndarray, float, float]:
    results = [timed(fn) for _ in range(runs)]
    return results[-1][0], statistics.median(r[2] for r in results), statistics.median(r[1] for r in results)


def full_pipeline(iterations: int) -> str:
    """Photo -> ONNX Runtime ESPNetv2 -> CRF -> labels through the job API (seconds), or why not."""
    checkpoint = shared() / "models/espnetv2/espnetv2_s_2.0_pascal_384x384.pth"
    photo = shared() / "models/espnetv2/reference/images/crfasrnn_image.jpg"
    if not checkpoint.is_file() or not photo.is_file():
        return "full pipeline: skipped (checkpoint or photo not found)"
    from engine.segmentation.job import SegmentationJob, SegmentationRequest
    from engine.segmentation.sources import open_source

    source, load_wall, load_cpu = timed(lambda: open_source(str(checkpoint), "onnx"))
    stages: dict[str, float] = {}
    last = [time.process_time(), ""]

    def progress(stage: str, fraction: float) -> None:
        now = time.process_time()
        if last[1]:
            stages[last[1]] = stages.get(last[1], 0.0) + now - last[0]
        last[:] = [now, stage]

    request = SegmentationRequest(str(photo), iterations=iterations, min_probability=0.01)
    result, wall, cpu = timed(lambda: SegmentationJob(request, progress, source=source).run())
    parts = ", ".join(f"{k} {v:.2f}" for k, v in stages.items())
    return (
        f"full pipeline (job API, ONNX Runtime, {result.photo_size[0]}x{result.photo_size[1]} photo): cpu {cpu:.2f} s, "
        f"wall {wall:.2f} s [{parts}]; opening the model once: cpu {load_cpu:.2f} s"
    )


def photo_mode(args: argparse.Namespace, image: np.ndarray, unaries: np.ndarray, size) -> None:
    photo_size = tuple(int(v) for v in args.photo.split("x"))
    photo = Image.fromarray(image).resize(photo_size, Image.Resampling.BICUBIC)
    tracemalloc.start()
    labels, wall, cpu = timed(
        lambda: refine_photo(unaries, photo, iterations=args.iterations, min_probability=args.min_probability)
    )
    _, peak = tracemalloc.get_traced_memory()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"refine_photo {args.photo} (unaries {size[0]}x{size[1]}): wall {wall:.2f} s, cpu {cpu:.2f} s")
    print(f"peak traced memory {peak / 2**20:.0f} MiB (photo itself not counted), max RSS {rss:.0f} MiB")
    print(f"labels {labels.shape} {np.bincount(labels.ravel()).nonzero()[0].tolist()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="500x375", help="W x H")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--min-probability", type=float, default=0.01, help="skip classes below it (0: exact)")
    parser.add_argument("--photo", help="W x H: time refine_photo on the image upscaled to this size instead")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    image, unaries, source = load_case(size)
    if args.photo:
        photo_mode(args, image, unaries, size)
        return
    print(f"{source}, {size[0]}x{size[1]}, {unaries.shape[0]} labels, {args.iterations} iterations, 1 thread")
    mine, cpu, wall = median_of(args.runs, lambda: ours(image, unaries, args.iterations, args.min_probability))
    print(f"ours (numpy + scipy.sparse, min_probability {args.min_probability}): cpu {cpu:.2f} s, wall {wall:.2f} s")
    tracemalloc.start()  # one more run, traced apart: tracing slows allocation
    ours(image, unaries, args.iterations, args.min_probability)
    print(f"  peak traced memory {tracemalloc.get_traced_memory()[1] / 2**20:.0f} MiB")
    tracemalloc.stop()
    try:
        theirs, their_cpu, their_wall = median_of(args.runs, lambda: pydensecrf(image, unaries, args.iterations))
    except ImportError as exc:
        raise SystemExit(f"pydensecrf2 is not installed (pip install 'penwright[bench]'): {exc}") from None
    print(f"pydensecrf2 (C++, NORMALIZE_AFTER): cpu {their_cpu:.2f} s, wall {their_wall:.2f} s")
    agree = float((mine == theirs).mean())
    print(f"labels agree on {agree:.4%} of pixels; the CRF changed {(theirs != unaries.argmax(0)).mean():.2%}")
    if agree < 0.99:
        print("WARNING: labels agree on fewer than 99% of pixels")
    print(full_pipeline(args.iterations))
    print(f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    print(f"ratio={cpu / their_cpu:.2f}")


if __name__ == "__main__":
    main()
