"""Handwriting subcommands: train, eval, write, models."""

from __future__ import annotations

import argparse
import json
import sys

from engine.handwriting.dataset import DATA_ENV


def register(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train a model (needs the torch extra)")
    train_sub = train.add_subparsers(dest="what", metavar="WHAT", required=True)
    hw = train_sub.add_parser(
        "handwriting",
        help="train the handwriting synthesis or prediction network on IAM-OnDB",
        description="Train a Graves (2013) handwriting network. Checkpoints go to --run-dir every few "
        "minutes; --resume continues exactly from last.pt (or warmly from last-compact.pt).",
    )
    hw.add_argument("--model", choices=["synthesis", "prediction"], default="synthesis")
    hw.add_argument("--data", help=f"IAM-OnDB folder (archives or unpacked trees); default ${DATA_ENV}")
    hw.add_argument("--compact-data", help="train from a compact data file (see `--save-compact-data`)")
    hw.add_argument(
        "--save-compact-data",
        metavar="FILE",
        help="write the preprocessed data set to FILE (for GPU machines) and exit",
    )
    hw.add_argument(
        "--convention",
        choices=["paper", "skip2"],
        default="skip2",
        help="paper: one step per recorded point; skip2: every second point within strokes",
    )
    hw.add_argument("--hidden", type=int, default=400, help="LSTM cells per layer (paper: 400)")
    hw.add_argument("--layers", type=int, default=3)
    hw.add_argument("--mixtures", type=int, default=20)
    hw.add_argument("--window", type=int, default=10, help="Gaussians in the attention window")
    hw.add_argument("--run-dir", default=None, help="run folder (default runs/<model>-<convention>)")
    hw.add_argument("--resume", help="checkpoint to resume from (last.pt or last-compact.pt)")
    hw.add_argument(
        "--init-from",
        metavar="MODEL",
        help="start a new run from a model file's weights (same sizes; e.g. a skip2 model for a paper run)",
    )
    hw.add_argument(
        "--pair-lines",
        action="store_true",
        help="train on each form's lines joined in pairs, the second continuing the first (teaches priming)",
    )
    hw.add_argument("--single-lines-too", action="store_true", help="with --pair-lines: train on the single lines too")
    hw.add_argument(
        "--oversample-rare",
        type=int,
        metavar="K",
        help="repeat lines with rare characters (on under 5%% of lines: z, q, j, digits, most capitals) up to K "
        "times per epoch, by how rare (default 1: off; on resume, the checkpoint's)",
    )
    hw.add_argument(
        "--pair-context-weight",
        type=float,
        metavar="W",
        help="with --pair-lines: the loss weight of each pair's first line (default 1; 0: a pair teaches only how "
        "the writer continues, as priming asks; on resume, the checkpoint's)",
    )
    hw.add_argument(
        "--style-augment",
        type=float,
        metavar="S",
        help="draw each training sequence a little wider or narrower, taller or shorter, more or less slanted, the "
        "same way throughout (S: the spread, 1 = about 15%% width, 10%% height, 7 degrees; default 0: off; on "
        "resume, the checkpoint's): style varies more between sequences, so priming must copy it",
    )
    hw.add_argument(
        "--weight-noise",
        type=float,
        metavar="STD",
        help="add Gaussian noise of this standard deviation to every weight matrix at each step (a regulariser, "
        "the fixed kind of Graves 2013's weight noise); the shipped network's weights are about 0.07 RMS (default 0: "
        "off; on resume, the checkpoint's)",
    )
    hw.add_argument("--minutes", type=float, help="stop after this much wall time")
    hw.add_argument("--steps", type=int, help="stop after this many more steps")
    hw.add_argument("--batch-size", type=int, help="lines per batch (default 32; on resume, the checkpoint's)")
    hw.add_argument("--lr", type=float, help="Adam learning rate (default 1e-3; on resume, the checkpoint's)")
    hw.add_argument("--seed", type=int, default=0)
    hw.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    hw.add_argument("--device", default="auto", help="auto, cpu or cuda")
    hw.add_argument("--validate-minutes", type=float, default=5.0)
    hw.add_argument("--checkpoint-minutes", type=float, default=5.0)
    hw.add_argument("--validate-lines", type=int, default=256)
    hw.add_argument("--no-progress", action="store_true")
    hw.set_defaults(handler=_train)

    evaluate = sub.add_parser("eval", help="evaluate a model")
    eval_sub = evaluate.add_subparsers(dest="what", metavar="WHAT", required=True)
    ev = eval_sub.add_parser(
        "handwriting",
        help="NLL of a handwriting model on IAM-OnDB lines",
        description="Negative log-likelihood in nats under the model's own point convention. The last line "
        "reads nll_per_line=... nll_per_point=... lines=... points=... skipped=... convention=...",
    )
    ev.add_argument("--data", help=f"IAM-OnDB folder; default ${DATA_ENV}")
    ev.add_argument("--split", help="file of form ids (default: the folder's testset_v.txt)")
    ev.add_argument("--model", help="model file (default: the shipped synthesis network)")
    ev.add_argument("--limit", type=int, help="only the first N line ids in sorted order")
    ev.add_argument("--device", default="cpu")
    ev.add_argument(
        "--pair-lines",
        action="store_true",
        help="priming on real writers: join each form's lines in pairs and score only the second line of each "
        "(given the first and both texts); per line means per second line",
    )
    ev.add_argument(
        "--lines-with",
        metavar="CHARS",
        help="only lines holding at least one of these characters (e.g. the rare 'zqjxZQJX0123456789')",
    )
    ev.set_defaults(handler=_eval)

    write = sub.add_parser(
        "write",
        help="write text by hand to SVG, PNG, InkML or G-code pages",
        description="Write TEXT by hand on pages of real size: each argument (or \\n) starts a new line, a blank "
        "line starts a new paragraph, and long lines wrap to the page. The output format follows the file's "
        "suffix (.svg .png .inkml .gcode); text that needs several pages goes to NAME-1.svg, NAME-2.svg, ...",
    )
    write.add_argument("text", nargs="*", help="text to write; each argument is one line ('-' reads stdin)")
    write.add_argument("--file", metavar="FILE", help="read the text from FILE ('-' for stdin)")
    write.add_argument(
        "-o",
        "--output",
        default="penwright.svg",
        help="output file: .svg, .png, .inkml or .gcode (default %(default)s)",
    )
    write.add_argument("--bias", type=float, default=0.75, help="0 = as trained (varied), 2 = very neat")
    write.add_argument("--seed", type=int, help="random seed: the same seed writes the same strokes")
    write.add_argument("--model", help="synthesis model file (default: the shipped one)")
    write.add_argument(
        "--style",
        metavar="FILE",
        help="write in the style of FILE: a Penwright style (.penwright-style.json) or W3C InkML ink (.inkml), "
        "or preset:NAME for a style that ships with Penwright (e.g. 'preset:Penwright neat')",
    )
    write.add_argument(
        "--style-text",
        metavar="TEXT",
        help="what the InkML style file says (needed when the file has no transcription annotation)",
    )
    write.add_argument(
        "--match-style",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with --style: give the writing the style's letter height, width and slant (measured once per style "
        "and bias; the network alone follows them only part of the way); --no-match-style writes as primed",
    )
    write.add_argument(
        "--backend",
        choices=["auto", "onnx", "torch"],
        default="auto",
        help="inference backend: auto (ONNX Runtime when the model has an exported .onnx, else PyTorch)",
    )
    write.add_argument(
        "--width",
        default="0.4mm",
        help="pen width: a length (0.4mm, 0.02in) or a number of CSS pixels (1/96 in; default %(default)s)",
    )
    write.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="where the network runs: auto (a GPU when there is one, else the CPU), cpu or cuda",
    )
    write.add_argument("--colour", "--color", dest="colour", default="#1a1a40", help="ink colour (default %(default)s)")
    page = write.add_argument_group("page")
    page.add_argument("--page", default="A4", help="A4, A5, Letter (add -landscape) or WxH with a unit: 200x100mm")
    page.add_argument("--margin", default="20mm", help="one length, or top,right,bottom,left (default %(default)s)")
    page.add_argument(
        "--letter-height", default="3.5mm", help="x-height of the writing: 3.5mm, 0.15in (default %(default)s)"
    )
    page.add_argument(
        "--line-spacing", help="baseline to baseline (default: about three letter heights, 10mm for 3.5mm letters)"
    )
    page.add_argument("--smooth", action="store_true", help="smooth the strokes lightly (a moving average)")
    page.add_argument("--smooth-passes", type=int, default=2, metavar="N", help="passes of --smooth (default 2)")
    page.add_argument("--no-straighten", action="store_true", help="keep each line's slope as the model wrote it")
    page.add_argument("--dpi", type=float, default=150.0, help="PNG resolution (default %(default)s)")
    gcode = write.add_argument_group("G-code (.gcode)")
    gcode.add_argument(
        "--pen-up", default="M3 S90", help="G-code lifting the pen (default %(default)r; or 'G0 Z5'; \\n between lines)"
    )
    gcode.add_argument("--pen-down", default="M3 S0", help="G-code lowering the pen (default %(default)r; or 'G1 Z0')")
    gcode.add_argument("--feed", type=float, default=3000.0, help="drawing feed in mm/min (default %(default)g)")
    gcode.add_argument("--travel-feed", type=float, help="pen-up feed in mm/min (default: rapid G0 moves)")
    gcode.add_argument("--origin", choices=["bottom-left", "top-left"], default="bottom-left")
    write.set_defaults(handler=_write)

    models = sub.add_parser("models", help="list the models Penwright has")
    models.set_defaults(handler=_models)


