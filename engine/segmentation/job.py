"""Segmentation jobs: the public, Qt-free API that the app's segmentation viewer and the CLI share.

Importing this module never imports torch (the network's runtime is chosen when a job runs)::

    from engine.segmentation.job import SegmentationJob, SegmentationRequest, SegmentationCancelled

    job = SegmentationJob(SegmentationRequest("photo.jpg", crf="default"), on_progress=report)
    result = job.run()            # blocking: call it on a worker thread; job.cancel() from any thread
    result.labels                 # H x W uint8 class ids at the photo's size (the final answer)
    result.iteration_q[t]         # C x h x w float16 Q after t mean-field iterations (t = 0: softmax(U))
    result.labels_at(t)           # H x W labels after t iterations, as the final labels are made
    result.probability_at(t, x, y)  # (class id, probability) at photo pixel (x, y) after t iterations
    faster = SegmentationJob(result.request, on_progress=report).rerun_crf(result, params, iterations=5)

- Stages, reported as ``on_progress(stage, fraction)`` with fraction going 0 -> 1 within a stage:
  ``"loading model"``, ``"unaries"``, ``"crf"`` (one report per mean-field iteration: t / iterations)
  and ``"labels"``. Callbacks run on the job's thread: a UI must hand them to its own thread (Qt: a
  queued signal).
- ``cancel()`` is prompt: checked between stages and between mean-field iterations (one iteration of
  the default 500 x 375 working image takes a fraction of a second); ``run``/``rerun_crf`` then raise
  :class:`SegmentationCancelled`. A job is cancelled for good: make a new one for the next run.
- The CRF runs at a working resolution (at most 500 x 375 pixels, the photo's aspect ratio; see
  ``crf.working``): ``working_image``, ``unary_probabilities`` and ``iteration_q`` are at that size,
  ``labels`` and ``labels_at`` at the photo's size (each class's Q upsampled bilinearly, then argmax).
  With ``crf="none"``, ``labels`` are the network's own labels (argmax at its resolution, nearest
  resize: the published evaluation protocol) and ``iteration_q`` holds only Q0.
- ``rerun_crf`` reuses the result's cached unaries, their softmax and the lattices (rebuilt only when the
  thetas change, and then only the kernel whose thetas changed), so the viewer's CRF panel re-runs the CRF
  alone; the network does not run again. When only the iterations change, the steps already run are kept
  (fewer: cut; more: continued from the last one), equal to a fresh run's.
  ``iteration_q`` is a sequence that makes each step's C x h x w float16 array when it is first read
  (``engine.segmentation.iteration_q``), so a re-run pays only for the iterations and the final labels.
- Bad input raises :class:`SegmentationInputError` (unreadable, damaged, too large, bad option values) and
  a missing, damaged or unusable model :class:`SegmentationModelError`; both say what is wrong.
- ``crf="learned"`` uses the CRF parameters this project fitted (``resources/models/crf-learned.npz``);
  ``crf_params`` overrides the parameters of either CRF mode.
- Speed: classes whose probability stays under ``min_probability`` (0.01) at every pixel send no
  messages, so the CRF's cost grows with the classes present, not all 21 (labels agreed with the exact
  iteration on 100% of the benchmark photo's pixels); ``min_probability=0`` is the exact iteration.
  A weight change re-runs a 500 x 375 photo's CRF (10 iterations) in ~0.5 s of CPU, a bilateral width
  change (one new lattice) in ~0.9 s (``bench/crf_rerun.py``).
- Backends: ``"auto"`` runs ESPNetv2 in PyTorch when it is installed, else in ONNX Runtime; ``"torch"``
  and ``"onnx"`` force one. A user's own ONNX model always runs in ONNX Runtime.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from engine.segmentation.crf.kernels import NormalisedKernel, bilateral_features, spatial_features
from engine.segmentation.crf.meanfield import (
    INFERENCE_ITERATIONS,
    CompactQ,
    CrfParams,
    ImageKernels,
    mean_field_steps,
    softmax,
)
from engine.segmentation.crf.working import (
    REFERENCE_PIXELS,
    upsample_argmax,
    working_inputs,
    working_params,
)
from engine.segmentation.errors import SegmentationModelError
from engine.segmentation.iteration_q import IterationQ, to_float16
from engine.segmentation.photo import SegmentationInputError, load_photo, to_rgb
from engine.segmentation.preprocessing import labels_from_logits, resize_labels
from engine.segmentation.sources import UnarySource, open_source

__all__ = [
    "CrfParams",
    "SegmentationCancelled",
    "SegmentationInputError",
    "SegmentationJob",
    "SegmentationModelError",
    "SegmentationRequest",
    "SegmentationResult",
    "rerun_crf",
]

CrfMode = Literal["none", "default", "learned"]
CRF_MODES: tuple[str, ...] = ("none", "default", "learned")
MAX_PHOTO_PIXELS = 100_000_000  # bigger photos are refused: full-size label upsampling alone would need GBs
MAX_ITERATIONS = 100
KERNEL_CACHE = 3  # lattices kept per photo for CRF re-runs (79 MB each at 500 x 375, measured)
_KERNEL_LOCK = threading.Lock()
Progress = Callable[[str, float], None]


class SegmentationCancelled(Exception):
    """The job was cancelled before it finished."""


@dataclass
class SegmentationRequest:
    """What to segment and how. `image`: a PIL image (used as it is, made RGB) or a file path (EXIF-rotated)."""

    image: Image.Image | str | Path
    model: str | None = None  # a model name, a .pth/.onnx file, or None for the default ESPNetv2
    crf: CrfMode = "default"
    iterations: int = INFERENCE_ITERATIONS
    crf_params: CrfParams | None = None  # overrides the mode's parameters
    backend: str = "auto"
    max_pixels: int = REFERENCE_PIXELS  # CRF working resolution (pixels); lower is faster
    min_probability: float = 0.01  # classes below it at every pixel send no messages (0: the exact iteration)


@dataclass
class SegmentationResult:
    """One photo's segmentation with everything the viewer shows; see the module docstring for the shapes."""

    photo_size: tuple[int, int]  # (W, H)
    working_image: np.ndarray  # h x w x 3 uint8
    unary_probabilities: np.ndarray  # C x h x w float32, softmax of the network's logits
    iteration_q: Sequence[np.ndarray]  # iterations + 1 arrays, C x h x w float16; [0] = softmax(unaries)
    labels: np.ndarray  # H x W uint8 (final)
    classes: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    model_name: str
    crf_mode: str
    params: CrfParams | None  # at the photo's scale (None when crf="none")
    backend: str = ""
    request: SegmentationRequest | None = field(default=None, repr=False)
    # caches for rerun_crf (not part of the public result)
    _unaries: np.ndarray | None = field(default=None, repr=False)  # C x h x w float32 logits, working size
    _kernels: dict[tuple[float, float, float], ImageKernels] = field(default_factory=dict, repr=False)
    _min_probability: float | None = field(default=None, repr=False)  # what the CRF's steps were run with

    @property
    def iterations(self) -> int:
        return len(self.iteration_q) - 1

    def _check_iteration(self, iteration: int) -> int:
        last = self.iterations
        if iteration < 0:
            iteration += last + 1
        if not 0 <= iteration <= last:
            raise IndexError(f"iteration {iteration} out of range 0..{last}")
        return iteration

    def labels_at(self, iteration: int) -> np.ndarray:
        """H x W uint8 labels after `iteration` mean-field iterations (negative counts from the end)."""
        iteration = self._check_iteration(iteration)
        if iteration == self.iterations:
            return self.labels
        steps = self.iteration_q
        if isinstance(steps, IterationQ) and self.working_image.shape[1::-1] == tuple(self.photo_size):
            return steps.labels(iteration).astype(np.uint8)  # the CRF ran at the photo's size
        return upsample_argmax(steps[iteration].astype(np.float32), self.photo_size)

    def probability_at(self, iteration: int, x: float, y: float) -> tuple[int, float]:
        """(most likely class, its probability) at photo pixel (x, y) after `iteration` iterations.

        Q is interpolated bilinearly (pixel centres aligned, edges clamped), as the labels are upsampled.
        """
        iteration = self._check_iteration(iteration)
        width, height = self.photo_size
        if not (0 <= x < width and 0 <= y < height):
            raise IndexError(f"({x}, {y}) is outside the {width} x {height} photo")
        q = self.iteration_q[iteration]
        h, w = q.shape[1:]
        fx = min(max((x + 0.5) * w / width - 0.5, 0.0), w - 1.0)
        fy = min(max((y + 0.5) * h / height - 0.5, 0.0), h - 1.0)
        x0, y0 = int(fx), int(fy)
        x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
        ax, ay = fx - x0, fy - y0
        top = (1 - ax) * q[:, y0, x0].astype(np.float64) + ax * q[:, y0, x1]
        bottom = (1 - ax) * q[:, y1, x0].astype(np.float64) + ax * q[:, y1, x1]
        values = (1 - ay) * top + ay * bottom
        best = int(values.argmax())
        return best, float(values[best])


