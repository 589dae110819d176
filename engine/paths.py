"""Where Penwright keeps user data: the platform's usual folders, overridable for tests and portable use."""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "Penwright"


def _folder(env: str, kind: str) -> Path:
    override = os.environ.get(env)
    if override:
        path = Path(override)
    else:
        import platformdirs  # only here: training on a bare GPU machine sets the override instead

        path = Path(getattr(platformdirs, kind)(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Parsed data sets and other things that can be rebuilt ($PENWRIGHT_CACHE_DIR overrides)."""
    return _folder("PENWRIGHT_CACHE_DIR", "user_cache_dir")


def data_dir() -> Path:
    """Styles, documents and installed models ($PENWRIGHT_DATA_DIR overrides)."""
    return _folder("PENWRIGHT_DATA_DIR", "user_data_dir")
