"""Fixtures shared by every test module: databases and the location of real NCBI files."""

import logging
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


@pytest.fixture(autouse=True)
def cryokb_logger_restored():
    """Commands run in-process (CliRunner) configure the "cryokb" logger for a terminal
    (own handler, no propagation); put it back, so that caplog in later tests sees records."""
    logger = logging.getLogger("cryokb")
    saved = (logger.level, list(logger.handlers), logger.propagate)
    yield
    logger.setLevel(saved[0])
    logger.handlers[:] = saved[1]
    logger.propagate = saved[2]
