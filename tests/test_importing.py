"""kb.importing's plumbing between its reader process and the writer (the import itself: test_cli)."""

from pathlib import Path

import pytest

from kb import importing

SAMPLE_XML = Path(__file__).resolve().parents[1] / "data" / "samples" / "demo_pubmed.xml"


def test_pieces_cross_the_pipe_read_and_come_out_as_rows_and_end_a_batch_every_five_records():
    from kb.store import prepare_batch

    pieces = list(importing.read_pieces(SAMPLE_XML, batch_size=5, piece_size=2))
    assert pieces and all(len(piece.articles) <= 2 for piece, _ in pieces)
    for piece, _ in pieces:
        assert importing._decode_batch(importing._encode_batch(piece)) == prepare_batch(piece)
    assert [ends for _, ends in pieces].count(True) == -(-sum(p.read for p, _ in pieces) // 5)


def _record(pmid: str, title: str, revised: str) -> str:
    year, month, day = revised.split("-")
    return (f'<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM"><PMID Version="1">{pmid}</PMID>'
            f"<DateRevised><Year>{year}</Year><Month>{month}</Month><Day>{day}</Day></DateRevised>"
            '<Article PubModel="Print"><Journal><JournalIssue CitedMedium="Print"><PubDate><Year>2024</Year>'
            "</PubDate></JournalIssue><Title>Journal of Synthetic Cryotherapy</Title></Journal>"
            f"<ArticleTitle>{title}</ArticleTitle></Article></MedlineCitation></PubmedArticle>")


def _deletion(pmid: str) -> str:
    return f'<DeleteCitation><PMID Version="1">{pmid}</PMID></DeleteCitation>'


STORED = _record("90000001", "Cryoablation of a desmoid tumour", "2024-01-01")
REVISED = _record("90000001", "Cryoablation of desmoid tumours: a revision", "2024-06-01")
OTHER = _record("90000002", "Cryoablation of osteoid osteoma", "2024-01-01")


@pytest.mark.parametrize("stored, parts, counts", [
    ([STORED], [STORED, OTHER, REVISED], (1, 1, 0, 0)),  # unchanged, then revised: revised
    ([STORED], [STORED, _deletion("90000001"), REVISED], (0, 1, 0, 0)),  # the deletion undone by a newer copy
    ([STORED], [STORED, _deletion("90000001"), STORED], (0, 0, 1, 0)),  # undone by the same copy: as before
    ([], [STORED, _deletion("90000001"), STORED], (1, 0, 0, 0)),  # new, withdrawn, back: new
    ([STORED], [_deletion("90000001"), OTHER, STORED], (1, 0, 1, 0)),
    ([STORED], [STORED, OTHER, _deletion("90000001")], (1, 0, 1, 1)),  # a deletion after its copy stands
], ids=["revised later", "revived by a newer copy", "revived by the same copy", "new and revived",
        "deleted then revived", "deleted after"])
@pytest.mark.parametrize("piece_size", [1, 2])
def test_each_pmid_counts_once_a_batch_as_what_the_batch_made_of_it_wherever_the_pieces_fall(
        tmp_path, monkeypatch, stored, parts, counts, piece_size):
    """(new, revised, unchanged, deleted) of a second file, its copies and deletions of one
    PMID in one batch: the same in pieces of one or two records as in one piece."""
    from kb.store import Store

    def document(name: str, records: list[str]) -> Path:
        path = tmp_path / name
        path.write_text("<?xml version='1.0' encoding='UTF-8'?>\n<PubmedArticleSet>\n" + "\n".join(records)
                        + "\n</PubmedArticleSet>\n")
        return path

    def imported(name: str, size: int) -> tuple:
        monkeypatch.setattr(importing, "PIECE_SIZE", size)
        store = Store(tmp_path / name).ensure_shape()
        if stored:
            importing.import_files(store, [document("first.xml", stored)], processes=False)
        [result] = importing.import_files(store, [document("second.xml", parts)], processes=False)
        c = result.counts
        rows = store.db.execute("select pmid, title, deleted from articles order by pmid").fetchall()
        return (c.new, c.revised, c.unchanged, c.deleted), rows

    whole = imported("whole.db", 1000)
    assert whole[0] == counts
    assert imported("pieces.db", piece_size) == whole


@pytest.mark.parametrize("piece_size", [1, 2])
def test_the_rows_articles_share_are_stored_alike_whatever_the_size_of_the_pieces(tmp_path, monkeypatch, piece_size):
    """A batch's pieces leave out the journals, authors and headings an earlier piece of
    it wrote as they are (kb.store.EarlierPieces): the ISSN and the heading's UI that
    later records of the batch add must still be stored, as in one piece."""
    import re

    from kb.store import Store

    full = (Path(__file__).parent / "data" / "xml" / "full_record.xml").read_text()
    record = re.search(r"<PubmedArticle>.*?</PubmedArticle>", full, re.S).group(0)
    bare = re.sub(r'\s*<ISSN IssnType="Electronic">[^<]*</ISSN>', "", record).replace(
        '<DescriptorName UI="D003451" MajorTopicYN="Y">', '<DescriptorName MajorTopicYN="Y">')
    records = [(bare if n < 2 else record).replace('<PMID Version="2">39990001</PMID>',
                                                   f'<PMID Version="2">3999100{n}</PMID>', 1) for n in range(4)]
    document = tmp_path / "four.xml"
    document.write_text("<?xml version='1.0' encoding='UTF-8'?>\n<PubmedArticleSet>\n" + "\n".join(records)
                        + "\n</PubmedArticleSet>\n")

    def shared_rows(name: str, size: int) -> dict:
        monkeypatch.setattr(importing, "PIECE_SIZE", size)
        store = Store(tmp_path / name).ensure_shape()
        importing.import_files(store, [document])
        return {table: sorted(store.db.execute(f"select * from {table}").fetchall())
                for table in ("journals", "authors", "mesh_terms")}

    in_pieces, whole = shared_rows("pieces.db", piece_size), shared_rows("whole.db", 1000)
    assert in_pieces == whole
    assert ("1999-0042" in whole["journals"][0]) and ("Cryosurgery", "D003451") in whole["mesh_terms"]


@pytest.mark.parametrize("reader", ["sending", "silent"])
def test_an_inbox_closed_early_ends_its_thread_and_a_reader_still_sending_sees_a_broken_pipe(reader):
    """The writer stops early (a failed batch, Ctrl-C). A reader still sending must end at
    once rather than send the rest of its file; the inbox's thread must end even when the
    reader sends nothing more (stuck on a slow disk, or on standard input), rather than
    hold the writer in close."""
    import multiprocessing
    import threading

    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=True)
    target = _send_until_refused if reader == "sending" else _send_once_then_wait
    process = context.Process(target=target, args=(receiver, sender), daemon=True)
    process.start()
    sender.close()
    inbox = importing._Inbox(receiver, depth=2)
    assert inbox.get() == b"B" + bytes(10_000)
    closing = threading.Thread(target=inbox.close)
    closing.start()
    closing.join(10)
    try:
        assert not closing.is_alive() and not inbox._thread.is_alive() and receiver.closed
        if reader == "sending":
            process.join(10)
            assert process.exitcode == 0  # it ended on the broken pipe
    finally:
        process.terminate()
        process.join()


