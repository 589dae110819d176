"""Desktop tests run headless (offscreen Qt) against the tiny synthesis model from tests/conftest.py."""

from __future__ import annotations

import os

# Before Qt is imported anywhere: no display is needed, and none is used even where one exists.
os.environ["QT_QPA_PLATFORM"] = "offscreen"
# Step-by-step inference of a tiny network is fastest on one thread, and test machines are often busy:
# with torch's default thread count a loaded two-core machine ran these jobs about 30 times slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

from desktop.app import binding_drops_none_references  # noqa: E402


def pytest_collection_modifyitems(config, items) -> None:
    """Skip (loudly) rather than let a broken Qt binding abort the whole test run mid-way."""
    if not binding_drops_none_references():
        return
    import PySide6

    skip = pytest.mark.skip(reason=f"PySide6 {PySide6.__version__} drops references to None on this Python")
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> None:
    """OMP_NUM_THREADS only works if torch was not imported yet; this holds either way."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


@pytest.fixture
def tab(qtbot, tiny_synthesis_model):
    """A Handwriting tab with the tiny model loaded and ready to write."""
    from desktop.handwriting_tab import HandwritingTab

    widget = HandwritingTab(tiny_synthesis_model)
    qtbot.addWidget(widget)
    widget.resize(900, 500)
    widget.show()
    # The load job hands over the writer just before its worker reports finished: wait for both.
    qtbot.waitUntil(lambda: widget.model_ready and not widget.busy, timeout=20000)
    yield widget
    widget.shutdown()


@pytest.fixture(autouse=True)
def _own_data_dir(tmp_path, monkeypatch) -> None:
    """Each test its own styles folder, canvas autosave and cache (style corrections are kept there), so no test
    sees another's ink or another's measurements."""
    monkeypatch.setenv("PENWRIGHT_DATA_DIR", str(tmp_path / "penwright-data"))
    monkeypatch.setenv("PENWRIGHT_CACHE_DIR", str(tmp_path / "penwright-cache"))


@pytest.fixture(autouse=True)
def settings_dir(tmp_path):
    """Each test its own settings ini file, never the user's."""
    from PySide6.QtCore import QSettings

    folder = tmp_path / "settings"
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    return folder
