"""The event loop keeps answering while the real shipped synthesis network writes (ONNX Runtime backend).

The tiny-model test in test_desktop_handwriting_tab.py checks the same with a network that takes microseconds
per step; this one runs the released 3x256 network for up to 1.5 s, which is what users feel.
"""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QTimer

from desktop import settings
from engine.handwriting.writer import shipped_model_path

RUN_SECONDS = 1.5  # measured over at most this long (the job is cancelled if it runs longer)
TICK_MS = 10
MAX_GAP_S = 0.1

pytestmark = pytest.mark.skipif(
    not shipped_model_path("synthesis").with_suffix(".onnx").exists(), reason="the shipped ONNX model is not here"
)


def test_event_loop_answers_within_100_ms_while_the_shipped_model_writes(qtbot) -> None:
    pytest.importorskip("onnxruntime")
    from desktop.handwriting_tab import HandwritingTab

    settings.write("model/backend", "onnx")
    settings.write("model/device", "cpu")
    tab = HandwritingTab()
    qtbot.addWidget(tab)
    tab.resize(900, 500)
    tab.show()
    qtbot.waitUntil(lambda: tab.model_ready and not tab.busy, timeout=30000)
    assert "ONNX Runtime" in tab.model_label.text()
    chunks = []
    tab.job_progress.connect(chunks.append)
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(TICK_MS)
    timer.timeout.connect(tick)
    tab.text_edit.setPlainText("The quick brown fox jumps over the lazy dog\nand writes a second line by hand")
    last[0] = time.perf_counter()
    timer.start()
    tab.write()
    started = time.perf_counter()
    qtbot.waitUntil(lambda: not tab.busy or time.perf_counter() - started > RUN_SECONDS, timeout=30000)
    timer.stop()
    measured = time.perf_counter() - started
    tab.shutdown()
    assert chunks, "the job streamed nothing: nothing was measured"
    assert len(gaps) >= 0.5 * measured * 1000 / TICK_MS, f"only {len(gaps)} ticks in {measured:.1f} s"
    assert max(gaps) < MAX_GAP_S, f"the event loop stalled for {max(gaps) * 1000:.0f} ms"
    print(f"\n{len(chunks)} chunks in {measured:.2f} s; longest event-loop gap {max(gaps) * 1000:.1f} ms")
