"""Where Penwright keeps user data: the platform's usual folders, overridable for tests and portable use."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "Penwright"


def _folder(env: str, default: str) -> Path:
    path = Path(os.environ.get(env) or default)
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Parsed data sets and other things that can be rebuilt ($PENWRIGHT_CACHE_DIR overrides)."""
    return _folder("PENWRIGHT_CACHE_DIR", platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    """Styles, documents and installed models ($PENWRIGHT_DATA_DIR overrides)."""
    return _folder("PENWRIGHT_DATA_DIR", platformdirs.user_data_dir(APP_NAME, appauthor=False))
