"""Import saved PubMed files (XML, .xml.gz, MEDLINE .txt/.nbib) into the store.

Records are streamed from the file and written a batch at a time, each batch in one
transaction: a broken file keeps everything read before the break, and importing
the same file again changes nothing.

Two cores: a reader process (forked, so nothing is re-imported) parses the file,
reads each article's fields (``kb.store.read_batch``: the compiled walk,
ingest._fastwalk) and compresses its raw record (``kb.store.sealed``), while this
process builds the rows (``prepare_batch``: JSON, compiled too, kb._fastrows) and runs
the SQL (``Store.save_prepared``). The rows are built on this side because a flattened
article crosses the pipe in about half the objects of its rows, which the reader would
then marshal; the raw record is compressed on that side because it crosses the pipe in
a third of the bytes. Both halves take about the same CPU that way. Python code on
both sides would fight over one GIL in threads; in two processes it does not. Batches
travel through a socket pair in pieces (PIECE_SIZE records), in file order, each batch
still written in one transaction; the writer takes them off as they come (_Inbox), at
most INBOX_DEPTH ahead of its work, so memory stays flat whatever the size of the file.
Pieces are plain tuples sent with marshal, about twice as fast as pickle both ways. A run
expected to be large next to the store (from the files' sizes) writes without the
secondary indexes and builds them at the end (``Store.bulk_load``).
"""

from __future__ import annotations

import gc
import logging
import marshal
import multiprocessing
import os
import pickle
import queue
import signal
import socket
import threading
import traceback
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ingest.model import ParseProblem, ended_by
from ingest.readers import ReadError, read_records, shown_name
from kb.errors import USER_ERRORS
from kb.store import EarlierPieces, PreparedBatch, ReadBatch, SaveCounts, Store, prepare_batch, read_batch

log = logging.getLogger("cryokb.import")

# Records a transaction: a killed run reads at most these again. Fewer, larger transactions
# write fewer pages twice (100,000 synthetic records imported in 11.15-11.41 s against
# 11.50-11.87 s with 1,000, 2.7 GB written against 3.1 GB; 10,000 alike).
DEFAULT_BATCH_SIZE = 5000
# Records a piece: few, so that the writer starts soon after the reader and ends soon
# after it (10,000 records imported in 0.95-1.01 s in pieces of 50, 1.07-1.12 s in pieces of 250).
PIECE_SIZE = 50
# Pieces the writer takes off the socket ahead of its work (_Inbox), ~0.2 MB each.
INBOX_DEPTH = 16
# A batch is tens of thousands of small objects, none of them in a reference cycle:
# with the default threshold (700) the cyclic collector keeps re-scanning them, which
# cost a third of the reader's time. Collections still happen, ~70 times less often.
GC_THRESHOLD = 50_000
# What stops a run from outside: Ctrl-C and the scheduler's or an operator's kill.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


# What a PubMed XML record takes, and how much gzip shrinks one: enough to tell a bulk
# load from a top-up (Store.bulk_load), not a count. MEDLINE text is denser, so its
# records are undercounted, which errs towards keeping the indexes.
BYTES_PER_RECORD = 8000
GZIP_RATIO = 6


class ReaderError(RuntimeError):
    """The reader process failed on something that is not a user error (a bug); carries its traceback."""


class ReaderKilled(ReadError):
    """The reader process was ended by a signal (the kernel's out-of-memory killer, an
    operator): nothing wrong with the file or with cryokb, so one line, not a traceback."""


@dataclass
class FileResult:
    path: str
    counts: SaveCounts = field(default_factory=SaveCounts)
    records: int = 0
    withdrawals: int = 0  # PMIDs of DeleteCitations read, deleted from the store or not
    error: str | None = None

    def named_error(self) -> str | None:
        """The error, naming the file once (the readers' errors name it already)."""
        if self.error is None or self.error.startswith(f"{self.path}: "):
            return self.error
        return f"{self.path}: {self.error}"


