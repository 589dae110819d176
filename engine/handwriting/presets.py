"""Preset styles: lines a Penwright synthesis network wrote itself, saved as styles that ship with the app.

Presets are the project's own: each is a line the released synthesis model wrote at a fixed bias and seed,
never strokes from a data set. They live in ``resources/styles/*.penwright-style.json`` (read-only; listed by
:func:`engine.handwriting.styles.list_style_entries` beside the user's styles) and are made once per model
release:

    python -m engine.handwriting.presets --model resources/models/handwriting-synthesis.npz -o resources/styles

Each preset's ``source`` says it is a preset, which model file (name, sha256, training step) wrote it, with
which seed, bias and backend. A line that the model did not finish by itself (the length cap stopped it) or
whose ink does not pass the style checks is not kept: the next seed is tried (the seed used is recorded).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import warnings
from pathlib import Path

import numpy as np

from engine.handwriting.styles import Style, StyleError, save_style, style_path
from engine.handwriting.writer import HandwritingWriter

# (name, first seed); seeds are fixed so a release's presets can be made again from the same model
PRESETS = (
    ("Penwright neat", 11),
    ("Penwright quick", 23),
    ("Penwright round", 37),
    ("Penwright upright", 41),
    ("Penwright slanted", 53),
    ("Penwright loose", 67),
)
PRESET_TEXT = "Quick brown foxes jump over the lazy dog"  # pangram-like: most lowercase letters in one line
PRESET_BIAS = 1.5
TRIES = 8  # seeds tried per preset (first seed, then +1000, +2000, ...)


class PresetError(RuntimeError):
    """The model could not write a usable preset."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def preset_style(
    writer: HandwritingWriter, name: str, seed: int, text: str = PRESET_TEXT, bias: float = PRESET_BIAS, **source
) -> Style | None:
    """The line ``writer`` writes with ``seed`` as a Style (strokes y down), or None when it is not usable."""
    line = writer.write([text], bias=bias, seed=seed)[0]
    strokes = [np.column_stack([s[:, 0], -s[:, 1]]) for s in line.strokes if len(s) > 1]
    if not line.stopped_by_window or not strokes:
        return None
    info = {"preset": True, "generated_by": "engine.handwriting.presets", **source, "seed": seed, "bias": bias}
    try:
        style = Style(name=name, text=line.text, strokes=strokes, source=info)
        style.prime(writer.convention, writer.alphabet)  # the style checks, and the prime cached in the file
    except StyleError:
        return None
    return style


def generate_presets(
    model: str | Path,
    folder: str | Path,
    count: int = 3,
    text: str = PRESET_TEXT,
    bias: float = PRESET_BIAS,
    backend: str = "auto",
    tries: int = TRIES,
) -> list[Path]:
    """Write ``count`` preset style files into ``folder`` (replacing presets of the same names)."""
    if not 1 <= count <= len(PRESETS):
        raise ValueError(f"--count must be between 1 and {len(PRESETS)}")
    model = Path(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        writer = HandwritingWriter.load(model, backend=backend, device="cpu")
    meta = writer.model.meta
    source = {
        "model": model.name,
        "model_sha256": _sha256(model),
        "model_training_step": meta.get("training", {}).get("step"),
        "backend": writer.backend_description,
    }
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, first_seed in PRESETS[:count]:
        style = None
        for k in range(tries):
            style = preset_style(writer, name, first_seed + 1000 * k, text, bias, **source)
            if style is not None:
                break
        if style is None:
            raise PresetError(
                f"{model.name} wrote no usable line for {name!r} in {tries} seeds (unfinished lines or ink that "
                "fails the style checks): is it a trained synthesis model?"
            )
        path = style_path(name, folder)
        save_style(path, style)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.handwriting.presets", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the synthesis model file that will ship (.npz)")
    parser.add_argument("-o", "--output", default="resources/styles", help="folder (default %(default)s)")
    parser.add_argument("--count", type=int, default=3, help=f"how many presets, 1 to {len(PRESETS)}")
    parser.add_argument("--text", default=PRESET_TEXT, help="the line each preset writes (default %(default)r)")
    parser.add_argument("--bias", type=float, default=PRESET_BIAS, help="sampling bias (default %(default)s)")
    parser.add_argument("--backend", choices=["auto", "onnx", "torch"], default="auto")
    args = parser.parse_args(argv)
    try:
        paths = generate_presets(args.model, args.output, args.count, args.text, args.bias, args.backend)
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