def _send_until_refused(receiver, sender) -> None:
    receiver.close()
    try:
        while True:
            sender.send_bytes(b"B" + bytes(10_000))
    except (BrokenPipeError, ConnectionResetError):
        return


def _send_once_then_wait(receiver, sender) -> None:
    import time

    receiver.close()
    sender.send_bytes(b"B" + bytes(10_000))
    time.sleep(60)


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
        def spy(expected, **kwargs):
            with real(expected, **kwargs) as dropped:
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


def test_a_run_of_update_files_gives_the_same_store_each_time_it_is_run(tmp_path):
    """A record, the update that withdraws it, the update that brings it back unchanged:
    run again as one import, the files must leave the article where the first run did."""
    from kb.store import Store

    record = (Path(__file__).parent / "data" / "xml" / "full_record.xml").read_bytes()
    files = [tmp_path / "a.xml", tmp_path / "b.xml", tmp_path / "c.xml"]
    files[0].write_bytes(record)
    files[1].write_bytes(b'<?xml version="1.0"?>\n<PubmedArticleSet>\n<DeleteCitation>'
                         b'<PMID Version="1">39990001</PMID></DeleteCitation>\n</PubmedArticleSet>\n')
    files[2].write_bytes(record)
    store = Store(tmp_path / "kb.db").ensure_shape()
    for _ in range(2):
        importing.import_files(store, files, processes=False)
        assert store.db["articles"].get("39990001")["deleted"] == 0


