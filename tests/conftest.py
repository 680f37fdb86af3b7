"""Fixtures shared by every test module: databases and the location of real NCBI files."""

import os
from pathlib import Path

import pytest

from kb.store import Store

SHARED = Path(os.environ.get("CRYOKB_SHARED", Path(__file__).resolve().parents[2] / "shared"))
PUBMED_REAL = SHARED / "pubmed-real"


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "cryokb.db"


@pytest.fixture
def store(db_path):
    return Store(db_path).ensure_shape()


@pytest.fixture
def pubmed_real():
    if not PUBMED_REAL.is_dir():
        pytest.skip(f"real NCBI files not present at {PUBMED_REAL} (set CRYOKB_SHARED)")
    return PUBMED_REAL
