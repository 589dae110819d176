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


def register(sub: argparse._SubParsersAction) -> None:
    models = sub.choices.get("models") or sub.add_parser("models", help="list the models Penwright has")
    actions = models.add_subparsers(dest="action", metavar="ACTION")
    models.set_defaults(handler=_list_all)
    listing = actions.add_parser("list", help="list handwriting and segmentation models (the default)")
    listing.set_defaults(handler=_list_all)
    install = actions.add_parser("install", help="install a segmentation checkpoint (.pth) from a file")
    install.add_argument("path", help="a published ESPNetv2 checkpoint, recognised by its SHA-256")
    install.set_defaults(handler=_install)
    download = actions.add_parser("download", help="download a segmentation checkpoint from where it is published")
    download.add_argument("name", help="model name, e.g. espnetv2-s2.0-pascal-384 (see `penwright models list`)")
    download.set_defaults(handler=_download)

    seg = sub.add_parser(
        "segment",
        help="label each pixel of a photo with a PASCAL VOC class (ESPNetv2 + CRF)",
        description="Write a palette PNG whose pixel values are VOC class ids (0 = background), the format of VOC "
        "ground truth. The network needs PyTorch for now; the CRF runs in numpy.",
    )
    seg.add_argument("image", help="a photo (JPEG, PNG, ...); transparency is flattened onto white")
    seg.add_argument("-o", "--output", required=True, help="class-id PNG to write")
    seg.add_argument(
        "--model",
        default="espnetv2-s2.0-pascal-384",
        help="model name or checkpoint file (default: %(default)s)",
    )
    seg.add_argument("--crf", action=argparse.BooleanOptionalAction, default=True, help="refine with the CRF")
    seg.add_argument("--iterations", type=int, default=None, help="CRF mean-field iterations (default 10)")
    seg.add_argument("--overlay", metavar="FILE", help="also write the photo with the classes coloured in")
    seg.set_defaults(handler=_segment)


def _list_all(args: argparse.Namespace) -> int:
    handwriting_commands._models(args)
    return _list_segmentation()


def _list_segmentation() -> int:
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
    print(f"segmentation models folder: {segmentation_dir()}")
    return 0


def _install(args: argparse.Namespace) -> int:
    from engine.segmentation.install import identify, install_from_file

    weights = identify(args.path)
    target = install_from_file(args.path)
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


def _segment(args: argparse.Namespace) -> int:
    from engine.segmentation.photo import load_photo

    output = Path(args.output)
    if output.suffix.lower() != ".png":
        raise ValueError(f"{output}: the class-id map is written as PNG; name the output *.png")
    if args.iterations is not None and args.iterations < 0:
        raise ValueError("--iterations must be 0 or more")
    photo = load_photo(args.image, MAX_PIXELS)
    weights, path = _model(args.model)
    try:
        import torch  # noqa: F401
    except ImportError:
        raise RuntimeError(
            "segmenting needs PyTorch for now (pip install 'penwright[torch]'); the torch-free path is not ready yet"
        ) from None
    from engine.segmentation.models import load_network, segment

    network = load_network(weights, path)
    result = segment(network, photo, weights)
    labels = result.labels
    if args.crf:
        from engine.segmentation.crf.meanfield import INFERENCE_ITERATIONS
        from engine.segmentation.crf.working import refine_photo

        iterations = INFERENCE_ITERATIONS if args.iterations is None else args.iterations
        labels = refine_photo(result.logits, photo, iterations=iterations)
    _write_outputs(labels, photo, weights, output, args.overlay)
    print(f"wrote {output}: {_summary(labels, weights.meta.classes)}")
    return 0


def _model(name: str):
    """(weights, checkpoint path) from a model name or a checkpoint file, with a hint when it is not installed."""
    from engine.segmentation.install import identify
    from engine.segmentation.models import checkpoint_path

    if Path(name).suffix == ".pth" or Path(name).is_file():
        return identify(name), Path(name)
    weights = _weights(name)
    path = checkpoint_path(weights)
    if not path.is_file():
        raise ValueError(
            f"{weights.meta.name} is not installed: run `penwright models download {weights.meta.name}` "
            f"or `penwright models install FILE` (published at {weights.meta.url})"
        )
    return weights, path


def _write_outputs(labels, photo, weights, output: Path, overlay: str | None) -> None:
    from engine.atomic import atomic_write_bytes
    from engine.segmentation.photo import overlay_image
    from engine.segmentation.preprocessing import label_image

    buffer = io.BytesIO()
    label_image(labels, weights.meta.palette).save(buffer, "PNG", optimize=True)
    atomic_write_bytes(output, buffer.getvalue())
    if overlay:
        from PIL import Image

        fmt = Image.registered_extensions().get(Path(overlay).suffix.lower())
        if fmt is None:
            raise ValueError(f"{overlay}: unknown image type; use .png or .jpg")
        buffer = io.BytesIO()
        overlay_image(photo, labels, weights.meta.palette).save(buffer, fmt)
        atomic_write_bytes(overlay, buffer.getvalue())
        print(f"wrote {overlay}")


def _summary(labels, classes: tuple[str, ...]) -> str:
    import numpy as np

    counts = np.bincount(labels.ravel(), minlength=len(classes))
    shown = [(n, c) for c, n in enumerate(counts) if n]
    shown.sort(reverse=True)
    return ", ".join(f"{classes[c]} {100 * n / labels.size:.1f}%" for n, c in shown)
