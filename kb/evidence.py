"""Evidence tables: what the extractors found in each stored article, in SQLite.

``build`` re-extracts only the articles that need it (new, revised, or extracted by
an older extractor or vocabulary version) and rewrites their rows one transaction a
batch, so an interrupted build leaves every article either fully old or fully new.
The full evidence record is kept verbatim in ``evidence.record``: the database and
``cryokb extract`` never disagree, and every derived row (mentions, outcomes) points
at the sentence it came from.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from ingest.model import AbstractSection, Article, PublicationType
from kb.store import Store, chunks, now_iso, transaction

log = logging.getLogger("cryokb.evidence")

LIST_FIELDS = ("approach", "lesion_types", "anatomic_sites", "indications", "guidance", "treatments")
OUTCOME_KEYS = ("measure", "grade", "scale", "percent", "count", "total", "before", "after", "timepoint",
                "direction")
# Indexes of earlier versions, dropped: the covering indexes of ensure_evidence_shape serve their queries.
SUPERSEDED_INDEXES = ("idx_article_concepts_concept", "idx_article_concepts_field", "idx_article_concepts_field_concept")
EVIDENCE_TABLES = ("mentions", "outcomes", "sentences", "article_concepts", "evidence")
PAGE = 500


@dataclass
class BuildResult:
    extracted: int = 0
    skipped: int = 0
    version: str = ""


def ensure_evidence_shape(store: Store) -> None:
    """Create the evidence tables and article columns (idempotent)."""
    db = store.db
    articles = db["articles"]
    wanted = {"relevant": int, "study_design": str, "n_patients": int, "n_lesions": int,
              **{name: str for name in LIST_FIELDS},
              "extractor_version": str, "extracted_hash": str, "extracted_at": str}
    for column, kind in wanted.items():
        if column not in articles.columns_dict:
            articles.add_column(column, kind)
    db["concepts"].create({"key": str, "field": str, "label": str, "definition": str, "mesh_ui": str,
                           "ncit_code": str, "umls_cui": str}, pk="key", if_not_exists=True)
    db["evidence"].create({"pmid": str, "record": str}, pk="pmid",
                          foreign_keys=[("pmid", "articles", "pmid")], if_not_exists=True)
    db["article_concepts"].create(
        {"pmid": str, "concept": str, "field": str, "negated": int, "inferred": int},
        pk=("pmid", "concept"),
        foreign_keys=[("pmid", "articles", "pmid"), ("concept", "concepts", "key")],
        if_not_exists=True,
    )
    db["sentences"].create({"id": int, "pmid": str, "idx": int, "start": int, "end": int, "text": str},
                           pk="id", foreign_keys=[("pmid", "articles", "pmid")], if_not_exists=True)
    db["mentions"].create(
        {"id": int, "pmid": str, "field": str, "concept": str, "text": str, "start": int, "end": int,
         "sentence_id": int, "negated": int, "inferred": int},
        pk="id",
        foreign_keys=[("pmid", "articles", "pmid"), ("sentence_id", "sentences", "id")],
        if_not_exists=True,
    )
    db["outcomes"].create(
        {"id": int, "pmid": str, "position": int, "measure": str, "grade": str, "scale": str,
         "percent": float, "count": int, "total": int, "before": float, "after": float, "timepoint": str,
         "direction": str, "sentence_id": int, "evidence_text": str, "start": int, "end": int},
        pk="id",
        foreign_keys=[("pmid", "articles", "pmid"), ("sentence_id", "sentences", "id")],
        if_not_exists=True,
    )
    indexes = {
        # (pmid, X) answers the X facet of a filtered articles page without reading the
        # articles' rows (Datasette's "X is not null" makes it the index SQLite picks).
        "articles": [["relevant"], ["study_design"], ["extractor_version"], ["pmid", "study_design"],
                     ["pmid", "pub_year"]],
        # Covering indexes for the concept filter (concept -> articles), the unfiltered concept
        # facets (field -> concept counts) and the filtered ones (article -> its concepts).
        "article_concepts": [["concept", "negated", "pmid"], ["field", "negated", "concept"],
                             ["pmid", "field", "negated", "concept"]],
        "sentences": [["pmid", "idx"]],
        "mentions": [["pmid"], ["concept"], ["sentence_id"]],
        "outcomes": [["pmid"], ["measure", "grade"], ["sentence_id"]],
        "concepts": [["field"]],
    }
    for table, columns_list in indexes.items():
        for columns in columns_list:
            db[table].create_index(columns, if_not_exists=True)
    for name in SUPERSEDED_INDEXES:
        db.execute(f"drop index if exists [{name}]")
    if "sentences_fts" not in db.table_names():
        db["sentences"].enable_fts(["text"], create_triggers=True, tokenize="porter")


def load_concepts(store: Store) -> None:
    from extractors.vocabulary import load_data

    vocabulary = load_data("vocabulary.json")
    rows = []
    for field_name, entries in vocabulary["fields"].items():
        for key, entry in entries.items():
            rows.append({"key": key, "field": field_name, "label": entry.get("label"),
                         "definition": entry.get("definition"), "mesh_ui": entry.get("mesh"),
                         "ncit_code": entry.get("ncit"), "umls_cui": entry.get("umls")})
    with store.transaction():
        store.db["concepts"].upsert_all(rows, pk="key")
    store.set_meta("vocabulary_version", str(vocabulary.get("version")))


def current_version() -> str:
    """Extractor version, vocabulary version and a digest of every rule file.

    A change in any of them makes stored evidence stale: a rule edited in data/
    without a version bump is still picked up by the next build.
    """
    from cryokb_data import path as data_path
    from extractors.pipeline import EXTRACTOR_VERSION
    from extractors.vocabulary import load_data

    digest = hashlib.sha1()
    for item in sorted(data_path("").iterdir(), key=lambda p: p.name):
        if item.name.endswith(".json"):
            digest.update(item.name.encode() + b"\0" + item.read_bytes())
    vocabulary = load_data("vocabulary.json").get("version")
    return f"{EXTRACTOR_VERSION}+vocab.{vocabulary}+rules.{digest.hexdigest()[:10]}"


def article_from_row(row: dict) -> Article:
    """Rebuild the Article the extractors read, from its stored row."""
    sections = [AbstractSection(s["text"], s.get("label"), s.get("nlm_category"))
                for s in json.loads(row["abstract_sections"] or "[]")]
    types = [PublicationType(name) for name in json.loads(row["publication_types"] or "[]")]
    return Article(pmid=row["pmid"], title=row["title"] or "", abstract_sections=sections,
                   publication_types=types, pub_year=row.get("pub_year"))


def stale_articles(store: Store, version: str, full: bool = False) -> Iterator[dict]:
    """Rows needing extraction, read a page at a time so memory stays flat."""
    where = "deleted = 0"
    if not full:
        where += (" and (extracted_hash is null or extracted_hash != record_hash"
                  " or extractor_version is null or extractor_version != :version)")
    last = ""
    while True:
        rows = list(store.db.query(
            "select pmid, title, abstract_sections, publication_types, pub_year, record_hash from articles "
            f"where {where} and pmid > :last order by pmid limit {PAGE}",
            {"version": version, "last": last}))
        if not rows:
            return
        yield from rows
        last = rows[-1]["pmid"]


def count_stale(store: Store, version: str, full: bool = False) -> int:
    where = "deleted = 0"
    if not full:
        where += (" and (extracted_hash is null or extracted_hash != record_hash"
                  " or extractor_version is null or extractor_version != ?)")
        return store.db.execute(f"select count(*) from articles where {where}", [version]).fetchone()[0]
    return store.db.execute(f"select count(*) from articles where {where}").fetchone()[0]


def build(store: Store, *, full: bool = False, batch_size: int = 200, n_process: int = 1,
          progress: Callable[[int], None] | None = None, on_total: Callable[[int], None] | None = None
          ) -> BuildResult:
    """Extract what is stale and write its evidence; then refresh the views."""
    ensure_evidence_shape(store)
    load_concepts(store)
    version = current_version()
    result = BuildResult(version=version)
    if on_total:
        on_total(count_stale(store, version, full))
    rows = stale_articles(store, version, full)
    hashes: dict[str, str] = {}

    def articles() -> Iterator[Article]:
        for row in rows:
            hashes[row["pmid"]] = row["record_hash"]
            yield article_from_row(row)

    batch = []
    for item in extract_documents(articles(), batch_size=batch_size, n_process=n_process):
        batch.append(item)
        if len(batch) >= batch_size:
            result.extracted += write_evidence(store, batch, version, hashes)
            log.info("evidence of %d articles written (%d so far)", len(batch), result.extracted)
            batch = []
            if progress:
                progress(batch_size)
    if batch:
        result.extracted += write_evidence(store, batch, version, hashes)
        log.info("evidence of %d articles written (%d so far)", len(batch), result.extracted)
        if progress:
            progress(len(batch))
    _purge_withdrawn(store)
    apply_views(store)
    store.set_meta("extractor_version", version)
    return result


def extract_documents(articles: Iterable[Article], *, batch_size: int = 64, n_process: int = 1
                      ) -> Iterator[tuple[dict, str, list[tuple[int, int]]]]:
    """(record, text, sentence offsets) per article: the record plus the sentences behind it."""
    from extractors.pipeline import extract_with_sentences

    texts = {}

    def remember(items):
        for article in items:
            texts[article.pmid] = article.text
            yield article

    for record, sentences in extract_with_sentences(remember(articles), batch_size=batch_size, n_process=n_process):
        yield record, texts.pop(record["pmid"]), sentences


def write_evidence(store: Store, items: Iterable, version: str, hashes: dict[str, str]) -> int:
    """Replace the evidence of each (record, text, sentences) item, all in one transaction."""
    items = list(items)
    db = store.db
    stamp = now_iso()
    with transaction(db):
        pmids = [record["pmid"] for record, _, _ in items]
        next_ids = _next_ids(store)
        _delete_evidence(store, pmids)
        next_sentence = next_ids["sentences"]
        sentences, mentions, outcomes, concepts, evidence, updates = [], [], [], [], [], []
        for record, text, spans in items:
            ids = {}
            for idx, (start, end) in enumerate(spans):
                ids[(start, end)] = next_sentence
                sentences.append({"id": next_sentence, "pmid": record["pmid"], "idx": idx, "start": start,
                                  "end": end, "text": text[start:end]})
                next_sentence += 1
            _rows_of(record, spans, ids, mentions, outcomes, concepts)
            evidence.append({"pmid": record["pmid"], "record": json.dumps(record, ensure_ascii=False)})
            updates.append(_article_update(record, version, hashes.pop(record["pmid"], None), stamp))
        next_ids["sentences"] = next_sentence
        for table, rows in (("mentions", mentions), ("outcomes", outcomes)):
            for number, row in enumerate(rows, next_ids[table]):
                row["id"] = number
            next_ids[table] += len(rows)
        db["sentences"].insert_all(sentences, pk="id")
        db["mentions"].insert_all(mentions, pk="id")
        db["outcomes"].insert_all(outcomes, pk="id")
        for table, number in next_ids.items():
            store.set_meta(f"next_id:{table}", str(number))
        db["article_concepts"].insert_all(concepts, pk=("pmid", "concept"), replace=True)
        db["evidence"].insert_all(evidence, pk="pmid", replace=True)
        db["articles"].upsert_all(updates, pk="pmid")
    return len(items)


# Evidence rows keep their ids for good: a link to /cryokb/sentences/<id>, or an outcome_id
# quoted beside a median, never comes to mean another row once an article is extracted
# again (SQLite would hand the highest ids out again after their rows were deleted).
ID_TABLES = ("sentences", "mentions", "outcomes")


def _next_ids(store: Store) -> dict[str, int]:
    return {table: max(store.db.execute(f"select coalesce(max(id), 0) from {table}").fetchone()[0] + 1,
                       int(store.get_meta(f"next_id:{table}", "1")))
            for table in ID_TABLES}


def _purge_withdrawn(store: Store) -> None:
    """Remove the evidence of articles deleted since it was extracted (a DeleteCitation):
    a withdrawn citation's numbers must not stay in the tables and summaries. Should the
    PMID come back with a new record, its changed hash makes it stale again."""
    pmids = [row[0] for row in store.db.execute(
        "select pmid from evidence where pmid in (select pmid from articles where deleted = 1)")]
    for chunk in chunks(pmids, PAGE):
        with store.transaction():
            _delete_evidence(store, chunk)
            marks = ",".join("?" * len(chunk))
            store.db.execute(f"update articles set extracted_hash = null where pmid in ({marks})", chunk)


def _delete_evidence(store: Store, pmids: list[str]) -> None:
    marks = ",".join("?" * len(pmids))
    for table in EVIDENCE_TABLES:
        store.db.execute(f"delete from {table} where pmid in ({marks})", pmids)


def _sentence_of(spans: list[tuple[int, int]], start: int | None) -> tuple[int, int] | None:
    """The sentence holding offset ``start``; None for evidence outside the text
    (a study design read from the publication types)."""
    if start is None:
        return None
    for span in spans:
        if span[0] <= start < span[1]:
            return span
    return None


def _rows_of(record, spans, ids, mentions, outcomes, concepts) -> None:
    """Append the rows of one record; the i-th outcomes mention is the i-th outcome's evidence."""
    pmid = record["pmid"]
    own = []
    for mention in record.get("mentions") or []:
        sentence = _sentence_of(spans, mention["start"])
        own.append({"pmid": pmid, "field": mention["field"], "concept": str(mention["key"]),
                    "text": mention["text"], "start": mention["start"], "end": mention["end"],
                    "sentence_id": ids.get(sentence), "negated": int(bool(mention.get("negated"))),
                    "inferred": int(bool(mention.get("inferred")))})
    mentions.extend(own)
    by_concept: dict[tuple[str, str], list[dict]] = {}
    for row in own:
        by_concept.setdefault((row["field"], row["concept"]), []).append(row)
    reported = set()
    for name in LIST_FIELDS:
        for key in record.get(name) or []:
            support = by_concept.get((name, key), [])
            inferred = bool(support) and all(m["inferred"] for m in support)
            concepts.append({"pmid": pmid, "concept": key, "field": name, "negated": 0, "inferred": int(inferred)})
            reported.add(key)
    for (name, key), support in by_concept.items():
        if name in LIST_FIELDS and key not in reported and all(m["negated"] for m in support):
            concepts.append({"pmid": pmid, "concept": key, "field": name, "negated": 1, "inferred": 0})
            reported.add(key)
    outcome_mentions = [row for row in own if row["field"] == "outcomes"]
    for position, outcome in enumerate(record.get("outcomes") or []):
        row = {"pmid": pmid, "position": position, **{k: outcome.get(k) for k in OUTCOME_KEYS}}
        if position < len(outcome_mentions):
            evidence = outcome_mentions[position]
            row.update(sentence_id=evidence["sentence_id"], evidence_text=evidence["text"],
                       start=evidence["start"], end=evidence["end"])
        outcomes.append(row)


