"""Text subcommands (Graves 2013, section 3): `train text`, `eval text`, `dream`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_TEXT_MODEL = "the shipped text-shakespeare.npz"
# dynamic evaluation defaults, as engine.text.evaluation's (kept here so that the parser needs no torch):
# chosen on the validation slices (the 5% before the held-out 10%)
DEFAULT_DYNAMIC_RULE = "rms"
DEFAULT_DYNAMIC_SEGMENT = 50
DEFAULT_DYNAMIC_DECAY = 1e-3


def _subparsers_of(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise RuntimeError(f"{parser.prog} has no subcommands")


def register(sub: argparse._SubParsersAction) -> None:
    """Adds `text` under the existing `train` and `eval` commands (registered by handwriting_commands) and `dream`."""
    train_sub = _subparsers_of(sub.choices["train"])
    tr = train_sub.add_parser(
        "text",
        help="train a character-level text prediction network on a text file",
        description="Train a Graves (2013) text network (stacked LSTM with skip connections) by truncated "
        "backpropagation through time. The last 10%% of the corpus is held out for `eval text`, the 5%% before "
        "it validates. Checkpoints go to --run-dir every few minutes; best.npz is the best model so far.",
    )
    tr.add_argument("--corpus", required=True, help="a UTF-8 text file")
    tr.add_argument("--run-dir", default="runs/text")
    tr.add_argument("--layers", type=int, default=2)
    tr.add_argument("--hidden", type=int, default=256, help="LSTM cells per layer")
    tr.add_argument("--dropout", type=float, default=0.0, help="dropout on each layer's output (e.g. 0.2)")
    tr.add_argument(
        "--weight-drop", type=float, default=0.0, help="DropConnect on the recurrent weights in training (e.g. 0.3)"
    )
    tr.add_argument("--seq-len", type=int, help="characters per truncated-BPTT segment (default 100)")
    tr.add_argument("--batch-size", type=int, help="parallel streams through the text (default 32)")
    tr.add_argument("--lr", type=float, help="Adam learning rate (default 2e-3; on resume, the checkpoint's)")
    tr.add_argument("--minutes", type=float, help="stop after this much wall time")
    tr.add_argument("--steps", type=int, help="stop after this many more steps")
    tr.add_argument("--resume", help="checkpoint to resume from (last.pt exactly, last-compact.pt warmly)")
    tr.add_argument(
        "--init-from", metavar="MODEL", help="start a new run from a text model file's weights and vocabulary"
    )
    tr.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    tr.add_argument(
        "--device", default="cpu", help="cpu, cuda or auto (CUDA when torch sees a GPU; default %(default)s)"
    )
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--validate-chars", type=int, default=20000, help="validation characters (0: none)")
    tr.add_argument(
        "--train-on-validation",
        action="store_true",
        help="train on the first 90%% (the validation slice too: nanoGPT's split, for comparing with its score); "
        "nothing validates, so best.npz is the latest model: fix the steps or minutes in advance",
    )
    tr.add_argument("--validate-minutes", type=float, default=5.0)
    tr.add_argument("--checkpoint-minutes", type=float, default=5.0)
    tr.add_argument("--no-progress", action="store_true")
    tr.set_defaults(handler=_train_text)

    eval_sub = _subparsers_of(sub.choices["eval"])
    ev = eval_sub.add_parser(
        "text",
        help="bits per character of a text model on a corpus's held-out last 10%%",
        description="Continuous evaluation (state carried through the text) on the last 10%% of the corpus. "
        "With --dynamic, dynamic evaluation (Graves 2013, section 3.2): each segment is scored, then a copy of "
        "the network takes one gradient step on it, so later text is predicted by weights adapted to the text "
        "already read (the model file is not changed). The last line reads bpc=... nats_per_char=... chars=...",
    )
    ev.add_argument("--corpus", required=True)
    ev.add_argument("--model", default=DEFAULT_TEXT_MODEL, help="text model file (default %(default)s)")
    ev.add_argument("--dynamic", action="store_true", help="dynamic evaluation: adapt to the text as it is read")
    ev.add_argument(
        "--dynamic-rule",
        choices=["sgd", "rms"],
        default=DEFAULT_DYNAMIC_RULE,
        help="update rule: sgd (clipped SGD) or rms (RMS-normalised, Krause et al. 2017) (default %(default)s)",
    )
    ev.add_argument("--dynamic-lr", type=float, help="dynamic evaluation learning rate (default: the rule's)")
    ev.add_argument(
        "--dynamic-decay",
        type=float,
        default=DEFAULT_DYNAMIC_DECAY,
        help="rms rule: decay towards the original weights per step (default %(default)s)",
    )
    ev.add_argument(
        "--segment", type=int, default=DEFAULT_DYNAMIC_SEGMENT, help="characters per dynamic step (default %(default)s)"
    )
    ev.set_defaults(handler=_eval_text)

    dream = sub.add_parser(
        "dream",
        help="sample text from a text model",
        description="Print N characters sampled from a text model, following PRIME when given.",
    )
    dream.add_argument("prime", nargs="?", default="", help="text to start from (not repeated in the output)")
    dream.add_argument("--chars", type=int, default=500)
    dream.add_argument("--temperature", type=float, default=1.0, help="below 1: safer, above 1: wilder")
    dream.add_argument("--seed", type=int, help="the same seed gives the same text")
    dream.add_argument("--model", default=DEFAULT_TEXT_MODEL, help="text model file (default %(default)s)")
    dream.add_argument(
        "--backend",
        choices=["auto", "onnx", "numpy", "torch"],
        default="auto",
        help="auto: ONNX Runtime when the model has an exported .onnx beside it, else numpy (no torch needed)",
    )
    dream.set_defaults(handler=_dream)


def _train_text(args: argparse.Namespace) -> int:
    from engine.text.train_run import TextTrainRequest, run_text_training

    req = TextTrainRequest(
        corpus=args.corpus,
        run_dir=args.run_dir,
        layers=args.layers,
        hidden=args.hidden,
        dropout=args.dropout,
        weight_drop=args.weight_drop,
        seq_len=args.seq_len,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        resume=args.resume,
        init_from=args.init_from,
        minutes=args.minutes,
        steps=args.steps,
        seed=args.seed,
        threads=args.threads,
        device=args.device,
        validate_chars=args.validate_chars,
        train_on_validation=args.train_on_validation,
        validate_minutes=args.validate_minutes,
        checkpoint_minutes=args.checkpoint_minutes,
        progress=not args.no_progress,
    )
    print(json.dumps(run_text_training(req)), file=sys.stdout)
    return 0


def _eval_text(args: argparse.Namespace) -> int:
    import torch

    from engine.text.evaluation import evaluate_text

    torch.set_num_threads(1)
    model = args.model
    if model == DEFAULT_TEXT_MODEL:
        from engine.text.dream import text_model_path

        model = text_model_path("shakespeare")
    if not args.dynamic:
        print(evaluate_text(model, args.corpus).summary_line())
        return 0
    from engine.text.evaluation import DEFAULT_DYNAMIC_LR

    if args.segment <= 0:
        raise ValueError("--segment must be 1 or more")
    lr = DEFAULT_DYNAMIC_LR[args.dynamic_rule] if args.dynamic_lr is None else args.dynamic_lr
    decay = args.dynamic_decay if args.dynamic_rule == "rms" else 0.0
    print(
        f"dynamic evaluation: rule={args.dynamic_rule} lr={lr:g} segment={args.segment} decay={decay:g} "
        "(each segment scored, then one gradient step on it)",
        flush=True,
    )
    score = evaluate_text(
        model, args.corpus, dynamic=True, segment=args.segment, lr=lr, rule=args.dynamic_rule, decay=decay
    )
    print(score.summary_line())
    return 0


def _dream(args: argparse.Namespace) -> int:
    from engine.backends.onnx_backend import onnx_path_for
    from engine.text.dream import NumpyTextStepper, load_text_stepper, text_model_path
    from engine.text.model_file import load_text_model
    from engine.text.sampling import sample_text

    if args.chars < 0:
        raise ValueError("--chars must be 0 or more")
    path = text_model_path("shakespeare") if args.model == DEFAULT_TEXT_MODEL else Path(args.model)
    model = load_text_model(path)
    if args.backend == "auto":
        model, stepper = load_text_stepper(path, model)
    elif args.backend == "numpy":
        stepper = NumpyTextStepper(model)
    elif args.backend == "onnx":
        from engine.text.onnx_step import TextOnnxStepper

        onnx_path = onnx_path_for(path)
        stepper = TextOnnxStepper(onnx_path)
        if stepper.manifest["vocabulary"] != model.meta["vocabulary"]:
            raise ValueError(f"{onnx_path} was exported from another model; export it again")
    else:
        import torch

        from engine.text.model import TorchTextStepper, build_text_network

        torch.set_num_threads(1)
        stepper = TorchTextStepper(build_text_network(model.weights, model.config))
    text = sample_text(stepper, model.vocab, args.chars, args.prime, args.temperature, args.seed)
    sys.stdout.write(args.prime + text + "\n")
    return 0