def learned_params(num_classes: int) -> CrfParams:
    """The CRF parameters fitted by this project (resources/models/crf-learned.npz)."""
    from engine.segmentation.crf.learned import load_learned_params

    return load_learned_params(num_classes)


def _photo(image: Image.Image | str | Path) -> Image.Image:
    if isinstance(image, Image.Image):
        width, height = image.size
        if width * height > MAX_PHOTO_PIXELS:
            raise SegmentationInputError(f"a {width} x {height} image is too large to segment; scale it down first")
        if width < 1 or height < 1:
            raise SegmentationInputError(f"an empty image ({width} x {height}) cannot be segmented")
        try:
            return to_rgb(image)
        except (OSError, ValueError) as exc:
            raise SegmentationInputError(f"the image cannot be read as RGB ({exc})") from None
    if isinstance(image, str | Path):
        return load_photo(image, MAX_PHOTO_PIXELS)
    raise SegmentationInputError(f"expected a PIL image or a file path, got {type(image).__name__}")


def _check_request(request: SegmentationRequest) -> None:
    if request.crf not in CRF_MODES:
        raise SegmentationInputError(f"crf must be one of {', '.join(CRF_MODES)}, got {request.crf!r}")
    _check_iterations(request.iterations)
    if request.max_pixels < 1:
        raise SegmentationInputError(f"max_pixels must be at least 1, got {request.max_pixels}")
    if not 0.0 <= request.min_probability < 1.0:
        raise SegmentationInputError(f"min_probability must be in [0, 1), got {request.min_probability}")


