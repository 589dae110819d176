"""`penwright --selftest`: the offscreen check that an installed or frozen app works (what release CI runs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [([], None), (["--selftest"], "basic"), (["--selftest=all"], "all"), (["--selftest", "all"], "all")],
)
def test_the_parser_accepts_selftest_and_selftest_all(argv, expected) -> None:
    assert build_parser().parse_args(argv).selftest == expected


def test_the_parser_rejects_an_unknown_selftest_scope(capsys) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--selftest=everything"])
    assert "invalid choice" in capsys.readouterr().err


def _run(*args: str) -> subprocess.CompletedProcess:
    """The self-test in a fresh interpreter: the test process itself may have imported torch."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", OMP_NUM_THREADS="1")
    env.pop("PENWRIGHT_SYNTHESIS_MODEL", None)
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_selftest_passes_offscreen_without_torch_and_reports_the_window_time() -> None:
    result = _run("--selftest")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "torch not loaded" in out
    assert "[  ok] shipped model (ONNX backend)" in out
    assert "ONNX Runtime" in out
    assert "[  ok] write and render a line" in out and ".png" in out
    assert "[  ok] main window opens and closes" in out
    assert "time to a usable window" in out
    assert "self-test passed" in out
    assert "segmentation" not in out
    # Without a shipped synthesis model the prediction model stands in, and the report says so.
    from engine.handwriting.writer import shipped_model_path

    if not shipped_model_path("synthesis").exists():
        assert "synthesis model MISSING" in out


def test_selftest_fails_with_the_reason_when_no_model_can_be_loaded(monkeypatch, capsys, tmp_path) -> None:
    import desktop.selftest as selftest
    import engine.handwriting.writer as writer

    monkeypatch.setattr(writer, "shipped_model_path", lambda kind="synthesis": tmp_path / f"missing-{kind}.npz")
    monkeypatch.setattr(selftest, "_check_no_torch", lambda: "skipped here (the test process may hold torch)")
    monkeypatch.setenv("PENWRIGHT_SYNTHESIS_MODEL", str(tmp_path / "missing-synthesis.npz"))

    code = selftest.run_selftest()

    out = capsys.readouterr().out
    assert code == 1
    assert "self-test FAILED" in out
    assert "[FAIL] shipped model (ONNX backend)" in out
    assert "missing-prediction.npz" in out
    assert "[FAIL] write and render a line: RuntimeError: no model loaded" in out


def test_selftest_fails_when_torch_is_imported(monkeypatch, capsys) -> None:
    import desktop.selftest as selftest

    monkeypatch.setitem(sys.modules, "torch", sys.modules.get("torch") or type(sys)("torch"))
    with pytest.raises(AssertionError, match="torch was imported"):
        selftest._check_no_torch()