def _article_update(record: dict, version: str, record_hash: str | None, stamp: str) -> dict:
    row = {"pmid": record["pmid"], "relevant": int(bool(record.get("relevant"))),
           "study_design": record.get("study_design"), "n_patients": record.get("n_patients"),
           "n_lesions": record.get("n_lesions"), "extractor_version": version, "extracted_hash": record_hash,
           "extracted_at": stamp}
    for name in LIST_FIELDS:
        row[name] = json.dumps(record.get(name) or [])
    return row


MATERIALISED = ("evidence_by_lesion", "evidence_by_indication", "evidence_map")


def apply_views(store: Store) -> None:
    """(Re)create the views of data/views.sql, and store the summaries as tables."""
    from cryokb_data import path as data_path

    db = store.db
    for name in MATERIALISED:  # an older build may have left a view under the table's name
        if name in db.view_names():
            db.execute(f"drop view [{name}]")
    db.executescript(data_path("views.sql").read_text(encoding="utf-8"))  # commits as it goes
    with transaction(db):  # readers see the old summaries or the new, never none
        for name in MATERIALISED:
            db.execute(f"drop table if exists [{name}]")
            db.execute(f"create table [{name}] as select * from [{name}_live]")
    # Statistics for the query planner: without them SQLite looks a filtered articles page's
    # rows up through the primary key and reads each one, rather than the covering indexes
    # of ensure_evidence_shape (about 1.4x slower at 100,000 articles).
    db.analyze()