def prepared_batches(path: str | Path, batch_size: int = DEFAULT_BATCH_SIZE,
                     piece_size: int | None = None) -> Iterator[tuple[PreparedBatch, bool]]:
    """The file's records in prepared pieces (rows), in file order, each with whether it ends a batch."""
    for piece, ends in read_pieces(path, batch_size, piece_size):
        yield prepare_batch(piece), ends


def read_pieces(path: str | Path, batch_size: int = DEFAULT_BATCH_SIZE,
                piece_size: int | None = None) -> Iterator[tuple[ReadBatch, bool]]:
    """The file's records in read pieces (flattened articles), in file order, each with whether it ends a batch.

    A batch (``batch_size`` records, one transaction) travels in pieces of at most
    ``piece_size`` records, so that the writer starts on a batch before all of it is
    read and the two processes overlap more (the first and last batch of a file are
    otherwise read or written alone). A last piece may be empty.
    """
    piece_size = piece_size or PIECE_SIZE
    records = iter(read_records(path, flat=True))
    while True:
        taken = 0
        while True:
            wanted = min(piece_size, batch_size - taken)
            counted = _Counted(islice(records, wanted))
            piece = read_batch(counted)
            taken += counted.n
            if counted.error is not None:  # what was read before a broken part of the file is kept
                yield piece, True
                raise counted.error
            ends = counted.n < wanted or taken == batch_size
            if counted.n or taken:
                yield piece, ends
            if counted.n < wanted:
                return
            if ends:
                break


class _Counted:
    """An iterator that counts what it hands out (records of any kind), and ends early,
    keeping the error, where reading fails: the records before it still make a piece."""

    def __init__(self, iterator: Iterator):
        self._iterator = iterator
        self.n = 0
        self.error: Exception | None = None

    def __iter__(self):
        try:
            for item in self._iterator:
                self.n += 1
                yield item
        except Exception as error:  # noqa: BLE001 - re-raised by read_pieces once the piece is sent
            self.error = error


def import_file(store: Store, path: str | Path, *, batch_size: int = DEFAULT_BATCH_SIZE,
                run_id: int | None = None, on_batch: Callable[[int], None] | None = None,
                on_problem: Callable[[ParseProblem], None] | None = None,
                processes: bool | None = None, result: FileResult | None = None,
                withdrawn: set[str] | None = None) -> FileResult:
    """Import one file. A read error after some batches is recorded, not raised.

    ``processes`` (default: wherever fork exists, and not inside a daemonic process,
    which may have no children) reads in a second process; False reads and writes in
    this one, with the same results. ``result``, when given, is filled in as batches
    are committed, so that a caller still has the counts when the import is cut short.
    ``withdrawn``: the PMIDs the run deleted so far (Store.save_prepared), shared by its files.
    """
    result = result or FileResult(shown_name(path))
    if processes is None:
        processes = ("fork" in multiprocessing.get_all_start_methods()
                     and not multiprocessing.current_process().daemon)
    source = _forked_batches(path, batch_size) if processes else prepared_batches(path, batch_size)
    with _fewer_collections():
        _import_batches(store, source, result, run_id, on_batch, on_problem,
                        set() if withdrawn is None else withdrawn)
    if result.error is None and not result.records and result.counts.problems and not result.withdrawals:
        # nothing but unreadable records: the wrong file, or one saved in another format;
        # said as the file's error, so that a script sees the exit code, not only the lines
        result.error = (f"none of its records could be read ({result.counts.problems} "
                        f"problem{'s' * (result.counts.problems != 1)}, listed in the problems table)")
    return result


