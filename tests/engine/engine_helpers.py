"""Helpers shared by the engine tests.

``tests/conftest.py`` holds plain helper functions (``synthetic_sequences``, ``make_tiny_trainer``) beside its
fixtures. ``from conftest import ...`` would find whichever conftest module was imported last (this folder has
its own), so the file is loaded here by path under a name of its own.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_NAME = "penwright_tests_shared_conftest"


def _shared_conftest():
    if _NAME not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "conftest.py"
        spec = importlib.util.spec_from_file_location(_NAME, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[_NAME] = module
        spec.loader.exec_module(module)
    return sys.modules[_NAME]


synthetic_sequences = _shared_conftest().synthetic_sequences
make_tiny_trainer = _shared_conftest().make_tiny_trainer