def _train(args: argparse.Namespace) -> int:
    from engine.handwriting.train_run import TrainRequest, run_training

    if args.save_compact_data:
        from engine.handwriting.dataset import load_handwriting_data, save_compact_data

        data = load_handwriting_data(
            args.data, args.convention, pair_train_lines=args.pair_lines, keep_single_lines=args.single_lines_too
        )
        save_compact_data(data, args.save_compact_data)
        print(
            f"wrote {args.save_compact_data}: {len(data.train)} training and {len(data.validation)} "
            f"validation lines ({data.report.summary()})"
        )
        return 0
    req = TrainRequest(
        model=args.model,
        data=args.data,
        compact_data=args.compact_data,
        convention=args.convention,
        hidden=args.hidden,
        layers=args.layers,
        mixtures=args.mixtures,
        window=args.window,
        run_dir=args.run_dir or f"runs/{args.model}-{args.convention}",
        resume=args.resume,
        init_from=args.init_from,
        pair_lines=args.pair_lines,
        single_lines_too=args.single_lines_too,
        oversample_rare=args.oversample_rare,
        pair_context_weight=args.pair_context_weight,
        style_augment=args.style_augment,
        weight_noise=args.weight_noise,
        minutes=args.minutes,
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        threads=args.threads,
        device=args.device,
        validate_minutes=args.validate_minutes,
        checkpoint_minutes=args.checkpoint_minutes,
        validate_lines=args.validate_lines,
        progress=not args.no_progress,
    )
    result = run_training(req)
    print(json.dumps(result), file=sys.stdout)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from engine.handwriting.evaluation import evaluate
    from engine.handwriting.writer import shipped_model_path

    result = evaluate(
        args.model or shipped_model_path("synthesis"),
        args.data,
        args.split,
        args.limit,
        device=args.device,
        pair_lines=args.pair_lines,
        lines_with=args.lines_with,
    )
    print(result.summary_line())
    return 0