def _check_iterations(iterations: int) -> None:
    if not isinstance(iterations, int | np.integer) or not 0 <= iterations <= MAX_ITERATIONS:
        raise SegmentationInputError(f"iterations must be a whole number from 0 to {MAX_ITERATIONS}, got {iterations}")


def _check_params(params: CrfParams, num_classes: int) -> None:
    for name in ("spatial_weights", "bilateral_weights", "compatibility"):
        shape = np.shape(getattr(params, name))
        if shape != (num_classes, num_classes):
            raise SegmentationInputError(f"crf_params.{name} is {shape}, the model has {num_classes} classes")
    if min(params.thetas) <= 0:
        raise SegmentationInputError(f"CRF thetas must be positive, got {params.thetas}")


class SegmentationJob:
    """One segmentation run (or CRF re-run); see the module docstring. Not reusable after `cancel()`."""

    def __init__(
        self,
        request: SegmentationRequest | None,
        on_progress: Progress | None = None,
        source: UnarySource | None = None,
    ) -> None:
        """`source`: an already opened unary source (tests, or a caller that keeps one); else opened from
        `request.model` and `request.backend` (cached per process)."""
        self.request = request
        self.on_progress = on_progress
        self.source = source
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """Ask the job to stop at the next check (thread-safe)."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def _step(self, stage: str, fraction: float) -> None:
        if self._cancelled.is_set():
            raise SegmentationCancelled(f"segmentation cancelled during {stage}")
        if self.on_progress is not None:
            self.on_progress(stage, fraction)

    def run(self) -> SegmentationResult:
        """Network, CRF and labels for `request`; blocking (run it on a worker thread)."""
        request = self.request
        if request is None:
            raise SegmentationInputError("this job has no request to run")
        _check_request(request)
        photo = _photo(request.image)
        self._step("loading model", 0.0)
        source = self.source if self.source is not None else open_source(request.model, request.backend)
        self._step("loading model", 1.0)
        self._step("unaries", 0.0)
        logits = np.asarray(source.logits(photo), np.float32)
        if logits.ndim != 3 or logits.shape[0] != len(source.classes):
            raise SegmentationModelError(
                f"{source.name} gave scores of shape {logits.shape}, expected {len(source.classes)} x h x w"
            )
        image, unaries = working_inputs(logits, photo, request.max_pixels)
        self._step("unaries", 1.0)
        params = None
        if request.crf != "none":
            params = request.crf_params
            if params is None:
                params = learned_params(len(source.classes)) if request.crf == "learned" else None
            params = params if params is not None else CrfParams.default(len(source.classes))
            _check_params(params, len(source.classes))
        result = SegmentationResult(
            photo_size=photo.size,
            working_image=image,
            unary_probabilities=softmax(unaries, axis=0).astype(np.float32),
            iteration_q=[],
            labels=np.zeros(0, np.uint8),
            classes=tuple(source.classes),
            palette=tuple(source.palette),
            model_name=source.name,
            crf_mode=request.crf,
            params=params,
            backend=source.backend,
            request=request,
            _unaries=unaries,
        )
        if params is None:
            result.iteration_q = [to_float16(result.unary_probabilities)]
            self._step("labels", 0.0)
            result.labels = resize_labels(labels_from_logits(logits), photo.size)
            self._step("labels", 1.0)
            return result
        return self._crf(result, params, request.iterations)

    def rerun_crf(
        self, result: SegmentationResult, params: CrfParams | None = None, iterations: int | None = None
    ) -> SegmentationResult:
        """A new result with the CRF re-run on `result`'s cached unaries (the network does not run again).

        params None: `result.params` (crfasrnn's defaults if it had none); iterations None: the result's.
        """
        if result._unaries is None:
            raise SegmentationInputError("this result holds no cached unaries to re-run the CRF on")
        num_classes = len(result.classes)
        params = params if params is not None else result.params or CrfParams.default(num_classes)
        _check_params(params, num_classes)
        iterations = iterations if iterations is not None else max(result.iterations, 1)
        _check_iterations(iterations)
        crf_mode = result.crf_mode if result.crf_mode != "none" else "default"
        fresh = SegmentationResult(
            photo_size=result.photo_size,
            working_image=result.working_image,
            unary_probabilities=result.unary_probabilities,
            iteration_q=[],
            labels=np.zeros(0, np.uint8),
            classes=result.classes,
            palette=result.palette,
            model_name=result.model_name,
            crf_mode=crf_mode,
            params=params,
            backend=result.backend,
            request=result.request,
            _unaries=result._unaries,
            _kernels=result._kernels,  # shared: lattices depend only on the image and the thetas
        )
        return self._crf(fresh, params, iterations, self._reusable(result, params))

    def _reusable(self, result: SegmentationResult, params: CrfParams) -> list[CompactQ] | None:
        """`result`'s steps when only the iterations change: the same parameters and min_probability give
        the same steps, so a re-run keeps them (fewer iterations: cut; more: continued from the last)."""
        steps = result.iteration_q
        if not isinstance(steps, IterationQ) or result.params is None or not _same_params(params, result.params):
            return None
        kept = steps.steps() if result._min_probability == self._min_probability() else None
        return kept if kept and all(isinstance(step, CompactQ) for step in kept) else None  # type: ignore[return-value]

    def _min_probability(self) -> float:
        request = self.request
        return request.min_probability if request is not None else SegmentationRequest.min_probability

    def _crf(
        self, result: SegmentationResult, params: CrfParams, iterations: int, reuse: list[CompactQ] | None = None
    ) -> SegmentationResult:
        """Mean-field at the working resolution, Q kept per iteration, labels at the photo's size. `reuse`:
        the steps of a run with the same parameters, continued (or cut) to `iterations`."""
        min_probability = result._min_probability = self._min_probability()
        image, unaries = result.working_image, result._unaries
        assert unaries is not None
        self._step("crf", 0.0)
        scaled = working_params(params, result.photo_size, image.shape[1::-1])
        probabilities = result.unary_probabilities
        c, h, w = unaries.shape
        q0 = CompactQ(c, np.arange(c), probabilities.reshape(c, h * w), None, None)  # whatever the parameters
        if not (np.any(scaled.spatial_weights) or np.any(scaled.bilateral_weights)):
            # No kernel weight, no messages: every iteration's Q is softmax(U) (e.g. the shipped learned
            # parameters), so neither lattices nor iterations are needed.
            result.iteration_q = IterationQ(unaries.shape, [q0] * (iterations + 1))
            final = q0
            self._step("crf", 1.0)
        else:
            final = self._iterate(result, scaled, iterations, q0, reuse, min_probability)
        self._step("labels", 0.0)
        if image.shape[1::-1] == tuple(result.photo_size):  # the CRF ran at the photo's size: labels directly
            result.labels = final.argmax().reshape(image.shape[:2]).astype(np.uint8)
        else:
            result.labels = upsample_argmax(final.planes().reshape(unaries.shape), result.photo_size)
        self._step("labels", 1.0)
        return result

    def _iterate(
        self,
        result: SegmentationResult,
        scaled: CrfParams,
        iterations: int,
        q0: CompactQ,
        reuse: list[CompactQ] | None,
        min_probability: float,
    ) -> CompactQ:
        """Run (or continue) the mean-field steps into result.iteration_q; returns the last Q."""
        image, unaries = result.working_image, result._unaries
        kernels = _cached_kernels(result._kernels, image, scaled.thetas)
        probabilities = result.unary_probabilities
        kept = (reuse or [q0])[: iterations + 1]
        steps = IterationQ(unaries.shape, kept)
        result.iteration_q = steps
        final, done = kept[-1], len(kept) - 1
        start = final if done else None
        for t, step in enumerate(
            mean_field_steps(unaries, image, scaled, iterations - done, kernels, min_probability, probabilities, start)
        ):
            if t:
                final = step.compact()
                steps.append(final)  # made into a float16 array only when someone looks at it
            self._step("crf", (done + t) / iterations if iterations else 1.0)  # the cancel check between iterations
        return final


def _same_params(a: CrfParams, b: CrfParams) -> bool:
    names = ("spatial_weights", "bilateral_weights", "compatibility")
    return a.thetas == b.thetas and all(np.array_equal(getattr(a, n), getattr(b, n)) for n in names)


def _cached_kernels(
    cache: dict[tuple[float, float, float], ImageKernels], image: np.ndarray, thetas: tuple[float, float, float]
) -> ImageKernels:
    """The lattices for `thetas`, from `cache` or built, reusing a cached kernel whose own thetas match (a
    bilateral change keeps the spatial lattice and vice versa). The cache keeps the last KERNEL_CACHE; the
    lock keeps it whole when jobs on other threads re-run the same result at once."""
    with _KERNEL_LOCK:
        kernels = cache.pop(thetas, None)
        if kernels is None:
            alpha, beta, gamma = thetas
            spatial = next((k.spatial for t, k in cache.items() if t[2] == gamma), None)
            bilateral = next((k.bilateral for t, k in cache.items() if t[:2] == (alpha, beta)), None)
            h, w = image.shape[:2]
            kernels = ImageKernels(
                spatial or NormalisedKernel(spatial_features(h, w, gamma)),
                bilateral or NormalisedKernel(bilateral_features(image, alpha, beta)),
            )
        cache[thetas] = kernels  # (re)inserted last: the most recently used
        while len(cache) > KERNEL_CACHE:
            del cache[next(iter(cache))]
        return kernels


def rerun_crf(
    result: SegmentationResult,
    params: CrfParams | None = None,
    iterations: int | None = None,
    on_progress: Progress | None = None,
) -> SegmentationResult:
    """`SegmentationJob(result.request, on_progress).rerun_crf(result, params, iterations)` (not cancellable)."""
    return SegmentationJob(result.request, on_progress).rerun_crf(result, params, iterations)