def stopped_at_the_first_commit(store) -> None:
    """Make the store send SIGTERM to its own process the moment a batch's COMMIT returns."""
    import os
    import signal
    import time
    from contextlib import contextmanager

    transaction = store.transaction

    @contextmanager
    def transaction_then_stopped():
        with transaction():
            yield store.db
        if not store.db.conn.in_transaction:  # the COMMIT itself, not a nested savepoint
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # long enough for whichever thread the kernel chose to take it

    store.transaction = transaction_then_stopped


def test_a_stop_signal_the_moment_a_batch_is_committed_still_counts_that_batch(tmp_path):
    """The run records what its result counted: a SIGTERM landing right after a COMMIT
    must not leave five stored records counted as none. Another thread is waiting, as
    numpy's OpenBLAS thread does in every cryokb process: the kernel may hand it the
    signal, and Python then runs the handler in the main thread all the same."""
    import signal
    import threading

    import pytest

    from kb.store import Store

    store = Store(tmp_path / "kb.db").ensure_shape()
    stopped_at_the_first_commit(store)

    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    done = threading.Event()
    waiting = threading.Thread(target=done.wait)
    waiting.start()
    result = importing.FileResult(str(SAMPLE_XML))
    try:
        with pytest.raises(KeyboardInterrupt):
            importing.import_file(store, SAMPLE_XML, batch_size=5, processes=False, result=result)
    finally:
        signal.signal(signal.SIGTERM, previous)
        done.set()
        waiting.join()
    stored = store.db.execute("select count(*) from articles").fetchone()[0]
    assert stored == 5 and result.counts.new == 5 and result.records == 5


def test_a_sigterm_held_during_a_commit_still_ends_a_process_that_kept_the_default_action(tmp_path):
    """A library caller that installed no handler: the SIGTERM waits for the COMMIT, then
    ends the process as it would have, with the batch stored."""
    import signal
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_importing import stopped_at_the_first_commit
        from kb import importing
        from kb.store import Store
        store = Store({str(tmp_path / "kb.db")!r}).ensure_shape()
        stopped_at_the_first_commit(store)
        importing.import_file(store, {str(SAMPLE_XML)!r}, batch_size=5, processes=False)
        print("the import went on")
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == -signal.SIGTERM, run.stderr
    assert "went on" not in run.stdout
    from kb.store import Store

    assert Store(tmp_path / "kb.db").db.execute("select count(*) from articles").fetchone()[0] == 5


def test_ctrl_c_while_a_bulk_load_builds_its_indexes_waits_until_they_are_built(tmp_path, monkeypatch):
    """Left without them, the store was served without them: commands that only read
    (serve, stats) never build them."""
    import os
    import signal

    import pytest

    import kb.store
    from kb.store import SECONDARY_INDEXES, Store

    monkeypatch.setattr(kb.store, "BULK_LOAD_MIN", 1)
    store = Store(tmp_path / "kb.db").ensure_shape()
    build = Store._ensure_indexes

    def pressed_half_way(self):
        os.kill(os.getpid(), signal.SIGINT)
        build(self)

    monkeypatch.setattr(Store, "_ensure_indexes", pressed_half_way)
    with pytest.raises(KeyboardInterrupt):
        importing.import_files(store, [SAMPLE_XML], processes=False)
    built = {name for (name,) in store.db.execute("select name from sqlite_master where name like 'idx_%'")}
    assert len(built) == sum(map(len, SECONDARY_INDEXES.values()))
    assert store.db.execute("select count(*) from articles").fetchone()[0] > 0
    assert store.db.execute("select outcome from harvest_runs").fetchone()[0] == "failed"