OUTPUT_SUFFIXES = (".svg", ".png", ".inkml", ".gcode")


def _read_text(args: argparse.Namespace) -> str:
    """The text to write: --file FILE (or '-'), or the arguments ('-' alone reads stdin), one line each."""
    if args.file is not None and args.text:
        raise ValueError("give the text as arguments or with --file, not both")
    if args.file == "-" or args.text == ["-"]:
        return sys.stdin.read()
    if args.file is not None:
        from pathlib import Path

        return Path(args.file).read_text(encoding="utf-8")
    if not args.text:
        raise ValueError("there is no text to write: give it as arguments, with --file FILE, or '-' for stdin")
    return "\n".join(arg.replace("\\n", "\n") for arg in args.text)


INKML_TEXT_ANNOTATIONS = ("truth", "transcription", "text")


def _inkml_text(path) -> str | None:
    """The transcription an InkML file carries in an annotation (type truth, transcription or text), if any."""
    import xml.etree.ElementTree as ET

    from engine.formats.inkml import INKML_NS

    root = ET.parse(path).getroot()
    for annotation in root.iter(f"{{{INKML_NS}}}annotation"):
        if annotation.get("type") in INKML_TEXT_ANNOTATIONS and (annotation.text or "").strip():
            return " ".join(annotation.text.split())
    return None


