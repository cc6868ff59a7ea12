"""Every test keeps its run store in its own temporary folder, never in the checkout."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _store_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("counterpoint-home")
    monkeypatch.setenv("COUNTERPOINT_HOME", str(home))
    return home


@pytest.fixture
def demo_repo(tmp_path: Path) -> Path:
    """A small repository for the demo workflow: pkg.a imports pkg.b, pkg.b imports pkg.c,
    pkg.c imports pkg.a (one cycle), a TODO, a documented function, one test."""
    repo = tmp_path / "repo"
    pkg = repo / "src" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""The package."""\n')
    (pkg / "a.py").write_text(
        '"""A."""\nfrom pkg import b\n\n\ndef run():\n    return b.VALUE  # TODO: cache\n'
    )
    (pkg / "b.py").write_text('"""B."""\nfrom . import c\n\nVALUE = c.f()\n')
    (pkg / "c.py").write_text(
        'import pkg.a\n\n\ndef f():\n    """Documented."""\n    return 1\n\n\nclass K:\n    pass\n'
    )
    tests = repo / "tests"
    tests.mkdir()
    (tests / "test_b.py").write_text("from pkg import b\n\n\ndef test_b():\n    assert b.VALUE\n")
    return repo
