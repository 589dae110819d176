"""Segmentation subcommands: `models install|download|list` and `segment`.

Kept apart from the handwriting commands so either side can change alone; the `models` parser is shared,
so with no action `penwright models` still lists the handwriting models first, then the segmentation ones.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from engine.cli import handwriting_commands

MAX_PIXELS = 100_000_000  # bigger photos are refused: the full-size label upsampling alone would need GBs
CRF_CHOICES = ("none", "default", "learned")


def register(sub: argparse._SubParsersAction) -> None:
    models = sub.choices.get("models") or sub.add_parser("models", help="list the models Penwright has")
    actions = models.add_subparsers(dest="action", metavar="ACTION")
    models.set_defaults(handler=_list_all)
    listing = actions.add_parser("list", help="list handwriting and segmentation models (the default)")
    listing.set_defaults(handler=_list_all)
    install = actions.add_parser(
        "install",
        help="install a segmentation model from a file: a published ESPNetv2 .pth, or your own .onnx",
        description="A .pth must be a published ESPNetv2 checkpoint (recognised by its SHA-256). An .onnx is any "
        "model with one N x 3 x H x W input and N x C x h x w class scores out, described by a sidecar JSON "
        "(classes, colours, preprocessing; see README) given with --sidecar or found beside it as MODEL.json.",
    )
    install.add_argument("path", help="MODEL.pth or MODEL.onnx")
    install.add_argument("--sidecar", help="the .onnx model's description (default: MODEL.json beside it)")
    install.set_defaults(handler=_install)
    download = actions.add_parser("download", help="download a segmentation checkpoint from where it is published")
    download.add_argument("name", help="model name, e.g. espnetv2-s2.0-pascal-384 (see `penwright models list`)")
    download.set_defaults(handler=_download)

    seg = sub.add_parser(
        "segment",
        help="label each pixel of photos with a class (ESPNetv2 or your model, then the CRF)",
        description="Write palette PNGs whose pixel values are class ids (0 = background; for VOC models the "
        "format of VOC ground truth). One image and -o NAME.png writes that file; otherwise -o is a folder that "
        "gets STEM.png per image (and STEM-overlay.jpg with --overlay).",
    )
    seg.add_argument("images", nargs="+", metavar="IMAGE|DIR", help="photos, or folders of photos")
    seg.add_argument("-o", "--output", required=True, help="class-id PNG (one image) or output folder")
    seg.add_argument("--model", default=None, help="model name, .pth or .onnx file (default: espnetv2-s2.0-pascal-384)")
    seg.add_argument("--crf", choices=CRF_CHOICES, default="default", help="CRF parameters (default: %(default)s)")
    seg.add_argument("--no-crf", dest="crf", action="store_const", const="none", help="same as --crf none")
    seg.add_argument("--iterations", type=int, default=None, help="CRF mean-field iterations (default 10)")
    seg.add_argument(
        "--overlay",
        nargs="?",
        const=True,
        default=None,
        metavar="FILE",
        help="also write the photo with the classes coloured in (FILE for a single image)",
    )
    seg.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto", help="network runtime")
    seg.set_defaults(handler=_segment)
    _register_eval(sub)


def _register_eval(sub: argparse._SubParsersAction) -> None:
    evaluate = sub.choices.get("eval")
    if evaluate is None:
        return
    eval_sub = next(a for a in evaluate._actions if isinstance(a, argparse._SubParsersAction))
    ev = eval_sub.add_parser(
        "segmentation",
        help="mean IoU of a segmentation model (and CRF) on images with ground-truth masks",
        description="Images and masks are paired by file stem; one confusion matrix over all images; the mean "
        "is over the classes present in the ground truth; mask value 255 is ignored. The last line reads "
        "miou=<percent> pixel_acc=<percent> images=<n>.",
    )
    ev.add_argument("--images", required=True, help="folder of photos")
    ev.add_argument("--masks", required=True, help="folder of class-id PNG masks with the same stems")
    ev.add_argument("--model", default=None, help="model name, .pth or .onnx file (default: espnetv2-s2.0-pascal-384)")
    ev.add_argument("--crf", choices=CRF_CHOICES, default="default", help="CRF parameters (default: %(default)s)")
    ev.add_argument("--iterations", type=int, default=None, help="CRF mean-field iterations (default 10)")
    ev.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto", help="network runtime")
    ev.add_argument("--per-image", action="store_true", help="print each image's mIoU as it goes")
    ev.set_defaults(handler=_eval_segmentation)


def _list_all(args: argparse.Namespace) -> int:
    handwriting_commands._models(args)
    return _list_segmentation()


def _list_segmentation() -> int:
    from engine.segmentation.custom import installed_custom
    from engine.segmentation.install import installed_models, segmentation_dir
    from engine.segmentation.manifest import SegmentationWeights

    installed = {m.weights: m for m in installed_models()}
    for weights in SegmentationWeights:
        meta = weights.meta
        found = installed.get(weights)
        if found is None:
            state = "not installed (`penwright models download " + meta.name + "`)"
        elif not found.ok:
            state = f"DAMAGED, reinstall it [{found.path}]"
        else:
            state = f"installed [{found.path}]"
        miou = f"{meta.voc_val_miou:.1f} VOC mIoU" if meta.voc_val_miou is not None else ""
        print(f"segmentation {meta.name}: {meta.parameters / 1e6:.2f} M params, {miou}, {state}")
    for name, path, sidecar, problem in installed_custom():
        if sidecar is None:
            print(f"segmentation {name}: your ONNX model, BROKEN ({problem}) [{path}]")
        else:
            print(f"segmentation {name}: your ONNX model, {len(sidecar.classes)} classes, installed [{path}]")
    print(f"segmentation models folder: {segmentation_dir()}")
    return 0


def _install(args: argparse.Namespace) -> int:
    if Path(args.path).suffix.lower() == ".onnx":
        from engine.segmentation.custom import install_custom

        target = install_custom(args.path, args.sidecar)
        print(f"installed {target.stem} at {target} (use it with --model {target.stem})")
        return 0
    if args.sidecar:
        raise ValueError("--sidecar goes with an .onnx model; a .pth checkpoint is recognised by its SHA-256")
    from engine.segmentation.install import identify, install_from_file
    from engine.segmentation.sources import clear_cache

    weights = identify(args.path)
    target = install_from_file(args.path)
    clear_cache()
    print(f"installed {weights.meta.name} at {target}")
    return 0


def _weights(name: str):
    from engine.segmentation.manifest import SegmentationWeights

    try:
        return SegmentationWeights.by_name(name)
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None


def _download(args: argparse.Namespace) -> int:
    from engine.segmentation.install import download

    weights = _weights(args.name)
    shown = [-1]

    def progress(done: int, total: int | None) -> None:
        if total and sys.stderr.isatty():
            percent = 100 * done // total
            if percent != shown[0]:
                shown[0] = percent
                print(f"\r{weights.meta.checkpoint}: {percent}%", end="", file=sys.stderr, flush=True)

    target = download(weights, progress=progress)
    if shown[0] >= 0:
        print(file=sys.stderr)
    print(f"installed {weights.meta.name} at {target}")
    return 0


def _request(args: argparse.Namespace, image):
    from engine.segmentation.crf.meanfield import INFERENCE_ITERATIONS
    from engine.segmentation.job import SegmentationRequest

    iterations = INFERENCE_ITERATIONS if args.iterations is None else args.iterations
    if iterations < 0:
        raise ValueError("--iterations must be 0 or more")
    return SegmentationRequest(image, model=args.model, crf=args.crf, iterations=iterations, backend=args.backend)


def _segment(args: argparse.Namespace) -> int:
    from engine.segmentation.evaluate import iter_images
    from engine.segmentation.job import SegmentationJob

    output = Path(args.output)
    images = list(iter_images(args.images))
    single = len(images) == 1 and not Path(args.images[0]).is_dir() and output.suffix != ""
    if single and output.suffix.lower() != ".png":
        raise ValueError(f"{output}: the class-id map is written as PNG; name the output *.png (or give a folder)")
    if not images:
        raise ValueError(f"no images found in {', '.join(args.images)}")
    if isinstance(args.overlay, str) and not single:
        raise ValueError("--overlay FILE is for one image; with a folder output give --overlay alone")
    stems = [p.stem for p in images]
    if not single and len(set(stems)) != len(stems):
        raise ValueError("two input images share a file stem; their outputs would overwrite each other")
    progress = _progress_bar(len(images))
    for path in images:
        progress.set_description(path.name)
        result = SegmentationJob(_request(args, path), on_progress=progress.stage).run()
        target = output if single else output / f"{path.stem}.png"
        overlay = None
        if args.overlay:
            overlay = args.overlay if isinstance(args.overlay, str) else target.with_name(f"{path.stem}-overlay.jpg")
        _write_outputs(result, path, target, overlay)
        progress.write(f"wrote {target}: {_summary(result.labels, result.classes)}")
        progress.update(1)
    progress.close()
    return 0


class _progress_bar:
    """tqdm over the images on stderr (silent when stderr is not a terminal), with the job's stage shown."""

    def __init__(self, total: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="image", file=sys.stderr, disable=not sys.stderr.isatty())

    def set_description(self, text: str) -> None:
        self.bar.set_description(text)

    def stage(self, stage: str, fraction: float) -> None:
        self.bar.set_postfix_str(f"{stage} {fraction:.0%}", refresh=True)

    def write(self, text: str) -> None:
        if self.bar.disable:
            print(text)
        else:
            self.bar.write(text)

    def update(self, n: int) -> None:
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()


