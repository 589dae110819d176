"""Installing segmentation checkpoints: from a file (identified by SHA-256) and by download.

Downloads are tested only against a local http.server on 127.0.0.1 run in a thread; no other address is
ever contacted. Tests marked needs_data install the real checkpoints from ../shared/models/espnetv2
(or $PENWRIGHT_SHARED/models/espnetv2) into a temporary data folder; nothing from there enters the repo.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import os
import socket
import threading
import urllib.error
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.segmentation import install
from engine.segmentation.errors import SegmentationDownloadError, SegmentationModelError
from engine.segmentation.manifest import SegmentationWeights

REPO = Path(__file__).resolve().parents[2]
S2, S05 = SegmentationWeights.ESPNETV2_S2_0_PASCAL_384, SegmentationWeights.ESPNETV2_S0_5_PASCAL_256


def shared_checkpoint(weights: SegmentationWeights) -> Path | None:
    """The published checkpoint in $PENWRIGHT_SHARED/models/espnetv2 or ../shared/models/espnetv2, if there."""
    env = os.environ.get("PENWRIGHT_SHARED")
    path = (Path(env) if env else REPO.parent / "shared") / "models" / "espnetv2" / weights.meta.checkpoint
    return path if path.is_file() else None


NO_DATA = "ESPNetv2 checkpoints not found: set PENWRIGHT_SHARED or place them at ../shared/models/espnetv2"


@pytest.fixture
def data_folder(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "data"
    monkeypatch.setenv("PENWRIGHT_DATA_DIR", str(folder))
    return folder


def test_unknown_file_is_refused_with_its_digest(tmp_path, data_folder):
    fake = tmp_path / "espnetv2_s_2.0_pascal_384x384.pth"
    fake.write_bytes(b"PK\x03\x04 not really a checkpoint")
    with pytest.raises(SegmentationModelError, match="not a segmentation checkpoint Penwright knows") as info:
        install.install_from_file(fake)
    assert hashlib.sha256(fake.read_bytes()).hexdigest() in str(info.value)
    assert install.installed_models() == []
    with pytest.raises(SegmentationModelError, match="does not exist"):
        install.install_from_file(tmp_path / "absent.pth")


def test_installed_models_flags_a_damaged_file(data_folder):
    folder = install.segmentation_dir()
    assert folder == data_folder / "models" / "segmentation"
    folder.mkdir(parents=True)
    (folder / S05.meta.checkpoint).write_bytes(b"damaged")
    (found,) = install.installed_models()
    assert found.weights is S05 and not found.ok and found.size == 7


@pytest.mark.needs_data
@pytest.mark.parametrize("weights", [S2, S05], ids=["s2.0", "s0.5"])
def test_install_real_checkpoint(weights, data_folder):
    source = shared_checkpoint(weights)
    if source is None:
        pytest.skip(NO_DATA)
    assert install.identify(source) is weights
    target = install.install_from_file(source)
    assert target == data_folder / "models" / "segmentation" / weights.meta.checkpoint
    assert target.read_bytes() == source.read_bytes()
    assert install.install_from_file(target) == target  # installing the installed file is a no-op
    (found,) = install.installed_models()
    assert found.weights is weights and found.ok and found.path == target
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]  # no temp files left


# --- downloads from a local server -------------------------------------------------------------------------

PAYLOAD = bytes(range(256)) * 300  # 76.8 kB: several read chunks


class _Handler(http.server.BaseHTTPRequestHandler):
    plan: list[str] = []  # what each request gets: "ok", "503", "404", "short"
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.requests.append(self.path)
        action = self.plan.pop(0) if self.plan else "ok"
        if action in ("503", "404"):
            self.send_error(int(action))
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD[: len(PAYLOAD) // 3] if action == "short" else PAYLOAD)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    """An http.server on 127.0.0.1 (ephemeral port) in a thread; yields (base url, handler class)."""
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setattr(install, "_sleep", lambda seconds: None)
    handler = type("Handler", (_Handler,), {"plan": [], "requests": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def fake_weights(url: str, sha256: str | None = None) -> SimpleNamespace:
    """A SegmentationWeights look-alike whose checkpoint is PAYLOAD at `url`."""
    meta = dataclasses.replace(
        S05.meta,
        name="tiny-test-model",
        checkpoint="tiny-test.pth",
        url=url,
        sha256=sha256 or hashlib.sha256(PAYLOAD).hexdigest(),
    )
    return SimpleNamespace(meta=meta)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_verifies_and_reports_progress(server, tmp_path):
    base, handler = server
    calls = []
    target = install.download(
        fake_weights(f"{base}/tiny.pth"), progress=lambda d, t: calls.append((d, t)), folder=tmp_path
    )
    assert target == tmp_path / "tiny-test.pth" and target.read_bytes() == PAYLOAD
    assert calls[0] == (0, len(PAYLOAD)) and calls[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert _leftovers(tmp_path) == ["tiny-test.pth"]
    install.download(fake_weights(f"{base}/tiny.pth"), folder=tmp_path)  # already there and verified: no request
    assert handler.requests == ["/tiny.pth"]


@pytest.mark.parametrize("failure", ["503", "short"])
def test_download_retries_after_a_failed_request(server, tmp_path, failure):
    base, handler = server
    handler.plan[:] = [failure, "ok"]
    target = install.download(fake_weights(f"{base}/tiny.pth"), folder=tmp_path, retries=2)
    assert target.read_bytes() == PAYLOAD and len(handler.requests) == 2
    assert _leftovers(tmp_path) == ["tiny-test.pth"]


def test_download_gives_up_after_the_retries(server, tmp_path):
    base, handler = server
    handler.plan[:] = ["503"] * 3
    with pytest.raises(SegmentationDownloadError, match="3 attempts"):
        install.download(fake_weights(f"{base}/tiny.pth"), folder=tmp_path, retries=2)
    assert len(handler.requests) == 3 and _leftovers(tmp_path) == []


def test_download_does_not_retry_not_found(server, tmp_path):
    base, handler = server
    handler.plan[:] = ["404"]
    with pytest.raises(SegmentationDownloadError, match="404"):
        install.download(fake_weights(f"{base}/missing.pth"), folder=tmp_path)
    assert len(handler.requests) == 1 and _leftovers(tmp_path) == []


def test_download_sha256_mismatch_installs_nothing(server, tmp_path):
    base, _ = server
    with pytest.raises(SegmentationModelError, match="is not the tiny-test-model checkpoint"):
        install.download(fake_weights(f"{base}/tiny.pth", sha256="0" * 64), folder=tmp_path)
    assert _leftovers(tmp_path) == []


def test_download_offline_message(monkeypatch, tmp_path):
    def offline(url, timeout):
        raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(install, "_urlopen", offline)
    monkeypatch.setattr(install, "_sleep", lambda seconds: None)
    with pytest.raises(SegmentationDownloadError, match="offline.*penwright models install FILE"):
        install.download(S05, folder=tmp_path)
    assert _leftovers(tmp_path) == []
