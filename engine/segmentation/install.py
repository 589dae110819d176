"""Putting a published segmentation checkpoint into the user's data folder, from a file or from its URL.

Why a module of its own: the app and the CLI both install models, and both must never leave a half-written
or wrong file where `models.load_network` looks. Every file is identified by its SHA-256 (the manifest's),
written to a temporary file in the target folder, checked, then moved into place with os.replace.
Only urllib: no requests dependency, and no torch.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.paths import data_dir
from engine.segmentation.errors import SegmentationDownloadError, SegmentationModelError
from engine.segmentation.manifest import SegmentationModelInfo, SegmentationWeights
from engine.segmentation.models import sha256_file

Progress = Callable[[int, int | None], None]  # (bytes so far, total bytes or None when the server does not say)
CHUNK = 1 << 16
_sleep = time.sleep  # tests replace it so retries take no time
_urlopen = urllib.request.urlopen


def segmentation_dir(folder: str | Path | None = None) -> Path:
    """`folder`, else <data dir>/models/segmentation (where `models.checkpoint_path` looks)."""
    return Path(folder) if folder is not None else data_dir() / "models" / "segmentation"


def identify(path: str | Path) -> SegmentationWeights:
    """The known checkpoint `path` is, by its SHA-256; SegmentationModelError if none is."""
    path = Path(path)
    if not path.is_file():
        raise SegmentationModelError(f"{path} does not exist or is not a file")
    digest = sha256_file(path)
    for weights in SegmentationWeights:
        if weights.meta.sha256 == digest:
            return weights
    known = ", ".join(f"{w.meta.checkpoint} ({w.meta.name})" for w in SegmentationWeights)
    raise SegmentationModelError(
        f"{path} is not a segmentation checkpoint Penwright knows, or it is damaged (sha256 {digest}); "
        f"known checkpoints: {known}"
    )


def _atomic_copy(source: Path, target: Path, sha256: str) -> None:
    """Copy to a temp file beside `target`, check its SHA-256 (a failing disk shows here), then os.replace."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out, CHUNK)
            out.flush()
            os.fsync(out.fileno())
        if sha256_file(tmp) != sha256:
            raise SegmentationModelError(f"copying {source} to {target} gave a different file (disk problem?)")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def install_from_file(path: str | Path, folder: str | Path | None = None) -> Path:
    """Install a checkpoint file (identified by SHA-256) into the data folder; returns where it now is."""
    weights = identify(path)
    target = segmentation_dir(folder) / weights.meta.checkpoint
    if target.is_file() and target.resolve() == Path(path).resolve():
        return target
    _atomic_copy(Path(path), target, weights.meta.sha256)
    return target


@dataclass(frozen=True)
class InstalledModel:
    """One checkpoint found in the data folder; `ok` is False when its SHA-256 is not the manifest's."""

    weights: SegmentationWeights
    path: Path
    size: int
    ok: bool

    @property
    def meta(self) -> SegmentationModelInfo:
        return self.weights.meta


def installed_models(folder: str | Path | None = None, verify: bool = True) -> list[InstalledModel]:
    """The known checkpoints present in the data folder (a few MB each, so hashing them is cheap)."""
    base = segmentation_dir(folder)
    found = []
    for weights in SegmentationWeights:
        path = base / weights.meta.checkpoint
        if path.is_file():
            ok = sha256_file(path) == weights.meta.sha256 if verify else True
            found.append(InstalledModel(weights, path, path.stat().st_size, ok))
    return found


def _is_offline(exc: BaseException) -> bool:
    reason = getattr(exc, "reason", exc)
    return isinstance(reason, socket.gaierror | ConnectionRefusedError) or getattr(reason, "errno", None) in (
        101,  # ENETUNREACH
        113,  # EHOSTUNREACH
    )


def _fetch(url: str, tmp: Path, progress: Progress | None, timeout: float) -> None:
    """One attempt: stream `url` into `tmp`, calling progress; raises on any network trouble or short read."""
    with _urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        done = 0
        if progress:
            progress(0, total)
        while block := response.read(CHUNK):
            out.write(block)
            done += len(block)
            if progress:
                progress(done, total)
        if total is not None and done != total:
            raise http.client.IncompleteRead(b"", total - done)
        out.flush()
        os.fsync(out.fileno())


_RETRYABLE = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, socket.timeout)


def download(
    weights: SegmentationWeights,
    progress: Progress | None = None,
    folder: str | Path | None = None,
    retries: int = 3,
    backoff: float = 1.0,
    timeout: float = 30.0,
) -> Path:
    """Fetch `weights` from its published URL into the data folder, verify its SHA-256, return its path.

    Network errors are retried `retries` times, waiting backoff, 2*backoff, ...; 4xx answers are not.
    There is no resume: each attempt starts over into a temporary file beside the target, and only a
    verified file is moved into place, so an interrupted download never leaves a damaged checkpoint.
    """
    meta = weights.meta
    target = segmentation_dir(folder) / meta.checkpoint
    if target.is_file() and sha256_file(target) == meta.sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(name)
    try:
        for attempt in range(retries + 1):
            try:
                _fetch(meta.url, tmp, progress, timeout)
                break
            except urllib.error.HTTPError as exc:
                if 400 <= exc.code < 500 and exc.code not in (408, 429):
                    raise SegmentationDownloadError(f"{meta.url} answered {exc.code} {exc.reason}") from exc
                failure: BaseException = exc
            except _RETRYABLE as exc:
                failure = exc
            if attempt == retries:
                raise SegmentationDownloadError(_failure_message(meta, failure, retries + 1)) from failure
            _sleep(backoff * 2**attempt)
        digest = sha256_file(tmp)
        if digest != meta.sha256:
            raise SegmentationModelError(
                f"the file downloaded from {meta.url} is not the {meta.name} checkpoint (sha256 {digest}, "
                f"expected {meta.sha256}); nothing was installed"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _failure_message(meta: SegmentationModelInfo, exc: BaseException, attempts: int) -> str:
    reason = getattr(exc, "reason", None) or exc
    where = "you seem to be offline" if _is_offline(exc) else f"the download failed: {reason}"
    return (
        f"could not download {meta.name} from {meta.url} ({attempts} attempts): {where}. "
        f"Download {meta.checkpoint} on a connected machine and run `penwright models install FILE`."
    )
