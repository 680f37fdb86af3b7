"""kb.importing's plumbing between its reader process and the writer (the import itself: test_cli)."""

from pathlib import Path

from kb import importing

SAMPLE_XML = Path(__file__).resolve().parents[1] / "data" / "samples" / "demo_pubmed.xml"


def test_prepared_pieces_cross_the_pipe_as_they_were_sent_and_end_a_batch_every_five_records():
    pieces = list(importing.prepared_batches(SAMPLE_XML, batch_size=5, piece_size=2))
    assert pieces and all(len(piece.articles) <= 2 for piece, _ in pieces)
    for piece, _ in pieces:
        assert importing._decode_batch(importing._encode_batch(piece)) == piece
    assert [ends for _, ends in pieces].count(True) == -(-sum(p.read for p, _ in pieces) // 5)


def test_the_size_of_the_files_tells_about_how_many_records_they_hold(tmp_path):
    import gzip

    plain = tmp_path / "a.xml"
    plain.write_bytes(b"x" * 80_000)
    packed = tmp_path / "b.xml.gz"
    packed.write_bytes(gzip.compress(b"y" * 1000))
    assert importing.expected_records([plain]) == 10
    assert importing.expected_records([plain, packed, tmp_path / "missing.xml"]) == (
        80_000 + packed.stat().st_size * importing.GZIP_RATIO) // importing.BYTES_PER_RECORD


def test_an_import_without_indexes_stores_what_one_with_them_does(tmp_path, monkeypatch):
    from contextlib import contextmanager

    import kb.store
    from kb.store import Store

    def imported(name, bulk):
        monkeypatch.setattr(kb.store, "BULK_LOAD_MIN", 1 if bulk else 10**9)
        store = Store(tmp_path / name).ensure_shape()
        real, deferred = store.bulk_load, []

        @contextmanager
        def spy(expected):
            with real(expected) as dropped:
                deferred.append(dropped)
                yield dropped

        store.bulk_load = spy
        importing.import_files(store, [SAMPLE_XML])
        tables = {t: sorted(store.db.execute(f"select * from [{t}]").fetchall())
                  for t in ("articles", "article_mesh", "article_authors", "keywords", "raw_records")}
        return tables, store, deferred

    with_indexes, _, kept = imported("a.db", bulk=False)
    without, store, dropped = imported("b.db", bulk=True)
    assert (kept, dropped) == ([False], [True])
    stamp = list(kb.store.ARTICLE_COLUMNS).index("first_seen")
    strip = lambda rows: [r[:stamp] for r in rows]  # noqa: E731 - the import's own timestamps differ
    assert strip(without.pop("articles")) == strip(with_indexes.pop("articles"))
    assert without == with_indexes and without["article_mesh"]
    assert {i.name for i in store.db["articles"].indexes} >= {"idx_articles_pub_year", "idx_articles_retracted"}


def test_a_stop_signal_the_moment_a_batch_is_committed_still_counts_that_batch(tmp_path):
    """The run records what its result counted: a SIGTERM landing right after a COMMIT
    must not leave five stored records counted as none."""
    import os
    import signal
    from contextlib import contextmanager

    import pytest

    from kb.store import Store

    store = Store(tmp_path / "kb.db").ensure_shape()
    atomic = store.db.atomic

    @contextmanager
    def atomic_then_stopped():
        with atomic():
            yield store.db
        if not store.db.conn.in_transaction:  # the COMMIT itself, not a nested savepoint
            os.kill(os.getpid(), signal.SIGTERM)

    def stop(signum, frame):
        raise KeyboardInterrupt

    store.db.atomic = atomic_then_stopped
    previous = signal.signal(signal.SIGTERM, stop)
    result = importing.FileResult(str(SAMPLE_XML))
    try:
        with pytest.raises(KeyboardInterrupt):
            importing.import_file(store, SAMPLE_XML, batch_size=5, processes=False, result=result)
    finally:
        signal.signal(signal.SIGTERM, previous)
    stored = store.db.execute("select count(*) from articles").fetchone()[0]
    assert stored == 5 and result.counts.new == 5 and result.records == 5
