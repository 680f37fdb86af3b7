"""The compiled row building (kb._fastrows) builds every article's rows as kb.store does.

An import builds the rows with the compiled code; kb.store keeps the Python
version, which is the reference and what runs where the extension is not built. So the
two must give the same rows for every article: here for the records of the fixtures and
of the real NCBI files as an import reads them, and for articles made at random of the
values that change how a row is written (text JSON must escape, missing values, copies).
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest

from ingest.model import Article
from ingest.pubmed_xml import iter_records
from kb import store
from kb.store import ARTICLE_COLUMNS, FLAT_FIELDS, PreparedArticle, flatten_article

ROOT = Path(__file__).resolve().parents[1]
XML = ROOT / "tests" / "data" / "xml"
REFUSED = {"billion_laughs.xml", "xxe.xml", "esearch_reply.xml"}  # refused whole: test_safexml
FIXTURES = sorted(p for p in XML.glob("*.xml") if p.name not in REFUSED) + [
    ROOT / "data" / "samples" / "demo_pubmed.xml"]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "pubmed-real"
RETRACTED = list(ARTICLE_COLUMNS).index("retracted")
SECTIONS = list(ARTICLE_COLUMNS).index("abstract_sections")

try:
    from kb import _fastrows as compiled
except ImportError:  # not built: the first test fails and says so, the others have nothing to compare
    compiled = None
needs_compiled = pytest.mark.skipif(compiled is None, reason="kb._fastrows is not built (no C compiler at install)")


def flattened(records) -> list[tuple]:
    """The articles of ``records`` as an import's reader sends them, before their rows are built."""
    return [record if type(record) is tuple else flatten_article(record)
            for record in records if type(record) is tuple or isinstance(record, Article)]


def assert_same_rows(flats: list[tuple]) -> None:
    for flat in flats:
        by_python = store._prepare_flat(flat)
        by_compiled = compiled.prepare_flat(flat)
        assert type(by_compiled) is PreparedArticle
        assert by_compiled == by_python, flat[0]


def test_imports_build_their_rows_with_the_compiled_code():
    assert compiled is not None, "kb._fastrows is not built: pip install . needs a C compiler (see README)"
    assert store.prepare_flat is compiled.prepare_flat


@needs_compiled
@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_both_build_the_same_rows_for_each_fixture(path):
    flats = flattened(iter_records(path, flat=True))
    assert flats or path.name.startswith(("malformed", "empty", "deletions"))
    assert_same_rows(flats)


# ------------------------------------------------------------------ articles made at random

# Characters JSON writes as themselves, and those it escapes (quote, backslash, controls).
PLAIN = ["a", "Z", " ", "7", "\u00e9", "\u2014", "\u4e2d", "(", "/", "'"]
ESCAPED = ['"', "\\", "\n", "\t", "\x01", "\x1f"]


def _text(rng: random.Random, none: float = 0.1) -> str | None:
    if rng.random() < none:
        return None
    pool = PLAIN + (ESCAPED if rng.random() < 0.3 else [])
    return "".join(rng.choice(pool) for _ in range(rng.randrange(0, 12)))


def _texts(rng: random.Random, most: int = 4) -> list[str]:
    return [_text(rng, none=0) for _ in range(rng.randrange(most + 1))]


