"""Seconds and peak memory of the numpy CRF-RNN inference (engine.segmentation.crf) on one image.

Times the lattice build (once per image) and `--iterations` mean-field iterations (the part re-run when
the CRF's weights change), as wall and process CPU time (CPU time is the fairer number on a busy
machine at one thread), and the peak of Python-allocated memory (tracemalloc, numpy buffers included)
and the process's max RSS. The image is the crfasrnn demo image with the ESPNetv2 s2.0 reference logits
from ../shared/models/espnetv2/reference (or $PENWRIGHT_SHARED), stretched to --size; without them, a
synthetic image with random logits.

    OMP_NUM_THREADS=1 python bench/crf_speed.py                  # 500 x 375, 21 classes, 10 iterations
    OMP_NUM_THREADS=1 python bench/crf_speed.py --size 250x188 --min-probability 0.01
    OMP_NUM_THREADS=1 python bench/crf_speed.py --photo 4000x3000   # working resolution, labels at photo size
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import tracemalloc
from pathlib import Path

import numpy as np
from PIL import Image

from engine.segmentation.crf.meanfield import ImageKernels, mean_field
from engine.segmentation.crf.working import refine_photo


def load_case(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, str]:
    env = os.environ.get("PENWRIGHT_SHARED")
    folder = (Path(env) if env else Path(__file__).resolve().parents[2] / "shared") / "models/espnetv2/reference"
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="500x375", help="W x H")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--min-probability", type=float, default=0.0, help="skip classes below it (0: exact)")
    parser.add_argument("--photo", help="W x H: time refine_photo on the image upscaled to this size instead")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    image, unaries, source = load_case(size)
    if args.photo:
        photo_size = tuple(int(v) for v in args.photo.split("x"))
        photo = Image.fromarray(image).resize(photo_size, Image.Resampling.BICUBIC)
        del image
        tracemalloc.start()
        labels, wall, cpu = timed(
            lambda: refine_photo(unaries, photo, iterations=args.iterations, min_probability=args.min_probability)
        )
        _, peak = tracemalloc.get_traced_memory()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"refine_photo {args.photo} (unaries {size[0]}x{size[1]}): wall {wall:.2f} s, cpu {cpu:.2f} s")
        print(f"peak traced memory {peak / 2**20:.0f} MiB (photo itself not counted), max RSS {rss:.0f} MiB")
        print(f"labels {labels.shape} {np.bincount(labels.ravel()).nonzero()[0].tolist()}")
        return
    tracemalloc.start()
    kernels, build_wall, build_cpu = timed(lambda: ImageKernels.build(image))
    (q, _), run_wall, run_cpu = timed(
        lambda: mean_field(
            unaries, image, iterations=args.iterations, kernels=kernels, min_probability=args.min_probability
        )
    )
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    changed = (q.argmax(0) != unaries.argmax(0)).mean()
    print(f"{source}, {size[0]}x{size[1]}, {unaries.shape[0]} classes, {args.iterations} iterations")
    print(f"lattice points: spatial {kernels.spatial.lattice.size}, bilateral {kernels.bilateral.lattice.size}")
    print(f"build: wall {build_wall:.2f} s, cpu {build_cpu:.2f} s")
    print(f"iterations: wall {run_wall:.2f} s, cpu {run_cpu:.2f} s ({run_cpu / max(args.iterations, 1):.3f} s each)")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak traced memory {peak / 2**20:.0f} MiB, max RSS {rss:.0f} MiB")
    print(f"labels changed by the CRF: {changed:.2%}")


if __name__ == "__main__":
    main()