def _import_batches(store: Store, source: Iterator[tuple[PreparedBatch, bool]], result: FileResult, run_id,
                    on_batch, on_problem, withdrawn: set[str]) -> None:
    """Write pieces as they come, one transaction a batch; a read error commits what was read,
    a write error nothing of its batch (a piece has no savepoint: Store.save_prepared).

    ``result`` counts a batch once it is committed, so that it never counts the pieces
    of a batch rolled back; nor does ``withdrawn`` keep the PMIDs such a batch withdrew.
    """
    transaction: ExitStack | None = None
    pending = FileResult(result.path)
    withdrawn_before: set[str] = set()
    try:
        for piece, ends_batch in source:
            if transaction is None:
                transaction = ExitStack()
                transaction.enter_context(store.transaction())
                withdrawn_before = set(withdrawn)
                earlier = EarlierPieces()  # what the batch's pieces wrote so far
            _report_problems(piece.problems, on_problem)
            try:
                saved = store.save_prepared(piece, run_id=run_id, withdrawn=withdrawn, within_transaction=True,
                                            earlier=earlier)
            except BaseException as exc:  # the piece is half written: all of its batch goes
                transaction, failed = None, transaction
                _roll_back(failed, exc, withdrawn, withdrawn_before)
                raise
            pending.counts.add(saved)
            pending.records += piece.read
            pending.withdrawals += len(piece.deletions)
            if ends_batch:
                transaction, finished = None, transaction
                with _signals_held():
                    finished.close()
                    pending = _committed(pending, result)
                log.info("%s: batch committed, %d records so far", result.path, result.records)
            if on_batch and piece.read:
                on_batch(piece.read)
    except USER_ERRORS as exc:
        result.error = str(exc)
        log.info("%s", exc)  # the caller has it in result.error and says it (the CLI: one "Error:" line)
    except BaseException as exc:
        if transaction is not None:
            transaction, failed = None, transaction
            _roll_back(failed, exc, withdrawn, withdrawn_before)
        raise
    finally:
        if transaction is not None:
            with _signals_held():
                transaction.close()  # the pieces read before a broken part of the file
                _committed(pending, result)
        source.close()


def _roll_back(transaction: ExitStack, exc: BaseException, withdrawn: set[str], before: set[str]) -> None:
    """Roll a batch back, a second Ctrl-C held off until it is (it would leave the write
    lock taken), and forget what its pieces withdrew: a later file's copy of such a PMID
    is not a record after this run's deletion."""
    with _signals_held():
        transaction.__exit__(type(exc), exc, exc.__traceback__)
        withdrawn.intersection_update(before)


def _committed(pending: FileResult, result: FileResult) -> FileResult:
    """Add a committed batch's counts to the file's; a fresh tally for the next batch."""
    result.counts.add(pending.counts)
    result.records += pending.records
    result.withdrawals += pending.withdrawals
    return FileResult(result.path)