def random_flat(rng: random.Random, pmid: int) -> tuple:
    """An article in FLAT_FIELDS order, its values drawn from what changes its rows."""
    keywords = _texts(rng)
    values = {
        "pmid": str(pmid), "version": rng.choice([1, 2]), "title": _text(rng),
        "abstract_sections": [(_text(rng, none=0.05), _text(rng, none=0.5), _text(rng, none=0.5))
                              for _ in range(rng.randrange(4))],
        "authors": [(_text(rng), _text(rng), _text(rng), _text(rng, none=0.8), _texts(rng, 2), _text(rng, 0.7))
                    for _ in range(rng.randrange(5))],
        "journal": tuple(_text(rng, none=0.4) for _ in range(6)),
        "volume": _text(rng), "issue": _text(rng), "pages": _text(rng), "pub_date": "2024-03-01",
        "pub_year": 2024, "entrez_date": "2024-03-02", "revised_date": rng.choice([None, "2025-01-05"]),
        "completed_date": None, "languages": _texts(rng, 2),
        "publication_types": [(rng.choice(["Journal Article", "Retracted Publication", _text(rng, 0)]),
                               _text(rng, 0.5)) for _ in range(rng.randrange(3))],
        "mesh_headings": [(_text(rng, 0), _text(rng, 0.3), rng.random() < 0.5,
                           [(_text(rng, 0), _text(rng, 0.3), rng.choice([True, False, None]))
                            for _ in range(rng.randrange(3))])
                          for _ in range(rng.randrange(4))],
        "keywords": keywords + keywords[:1],  # a keyword given twice is one row
        "doi": _text(rng), "pmcid": _text(rng),
        "links": [(rng.choice(["RetractionIn", "CommentIn", "ErratumIn"]), _text(rng), _text(rng))
                  for _ in range(rng.randrange(3))],
        "status": "MEDLINE", "is_book": rng.random() < 0.1, "source_format": rng.choice(["xml", "medline"]),
        "raw": f"<PubmedArticle>{pmid}</PubmedArticle>".encode(), "digest": rng.choice([None, "d" * 40]),
    }
    return tuple(values[name] for name in FLAT_FIELDS)


@needs_compiled
def test_both_build_the_same_rows_for_articles_made_at_random():
    rng = random.Random(20261130)
    flats = [random_flat(rng, 90000000 + n) for n in range(3000)]
    assert_same_rows(flats)
    rows = [compiled.prepare_flat(flat) for flat in flats]
    # each way a value can go was taken: JSON written directly and by the encoder, retracted or not
    sections_json = [row.row[SECTIONS] for row in rows]
    assert any("\\n" in text or '\\"' in text for text in sections_json)
    assert any(text.startswith('[{"label": ') for text in sections_json)
    retracted = [row.row[RETRACTED] for row in rows]
    assert 0 < sum(retracted) < len(rows)


@needs_compiled
@pytest.mark.parametrize("field", ["abstract_sections", "links", "authors", "mesh_headings"])
@pytest.mark.parametrize("empty", [(), []])
def test_a_malformed_article_raises_what_the_python_version_raises(field, empty):
    """Not a crash: a hand-built tuple with an empty section or link reads out of bounds
    in C unless the index is checked."""
    flat = random_flat(random.Random(5), 92000000)
    at = FLAT_FIELDS.index(field)
    flat = flat[:at] + ([empty],) + flat[at + 1:]
    with pytest.raises(Exception) as by_python:
        store._prepare_flat(flat)
    with pytest.raises(by_python.type):
        compiled.prepare_flat(flat)


@needs_compiled
def test_the_author_rows_both_keep_are_one_bounded_cache():
    """Authors recur across articles, so their rows are kept by name; the compiled code
    keeps them in kb.store's cache, which is emptied when full."""
    authors = [(f"Surname{n}", "Ana", "A", None, [], None) for n in range(store._AUTHOR_ROWS_MAX + 10)]
    flat = random_flat(random.Random(3), 91000000)
    flat = flat[:FLAT_FIELDS.index("authors")] + (authors,) + flat[FLAT_FIELDS.index("authors") + 1:]
    cache = store._AUTHOR_ROWS
    cache.clear()
    by_compiled = compiled.prepare_flat(flat)
    assert len(cache) == 10  # emptied when it held _AUTHOR_ROWS_MAX, then the last ten
    assert ("Surname0", "Ana", "A", None) not in cache and (f"Surname{len(authors) - 1}", "Ana", "A", None) in cache
    assert by_compiled == store._prepare_flat(flat)


# ------------------------------------------------------------------ real files


@needs_compiled
@pytest.mark.real_data
@pytest.mark.skipif(not SHARED.is_dir(), reason=f"real PubMed files not found at {SHARED}")
@pytest.mark.parametrize("name", [
    "ortho-export/pubmed_result_292.xml",
    "ortho-export/citations_200.nbib",
    "baseline/pubmed21n1298.xml.gz",
])
def test_both_build_the_same_rows_for_real_files(name):
    path = SHARED / name
    if name.endswith(".nbib"):
        from ingest.readers import read_records

        records = read_records(path, flat=True)
    else:
        records = iter_records(gzip.open(path, "rb") if name.endswith(".gz") else path, name, flat=True)
    flats = flattened(records)
    assert len(flats) >= 200
    assert_same_rows(flats)
