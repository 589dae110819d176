"""Fixtures for the engine tests: one torch thread (the test machine is shared), a small IAM-OnDB look-alike."""

from __future__ import annotations

import pytest
from iam_builder import SmallIam, build_small_iam


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> None:
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


@pytest.fixture
def cache_folder(tmp_path, monkeypatch):
    """A fresh, empty cache folder for this test only."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("PENWRIGHT_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def small_iam(tmp_path, cache_folder) -> SmallIam:
    """The small database as the owners' archives (lineStrokes-x.tar.gz, ascii-x.tar.gz) with split files."""
    return build_small_iam(tmp_path / "iam")