@contextmanager
def _signals_held():
    """Ctrl-C and SIGTERM wait while a batch is committed and counted, then stop the run.

    A stop that landed between the COMMIT and the count (the COMMIT returns only after
    its checkpoint, while other connections already see the rows) left the run recording
    fewer records than it stored. The handlers are swapped for ones that only note the
    signal, and the noted signal goes to the run's own handler once the batch is counted.
    Not a thread's signal mask: the kernel hands a signal the main thread blocks to any
    other thread (numpy's OpenBLAS keeps one), and Python still runs the handler at once.
    Handlers can be swapped only in the main thread, the one Python runs them in.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    noted: list[tuple[int, object]] = []
    held = {signum: signal.signal(signum, lambda *caught: noted.append(caught))
            for signum in STOP_SIGNALS if signal.getsignal(signum) is not None}  # None: not Python's to swap
    try:
        yield
    finally:
        for signum, handler in held.items():
            signal.signal(signum, handler)
        for signum, frame in noted:
            _deliver(signum, frame, held[signum])


def _deliver(signum: int, frame, handler) -> None:
    """Act on a signal as the handler that was in place would have."""
    if callable(handler):
        handler(signum, frame)
    elif handler == signal.SIG_DFL:
        os.kill(os.getpid(), signum)  # the default action (SIGTERM ends the process), now unhindered


@contextmanager
def _fewer_collections():
    """Run the cyclic garbage collector less often for a while (see GC_THRESHOLD)."""
    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], GC_THRESHOLD), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


# Messages from the reader process: b"B" + a marshalled ReadBatch, a piece of a batch
# (b"E" for the piece that ends its batch), or b"P" + a pickled
# ("error", exception), ("crash", traceback text) or ("end", None).

def _forked_batches(path, batch_size: int) -> Iterator[tuple[PreparedBatch, bool]]:
    """Pieces read by a forked reader process, their rows built here; its errors raised here, in order."""
    context = multiprocessing.get_context("fork")
    # a socket pair, not a pipe: shutting it down wakes the inbox's thread (_Inbox.close)
    receiver, sender = context.Pipe(duplex=True)
    reader = context.Process(target=_reader, args=(receiver, sender, str(path), batch_size),
                             name="cryokb-reader", daemon=True)
    reader.start()
    sender.close()  # ours; the reader holds its own copy, so its death ends recv_bytes()
    inbox = _Inbox(receiver)
    try:
        while True:
            try:
                message = inbox.get()
            except (EOFError, OSError):  # OSError: the pipe closed inside a message
                reader.join(5)
                if reader.exitcode is not None and reader.exitcode < 0:
                    # what was stored before it the caller says (FileResult.records)
                    raise ReaderKilled(f"{shown_name(path)}: the reader process was killed "
                                       f"(signal {-reader.exitcode})") from None
                raise ReaderError(f"{shown_name(path)}: the reader process stopped without a word "
                                  f"(exit code {reader.exitcode})") from None
            if message[:1] in (b"B", b"E"):
                yield _decode_batch(memoryview(message)[1:]), message[:1] == b"E"  # a view: no copy
                del message
                continue
            kind, payload = pickle.loads(message[1:])
            if kind == "error":
                raise payload
            if kind == "crash":
                raise ReaderError(f"{shown_name(path)}: the reader process failed:\n{payload}")
            return
    finally:
        inbox.close()  # a reader still sending gets a broken pipe and ends
        reader.join(5)
        if reader.is_alive():
            reader.terminate()
            reader.join()


class _Inbox:
    """The reader's messages, taken off the socket by a thread of the writer's as they come.

    Why: a message waiting in the socket holds the reader up until the writer reads it,
    and the writer reads only between pieces. Taken at once, up to INBOX_DEPTH pieces
    ahead, the reader goes on reading while the writer commits a batch or builds an
    index, and neither waits on the other in the middle of a file (measured: 10,000
    records imported in 0.95-1.01 s against 1.09-1.17 s, pieces of 50). The thread
    waits in recv_bytes without the GIL. Errors of the socket reach the writer in turn.
    """

    def __init__(self, receiver, depth: int | None = None) -> None:
        self._receiver = receiver
        self._queue: queue.Queue = queue.Queue(depth or INBOX_DEPTH)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._take, name="cryokb-inbox", daemon=True)
        self._thread.start()

    def _take(self) -> None:
        while True:
            try:
                message = self._receiver.recv_bytes()
            except BaseException as exc:  # noqa: BLE001 - EOFError, OSError: raised by get, in turn
                self._put(exc)
                return
            if not self._put(message) or message[:1] == b"P":  # closed, or the reader's last word
                return

    def _put(self, item) -> bool:
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def get(self) -> bytes:
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        """Stop the thread, then close the socket: a reader still sending gets a broken pipe.

        Shut down first, since closing a descriptor another thread reads does not wake
        it, and its number could be reused by the next file opened."""
        self._closed.set()
        with suppress(OSError), socket.socket(fileno=os.dup(self._receiver.fileno())) as end:
            end.shutdown(socket.SHUT_RDWR)  # OSError: the reader gone already, or no descriptor to spare
        self._thread.join()
        self._receiver.close()


def _reader(receiver, sender, path: str, batch_size: int) -> None:
    """The reader process: send each piece read (articles flattened), then how the file ended."""
    receiver.close()  # the writer's end: with it closed here, a writer gone means a broken pipe
    gc.freeze()  # what we inherited stays; the collector need not scan it again
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
    stopped_by = None
    try:
        for piece, ends_batch in read_pieces(path, batch_size):
            sender.send_bytes((b"E" if ends_batch else b"B") + _encode_batch(piece))
        _send(sender, "end", None)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the writer is gone; nothing to tell
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM raised as a KeyboardInterrupt (kb.cli)
        stopped_by = signal.SIGINT if type(stop) is KeyboardInterrupt else signal.SIGTERM
    except USER_ERRORS as exc:
        _send(sender, "error", _picklable(exc))
    except BaseException:  # noqa: BLE001 - a bug: its traceback goes to the writer
        _send(sender, "crash", traceback.format_exc())
    finally:
        sender.close()
    if stopped_by is not None:
        _end_as_signalled(stopped_by)


def _end_as_signalled(signum: int) -> None:
    """End the reader as the signal would have: a writer not stopped with it (the signal
    sent to the reader alone) then says the reader was killed, in one line, where an
    exit code of 0 made it a crash "without a word", with a traceback."""
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _send(sender, kind: str, payload) -> None:
    sender.send_bytes(b"P" + pickle.dumps((kind, payload)))


def _picklable(exc: BaseException) -> BaseException:
    """The error itself, or an OSError with its message when it does not survive pickling
    (exceptions whose constructor takes more than the message)."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001
        return OSError(str(exc))


