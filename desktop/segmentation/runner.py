"""Engine segmentation jobs on the app's background worker, with progress handed to the UI thread.

Why a wrapper around `desktop.workers.JobRunner`: an engine `SegmentationJob` stops only when its own
`cancel()` is called (it checks between stages and mean-field iterations), and its `on_progress` runs on
the worker thread. This keeps the job object so a new run cancels the old one for real, and relays
progress through a queued Qt signal tagged with the run, so a cancelled run's late reports are dropped.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop.workers import JobRunner

JobFactory = Callable[[Any, Callable[[str, float], None]], Any]  # (request, on_progress) -> SegmentationJob


def engine_job_factory(request: Any, on_progress: Callable[[str, float], None]) -> Any:
    """The real engine's job (imported on first use: the window opens without loading the engine)."""
    from engine.segmentation.job import SegmentationJob

    return SegmentationJob(request, on_progress)


class SegmentationRunner(QObject):
    """One engine job at a time: `start` cancels any job in flight; callbacks run on the UI thread."""

    progress = Signal(str, float)  # stage, fraction, of the current run only
    busy_changed = Signal(bool)
    _relay = Signal(int, str, float)  # emitted on the worker thread, delivered queued

    def __init__(self, factory: JobFactory = engine_job_factory, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.factory = factory
        self.jobs = JobRunner(self)
        self.jobs.busy_changed.connect(self.busy_changed)
        self._relay.connect(self._on_relay)
        self._ids = itertools.count(1)
        self._current = 0
        self._engine_job: Any = None

    @property
    def busy(self) -> bool:
        return self.jobs.busy

    @property
    def segmenting(self) -> bool:
        """An engine job (not a photo being opened) is in flight."""
        return self.jobs.busy and self._engine_job is not None

    def run(
        self,
        request: Any,
        on_done: Callable[[Any], None],
        on_error: Callable[[str], None],
        rerun_of: Any = None,
        params: Any = None,
        iterations: int | None = None,
    ) -> None:
        """Segment `request`, or with `rerun_of` (a result) re-run only its CRF with `params`/`iterations`."""
        self.cancel()
        run_id = self._current = next(self._ids)
        job = self.factory(request, lambda stage, fraction: self._relay.emit(run_id, stage, fraction))
        self._engine_job = job
        if rerun_of is not None:
            self.jobs.submit(job.rerun_crf, rerun_of, params, iterations, on_return=on_done, on_error=on_error)
        else:
            self.jobs.submit(job.run, on_return=on_done, on_error=on_error)

    def submit(self, func: Callable[..., Any], *args: Any, on_done: Callable, on_error: Callable[[str], None]) -> None:
        """Any other background work (opening a photo) in the same queue: it cancels a job in flight too."""
        self.cancel()
        self._current = next(self._ids)
        self.jobs.submit(func, *args, on_return=on_done, on_error=on_error)

    def cancel(self) -> None:
        if self._engine_job is not None:
            self._engine_job.cancel()
            self._engine_job = None
        self._current = 0
        self.jobs.cancel()

    def shutdown(self) -> None:
        self.cancel()
        self.jobs.shutdown()

    def _on_relay(self, run_id: int, stage: str, fraction: float) -> None:
        if run_id == self._current:
            self.progress.emit(stage, fraction)
