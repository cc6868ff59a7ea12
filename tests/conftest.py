"""Every test keeps its run store in its own temporary folder, never in the checkout."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _store_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("counterpoint-home")
    monkeypatch.setenv("COUNTERPOINT_HOME", str(home))
    return home