def _encode_batch(batch: ReadBatch) -> bytes:
    return marshal.dumps((
        batch.articles,  # flattened: tuples, lists and plain values
        batch.deletions,
        [(p.source, p.where, p.message) for p in batch.problems],
        batch.read,
        batch.revived,
    ))


def _decode_batch(data: bytes | memoryview) -> PreparedBatch:
    """The piece the reader sent, its rows built (on this side: see the module's docstring)."""
    articles, deletions, problems, read, revived = marshal.loads(data)
    return prepare_batch(ReadBatch(articles, deletions, [ParseProblem(*p) for p in problems], read, revived))


def _report_problems(problems: list[ParseProblem], on_problem) -> None:
    """Each problem to ``on_problem``, whose caller says it (the CLI: "Skipped: ..."), else to the log."""
    for problem in problems:
        if on_problem:
            log.info("%s", problem)
            on_problem(problem)
        else:
            log.warning("%s", problem)


def expected_records(paths: Iterable[str | Path]) -> int:
    """About how many records the files hold, from their sizes (a missing file counts 0)."""
    total = 0
    for path in paths:
        try:
            size = os.path.getsize(path)
        except OSError:
            continue
        total += size * (GZIP_RATIO if str(path).endswith(".gz") else 1)
    return total // BYTES_PER_RECORD


def import_files(store: Store, paths: Iterable[str | Path], *, batch_size: int = DEFAULT_BATCH_SIZE,
                 on_batch=None, on_problem=None, processes: bool | None = None) -> list[FileResult]:
    """Import several files as one run, recorded in harvest_runs (kind 'import')."""
    paths = [str(p) for p in paths]
    names = [shown_name(p) for p in paths]
    run_id = store.start_run(kind="import", source=", ".join(names))
    results = []
    withdrawn: set[str] = set()
    try:
        with store.bulk_load(expected_records(paths), while_indexing=_signals_held, run_id=run_id):
            for path, name in zip(paths, names):
                results.append(FileResult(name))  # counted batch by batch: an interrupted run still says what it stored
                import_file(store, path, batch_size=batch_size, run_id=run_id, on_batch=on_batch,
                            on_problem=on_problem, processes=processes, result=results[-1], withdrawn=withdrawn)
    except BaseException as exc:  # Ctrl-C, a full disk, a bug: the run must not stay "running"
        _finish(store, run_id, results, ended_by(exc), cause=exc)
        raise
    errors = [r.named_error() for r in results if r.error]
    _finish(store, run_id, results, "; ".join(errors) or None)
    return results


def _finish(store: Store, run_id: int, results: list[FileResult], error: str | None,
            cause: BaseException | None = None) -> None:
    """Record how the run ended; ``cause``: the error already on its way out, which a
    failure to record it (the same full disk) must not replace."""
    total = SaveCounts()
    for result in results:
        total.add(result.counts)
    store.finish_run(run_id, outcome="failed" if error else "ok", counts=total,
                     fetched=sum(r.records for r in results), error=error, cause=cause)