def _write_outputs(result, photo_path: Path, output: Path, overlay: str | Path | None) -> None:
    from engine.atomic import atomic_write_bytes
    from engine.segmentation.photo import load_photo, overlay_image
    from engine.segmentation.preprocessing import label_image

    buffer = io.BytesIO()
    label_image(result.labels, result.palette).save(buffer, "PNG", optimize=True)
    atomic_write_bytes(output, buffer.getvalue())
    if overlay:
        from PIL import Image

        fmt = Image.registered_extensions().get(Path(overlay).suffix.lower())
        if fmt is None:
            raise ValueError(f"{overlay}: unknown image type; use .png or .jpg")
        buffer = io.BytesIO()
        photo = load_photo(photo_path, MAX_PIXELS)
        overlay_image(photo, result.labels, result.palette).save(buffer, fmt)
        atomic_write_bytes(overlay, buffer.getvalue())
        print(f"wrote {overlay}")


def _summary(labels, classes: tuple[str, ...]) -> str:
    import numpy as np

    counts = np.bincount(labels.ravel(), minlength=len(classes))
    shown = [(n, c) for c, n in enumerate(counts) if n]
    shown.sort(reverse=True)
    return ", ".join(f"{classes[c]} {100 * n / labels.size:.1f}%" for n, c in shown)


