"""Shared fixtures: paths to the external corpora."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

# A real PostgreSQL server for the shared-store tests (started only when a test asks for it).
pytest_plugins = ["tests.pgserver"]

# No wall-clock deadline per example: these machines are shared, and a timing threshold in a
# unit test only measures the neighbours.
settings.register_profile("batchwan", deadline=None)
settings.load_profile("batchwan")

REPO = Path(__file__).resolve().parent.parent
TESTDATA = REPO.parent / "shared" / "testdata"


@pytest.fixture(scope="session")
def testdata() -> Path:
    """The external corpora; a test marked `corpus` needs them."""
    if not TESTDATA.is_dir():
        pytest.skip(f"corpora not found at {TESTDATA}")
    return TESTDATA


@pytest.fixture(autouse=True)
def _own_state_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test has its own user state folder: the index of sends never leaks between tests."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
