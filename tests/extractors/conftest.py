"""Fixtures of the extractor tests: one pipeline per session, and synthetic articles.

Building the pipeline compiles a few thousand phrase patterns, so every test module
shares the same one (``nlp``), as sqlite-utils' tests share one blank pipeline.
"""

import json
import os
from pathlib import Path

import cryokb_data
import pytest

from extractors.pipeline import build_nlp
from ingest.model import AbstractSection, Article, PublicationType

SCHEMA = Path(
    os.environ.get("CRYOKB_SHARED", Path(__file__).resolve().parents[3] / "shared")
) / "EVIDENCE_SCHEMA.md"
GOLD = Path(__file__).resolve().parents[1] / "data" / "gold"


@pytest.fixture(scope="session")
def nlp():
    """The full cryokb pipeline (spacy.blank("en") and the cryokb_* components)."""
    return build_nlp()


def make_article(title: str, *sections: str, pmid: str = "90000001", publication_types=()) -> Article:
    """A synthetic Article whose text is ``title``, a blank line, then the sections."""
    return Article(
        pmid=pmid,
        title=title,
        abstract_sections=[AbstractSection(text=s) for s in sections],
        publication_types=[PublicationType(name=p) for p in publication_types],
    )


@pytest.fixture(scope="session")
def schema_path():
    """../shared/EVIDENCE_SCHEMA.md (may be absent on a fresh clone)."""
    return SCHEMA


@pytest.fixture(scope="session")
def gold_dir():
    """tests/data/gold, skipped when the gold set is not there."""
    if not any(GOLD.glob("*.jsonl")):
        pytest.skip(f"no gold set in {GOLD}")
    return GOLD


@pytest.fixture(scope="session")
def article():
    """The factory :func:`make_article`, for tests that build their own articles."""
    return make_article


@pytest.fixture
def concepts(nlp):
    """``concepts(text)`` -> set of (field, key) of the non-negated concept spans."""

    def run(text):
        doc = nlp(text)
        found = {(s.label_, s.id_) for s in doc.spans["cryokb_concepts"] if not s._.negated}
        return found

    return run


@pytest.fixture
def rules_file(monkeypatch, tmp_path):
    """``rules_file(loader, name, content)``: serve ``content`` as data file ``name`` to the
    cached rule ``loader``, for one test; the real rules are loaded again afterwards."""
    loaders = []

    def install(loader, name, content):
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
        monkeypatch.setattr(cryokb_data, "path", lambda _name: path)
        loader.cache_clear()
        loaders.append(loader)
        return loader

    yield install
    monkeypatch.undo()
    for loader in loaders:
        loader.cache_clear()
        loader()