def _read_style(path_text: str, style_text: str | None):
    """--style FILE: a Penwright style file, or W3C InkML ink whose transcription is its annotation or
    ``style_text``. Returns a Style; ValueError (one line) when the file cannot be a style."""
    from pathlib import Path

    from engine.handwriting.styles import (
        PRESET_PREFIX,
        STYLE_SUFFIX,
        Style,
        StyleError,
        list_presets,
        load_style,
        load_style_or_preset,
    )

    if path_text.startswith(PRESET_PREFIX):
        if style_text is not None:
            raise ValueError("--style-text is for InkML styles: a preset holds its own text")
        try:
            return load_style_or_preset(path_text)
        except StyleError as exc:
            names = ", ".join(f"'{PRESET_PREFIX}{name}'" for name in list_presets())
            raise ValueError(f"{exc}; the presets are {names or 'missing from this installation'}") from exc
    path = Path(path_text)
    if not path.is_file():
        raise ValueError(f"the style file {path} does not exist")
    try:
        head = path.read_bytes()[:512].lstrip()
    except OSError as exc:
        raise ValueError(f"the style file {path} cannot be read: {exc.strerror or exc}") from exc
    if path.name.lower().endswith((STYLE_SUFFIX, ".json")) or head.startswith(b"{"):
        if style_text is not None:
            raise ValueError("--style-text is for InkML styles: a Penwright style file holds its own text")
        try:
            return load_style(path)
        except StyleError as exc:
            raise ValueError(str(exc)) from exc
    if path.suffix.lower() != ".inkml" and not head.startswith(b"<"):
        raise ValueError(f"{path} is neither a Penwright style file (.penwright-style.json) nor InkML (.inkml)")
    from engine.formats.inkml import InkmlError, read_inkml

    try:
        strokes = read_inkml(path)
        text = style_text if style_text is not None else _inkml_text(path)
    except InkmlError as exc:
        raise ValueError(f"the style {path}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - XML errors of every kind: one line
        raise ValueError(f"the style {path} is not readable InkML: {exc}") from exc
    if not strokes:
        raise ValueError(f"the style {path} holds no pen strokes")
    if text is None or not text.strip():
        raise ValueError(
            f'the InkML file {path} does not say what is written (no transcription annotation): add --style-text "..."'
        )
    try:
        return Style(name=path.stem, text=text, strokes=strokes, source={"file": path.name, "format": "inkml"})
    except StyleError as exc:
        raise ValueError(f"the style {path}: {exc}") from exc


def _page_paths(path, count: int) -> list:
    if count == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{i}{path.suffix}") for i in range(1, count + 1)]


def _write(args: argparse.Namespace) -> int:
    import warnings
    from pathlib import Path

    from engine.handwriting.page import PageGeometry, parse_length, write_pages
    from engine.handwriting.writer import HandwritingWriter

    output = Path(args.output)
    suffix = output.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise ValueError(f"unknown output format {suffix!r}: use {', '.join(OUTPUT_SUFFIXES)}")
    text = _read_text(args)
    geometry = PageGeometry.from_options(args.page, args.margin, args.line_spacing, args.letter_height)
    pen_width = parse_length(args.width, default_unit="px")
    if not pen_width > 0:
        raise ValueError(f"the pen width must be positive, not {args.width!r}")
    if suffix == ".png":
        from PIL import ImageColor

        ImageColor.getrgb(args.colour)  # a bad colour fails before the model runs
    style = _read_style(args.style, args.style_text) if args.style else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fallbacks' warnings are printed as notes below
        writer = HandwritingWriter.load(args.model, backend=args.backend, device=args.device, keep_corrections=True)
    prime = None
    if style is not None:
        from engine.handwriting.styles import StyleError

        try:
            prime = style.prime(writer.convention, writer.alphabet)
        except StyleError as exc:
            raise ValueError(f"the style {args.style}: {exc}") from exc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pages, lines = write_pages(
            writer,
            text,
            geometry,
            args.bias,
            args.seed,
            straighten=not args.no_straighten,
            smooth=args.smooth_passes if args.smooth else 0,
            prime=prime,
            match_style=args.match_style,
        )
    for notice in writer.notices:
        print(f"note: {notice}", file=sys.stderr)
    print(f"using {writer.backend_description}", file=sys.stderr)
    for note in sorted({n for line in lines for n in line.notices}):
        print(f"note: {note}", file=sys.stderr)
    capped = [line.text for line in lines if not line.stopped_by_window]
    if capped:
        print(f"note: {len(capped)} line(s) reached the length cap before the model finished them", file=sys.stderr)
    for page in pages:
        for note in page.notes:
            print(f"note: page {page.number}: {note}", file=sys.stderr)
    paths = _page_paths(output, len(pages))
    if len(pages) > 1:
        print(f"note: the text took {len(pages)} pages: {paths[0].name} to {paths[-1].name}", file=sys.stderr)
    for page, path in zip(pages, paths, strict=True):
        _save_page(path, page, args, pen_width, " / ".join(t for t in page.texts if t))
        print(f"wrote {path}")
    return 0


def _save_page(path, page, args: argparse.Namespace, pen_width: float, title: str) -> None:
    suffix = path.suffix.lower()
    if suffix == ".svg":
        from engine.formats.svg import write_page_svg

        write_page_svg(path, page, stroke_width=pen_width, colour=args.colour, title=title)
    elif suffix == ".png":
        from PIL import ImageColor

        from engine.formats.png import write_page_png

        write_page_png(path, page, dpi=args.dpi, stroke_width=pen_width, colour=ImageColor.getrgb(args.colour))
    elif suffix == ".inkml":
        from engine.formats.inkml import write_inkml

        write_inkml(path, page, title=title)
    elif suffix == ".gcode":
        from engine.formats.gcode import PenCommands, write_gcode

        pen = PenCommands(args.pen_up.replace("\\n", "\n"), args.pen_down.replace("\\n", "\n"))
        write_gcode(path, page, pen=pen, feed=args.feed, travel_feed=args.travel_feed, origin=args.origin, title=title)
    else:
        raise ValueError(f"unknown output format {suffix!r}: use {', '.join(OUTPUT_SUFFIXES)}")


def _save_lines(path, strokes, width: float, colour: str, title: str) -> None:
    suffix = path.suffix.lower()
    if suffix == ".svg":
        from engine.formats.svg import write_svg

        write_svg(path, strokes, stroke_width=width, colour=colour, title=title)
    elif suffix == ".png":
        from PIL import ImageColor

        from engine.formats.png import write_png

        write_png(path, strokes, stroke_width=width, colour=ImageColor.getrgb(colour))
    else:
        raise ValueError(f"unknown output format {suffix!r}: use .svg or .png")


def _models(args: argparse.Namespace) -> int:
    from engine.handwriting.checkpoint import ModelFileError, load_model_file
    from engine.handwriting.writer import MODEL_FILES, shipped_model_path

    for kind in MODEL_FILES:
        path = shipped_model_path(kind)
        try:
            meta = load_model_file(path).meta
        except ModelFileError as exc:
            print(f"{kind:11s} missing or unreadable: {exc}")
            continue
        cfg, training = meta["config"], meta.get("training", {})
        print(
            f"{kind:11s} {cfg['layers']}x{cfg['hidden']} LSTM, {meta['convention']} points, "
            f"{training.get('step', '?')} steps, "
            f"validation NLL {training.get('best_validation_nll_per_line', float('nan')):.1f} "
            f"nats/line  [{path}]"
        )
    return 0


DEMO_TEXT = "Penwright writes by hand"


def demo() -> int:
    """What `penwright` does without a display: write a sample line to penwright-demo.svg."""
    from pathlib import Path

    from engine.handwriting.writer import HandwritingWriter

    writer = HandwritingWriter.load()
    lines = writer.write([DEMO_TEXT], bias=1.0, seed=1)
    _save_lines(Path("penwright-demo.svg"), [line.strokes for line in lines], 3.0, "#1a1a40", DEMO_TEXT)
    print(
        f"wrote penwright-demo.svg: {DEMO_TEXT!r} in the shipped model's handwriting "
        f"({sum(len(s) for s in lines[0].strokes)} points). Run `penwright --help` for more."
    )
    return 0
