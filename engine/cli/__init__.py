"""The `penwright` command: no arguments opens the app; subcommands serve scripting.

Every subcommand talks to the engine's public API; heavy imports (torch, Qt) happen inside the command
that needs them, so `penwright --help` and the ONNX-only app start fast.
"""

from __future__ import annotations

import argparse
import sys

from engine import __version__
from engine.cli import handwriting_commands, segmentation_commands, text_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="penwright",
        description="Handwriting synthesis (Graves 2013) on your desk. With no command, opens the app.",
    )
    parser.add_argument("--version", action="version", version=f"penwright {__version__}")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="write a sample line to penwright-demo.svg instead of opening the window "
        "(what runs where there is no display)",
    )
    parser.add_argument(
        "--selftest",
        nargs="?",
        const="basic",
        choices=("basic", "all"),
        help="check the installed app offscreen (ONNX model, a written line, the window) and exit; "
        "--selftest=all will add segmentation",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    handwriting_commands.register(sub)
    segmentation_commands.register(sub)
    text_commands.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.selftest and args.command is None:
            from desktop.selftest import run_selftest

            return run_selftest(args.selftest)
        if args.command is None:
            if args.demo or not _display_available():
                if not args.demo:
                    print(
                        "no display found: running the command-line demo instead of the window "
                        "(use `penwright --demo` to ask for it)",
                        file=sys.stderr,
                    )
                return handwriting_commands.demo()
            from desktop.app import run_app

            return run_app()
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"penwright: error: {exc}", file=sys.stderr)
        return 2


def _display_available() -> bool:
    import os

    if sys.platform in ("win32", "darwin"):
        return True
    return (
        bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
        or os.environ.get("QT_QPA_PLATFORM") == "offscreen"
    )


if __name__ == "__main__":
    sys.exit(main())
