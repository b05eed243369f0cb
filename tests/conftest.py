"""Shared fixtures: paths to the external corpora."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TESTDATA = REPO.parent / "shared" / "testdata"


@pytest.fixture(scope="session")
def testdata() -> Path:
    """The external corpora; a test marked `corpus` needs them."""
    if not TESTDATA.is_dir():
        pytest.skip(f"corpora not found at {TESTDATA}")
    return TESTDATA