def _eval_segmentation(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from engine.segmentation.evaluate import evaluate, pair_by_stem
    from engine.segmentation.job import SegmentationJob
    from engine.segmentation.sources import open_source

    pairs = pair_by_stem(args.images, args.masks)
    source = open_source(args.model, args.backend)
    start = time.perf_counter()

    def predict(image: Path):
        return SegmentationJob(_request(args, image), source=source).run().labels

    def report(stem: str, matrix) -> None:
        if args.per_image:
            present = matrix.sum(1) > 0
            tp = np.diag(matrix)
            union = matrix.sum(0) + matrix.sum(1) - tp
            iou = tp[present] / np.maximum(union[present], 1)
            print(f"{stem}: miou={100 * iou.mean():.2f}" if present.any() else f"{stem}: no labelled pixels")

    scores = evaluate(pairs, predict, len(source.classes), report)
    names = source.classes
    for c in np.flatnonzero(scores.present):
        print(f"  {names[c]:<12} IoU {100 * scores.iou[c]:5.1f}")
    seconds = time.perf_counter() - start
    print(f"{source.name} ({source.backend}), crf {args.crf}: {seconds:.1f} s for {scores.images} images")
    print(f"miou={100 * scores.miou:.2f} pixel_acc={100 * scores.pixel_accuracy:.2f} images={scores.images}")
    return 0
