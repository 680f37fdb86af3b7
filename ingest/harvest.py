"""Harvest PubMed into the store: plan date windows, fetch them in batches, record the run.

ESearch hands out at most the first 9,999 records of a result, so a query matching more
is split into entrez-date (EDAT) windows, halving each window until it holds fewer than
10,000; every window is then fetched through its own history entry, one efetch and one
``store.save_records`` transaction per batch. A failure therefore loses at most the
batch in flight: every earlier batch is already committed, and because records are
upserted by PMID the next run can safely go over the same ground again.

Runs are incremental: the store keeps each run's window, and a run without ``since``
asks only for what entered (EDAT) or changed (MDAT) from one day before the end of the
stretch that successful runs have covered without a gap (``covered_until``) to today.
The first run has no date bound at all. A run whose ``since`` leaves a gap after that
stretch (or a first run with one) fetches what it was asked for but moves nothing: the
next incremental run still starts where the unbroken stretch ends, so nothing between
is skipped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import tomllib
from dataclasses import dataclass, field
from typing import Callable

from ingest.eutils import HISTORY_GONE, EutilsClient, EutilsError, SearchResult
from ingest.model import Article, Deletion, ParseProblem, SaveCounts, ended_by
from ingest.pubmed_xml import iter_records

log = logging.getLogger("cryokb.harvest")

# A window must hold fewer records than this for ESearch to hand them all out.
ESEARCH_LIMIT = 10_000
# Lower bound for splitting an unbounded search: older than any PubMed entrez date.
EARLIEST_DATE = dt.date(1781, 1, 1)
# Upper bound of a modification-date range in a term: PubMed's own idiom for "no end" is year 3000.
LATEST_DATE = dt.date(3000, 12, 31)
# Runs that ask efetch again for a record a search found but efetch did not return (an
# outage answering with empty sets, a record between revisions) before it is given up.
PENDING_RUNS = 5
# How far an incremental run reaches back before the last run's end (time zones, late indexing).
OVERLAP = dt.timedelta(days=1)
QUERY_FILE = "pubmed_query.toml"
QUERY_KEYS = {"version", "date", "description", "notes", "block"}
BLOCK_KEYS = {"name", "mesh", "tiab", "other"}


class HarvestError(EutilsError):
    """A harvest that cannot be planned or run as asked (bad dates, a window too dense, a bad query file)."""


class WindowTooLargeError(HarvestError):
    """A one-day window still holds 10,000 records or more: date splitting cannot help."""


@dataclass
class Window:
    """A date range of one search and the history entry holding its result."""

    datetype: str | None  # "edat", "mdat", or None for an unbounded search
    mindate: dt.date | None
    maxdate: dt.date | None
    search: SearchResult
    entered: tuple[dt.date, dt.date] | None = None  # an EDAT range in the term, within an MDAT day
    modified: tuple[dt.date, dt.date] | None = None  # an MDAT range in the term, within an EDAT day

    @property
    def ids(self) -> list[str] | None:
        """Every id the window's search found, or None where it did not hand them all out.

        A list longer than the Count beside it (NCBI's count and list can disagree) is
        every id too: paging by the Count alone, the records listed past it were never
        fetched. A list shorter than the Count is not (_fetch_window pages the history
        for the rest).
        """
        ids = self.search.ids
        return ids if ids and len(ids) >= self.search.count else None

    def describe(self) -> str:
        if self.datetype is None:
            return "all dates"
        dates = f"{self.datetype.upper()} {format_date(self.mindate)}-{format_date(self.maxdate)}"
        for what, days in (("entered", self.entered), ("modified", self.modified)):
            if days:
                dates += f" {what} {format_date(days[0])}-{format_date(days[1])}"
        return dates




@dataclass
class HarvestResult:
    """What a run did: its window, the searches it planned, and the store's counts."""

    run_id: int
    since: str | None
    until: str
    windows: list[Window] = field(default_factory=list)
    matched: int = 0  # records the windows hold (each once, where the searches gave every id)
    fetched: int = 0  # records read from efetch replies
    batches: int = 0
    counts: SaveCounts = field(default_factory=SaveCounts)
    problems: list[str] = field(default_factory=list)
    truncated: bool = False  # stopped at max_records before the windows were exhausted


# -- the query file ------------------------------------------------------------

def load_default_query() -> tuple[str, str]:
    """The default query and its version, built from data/pubmed_query.toml."""
    with _data_path(QUERY_FILE).open("rb") as handle:
        try:
            data = tomllib.load(handle)
        except tomllib.TOMLDecodeError as error:
            raise HarvestError(f"{QUERY_FILE}: not valid TOML: {error}") from None
    return build_query(data), str(data["version"])


def _data_path(name: str):
    """cryokb_data.path(name); in a checkout that is not installed, the same package as ``data``."""
    try:
        import cryokb_data
    except ImportError:
        import data as cryokb_data
    return cryokb_data.path(name)


def build_query(data: dict, name: str = QUERY_FILE) -> str:
    """AND of the blocks, each an OR of its MeSH, title/abstract and verbatim terms."""
    unknown = set(data) - QUERY_KEYS
    if unknown or "version" not in data or not data.get("block"):
        problem = f"unknown keys {sorted(unknown)}" if unknown else "needs a version and at least one [[block]]"
        raise HarvestError(f"{name}: {problem}")
    groups = []
    for number, block in enumerate(data["block"], 1):
        unknown = set(block) - BLOCK_KEYS
        if unknown:
            raise HarvestError(f"{name}: block {number}: unknown keys {sorted(unknown)}")
        terms = ([f'"{t}"[Mesh]' for t in block.get("mesh", [])]
                 + [f'"{t}"[tiab]' for t in block.get("tiab", [])] + list(block.get("other", [])))
        if not terms:
            raise HarvestError(f"{name}: block {number} ({block.get('name', 'unnamed')}) has no terms")
        groups.append("(" + " OR ".join(terms) + ")")
    return " AND ".join(groups)


# -- dates -----------------------------------------------------------------------

def parse_date(value, what: str = "date") -> dt.date | None:
    """A date from YYYY/MM/DD, YYYY-MM-DD or an ISO timestamp (as stored) or a date object;
    None stays None."""
    if value is None or isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if len(text) > 10 and text[10] not in "T ":  # "2024/01/015" is no date, not 2024/01/01
        raise HarvestError(f"{what}: {value!r} is not a date in the form YYYY/MM/DD")
    text = text[:10]
    for pattern in ("%Y/%m/%d", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise HarvestError(f"{what}: {value!r} is not a date in the form YYYY/MM/DD")


def format_date(day: dt.date) -> str:
    """The E-utilities form, YYYY/MM/DD (a year before 1000 too: strftime would not pad it)."""
    return f"{day.year:04d}/{day.month:02d}/{day.day:02d}"


def utc_today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


# -- planning --------------------------------------------------------------------

def plan_windows(client: EutilsClient, query: str, *, datetype: str | None = None,
                 mindate: dt.date | None = None, maxdate: dt.date | None = None,
                 latest: dt.date | None = None, limit: int | None = None) -> list[Window]:
    """Search once; if the result is too big for ESearch, split it into date windows.

    An unbounded search (``datetype`` None) that is too big is split on EDAT between
    EARLIEST_DATE and ``latest`` (today by default). Empty windows are dropped.
    ``limit``: ESEARCH_LIMIT unless given.
    """
    limit = limit or ESEARCH_LIMIT
    search = _search(client, query, datetype, mindate, maxdate)
    if search.count < limit:
        return [Window(datetype, mindate, maxdate, search)] if search.count else []
    if datetype is None:
        datetype, mindate, maxdate = "edat", EARLIEST_DATE, latest or utc_today()
    return _split(client, query, datetype, mindate, maxdate, search.count, limit)


def _split(client, query, datetype, low, high, count, limit) -> list[Window]:
    """Halve [low, high] until every part holds fewer than ``limit`` records.

    One MDAT day can hold more (a MeSH reload revises a whole result at once): it is
    halved again on entry date, through the search term, as the E-utilities take one
    date type in their parameters. One EDAT day likewise (a bulk load of old records)
    is halved again on modification date.
    """
    def search(start, end):
        return _search(client, query, datetype, start, end)

    def window(start, end, found):
        return Window(datetype, start, end, found)

    def too_dense(day, count):
        return _split_day(client, query, datetype, day, count, limit)

    return _halve(low, high, count, limit, search, window, too_dense)


def _split_day(client, query, datetype, day, count, limit) -> list[Window]:
    """The records of one ``day`` of ``datetype``, in windows of the other date type (in the
    term) that each hold fewer than ``limit``. A record modified on ``day`` entered on it
    or before; one entered on ``day`` may have been modified at any time (PubMed does not
    promise that a record is never modified before it entered)."""
    other, term = ("EDAT", "entered") if datetype == "mdat" else ("MDAT", "modified")

    def search(start, end):
        return _search(client, query, datetype, day, day, **{term: (start, end)})

    def window(start, end, found):
        return Window(datetype, day, day, found, **{term: (start, end)})

    def too_dense(other_day, count):
        raise WindowTooLargeError(f"{datetype.upper()} {format_date(day)} and {other} {format_date(other_day)} (one day "
                                  f"each) hold {count} records; ESearch hands out fewer than {limit}: narrow the query")

    return _halve(EARLIEST_DATE, day if datetype == "mdat" else LATEST_DATE, count, limit, search, window, too_dense)


def _halve(low, high, count, limit, search, window, too_dense) -> list[Window]:
    """Halve [low, high] until ``search`` finds fewer than ``limit`` records in every part;
    a one-day part that still holds more goes to ``too_dense``."""
    if low >= high:
        return too_dense(low, count)
    middle = low + (high - low) // 2
    windows = []
    for start, end in ((low, middle), (middle + dt.timedelta(days=1), high)):
        found = search(start, end)
        if found.count >= limit:
            windows.extend(_halve(start, end, found.count, limit, search, window, too_dense))
        elif found.count:
            windows.append(window(start, end, found))
    return windows


def _search(client, query, datetype, mindate, maxdate, entered=None, modified=None) -> SearchResult:
    """One esearch, with its ids: a window holds fewer than ESEARCH_LIMIT, so all of them,
    against which every efetch reply is checked (_fetch_window). ``entered``: an EDAT
    range written into the term, within an MDAT window; ``modified``, an MDAT one within an EDAT window."""
    for kind, days in (("EDAT", entered), ("MDAT", modified)):
        if days:
            query = f'({query}) AND ("{format_date(days[0])}"[{kind}] : "{format_date(days[1])}"[{kind}])'
    if datetype is None:
        search = client.esearch(query, retmax=ESEARCH_LIMIT - 1)
    else:
        search = client.esearch(query, datetype=datetype, mindate=format_date(mindate),
                                maxdate=format_date(maxdate), retmax=ESEARCH_LIMIT - 1)
    log.debug("esearch %s: %d records", Window(datetype, mindate, maxdate, search, entered, modified).describe(),
              search.count)
    return search


# -- running -----------------------------------------------------------------------

def harvest(client: EutilsClient, store, query: str, *, query_version: str | None = None,
            since=None, until=None, max_records: int | None = None, batch_size: int = 500,
            progress: Callable[[int, int], None] | None = None, today: dt.date | None = None) -> HarvestResult:
    """Harvest ``query`` into ``store`` and record the run (see the module docstring).

    ``since``/``until`` (YYYY/MM/DD, inclusive) bound the run on entry and modification
    dates; without ``since`` the run continues from the last successful one. A run cut
    short by ``max_records`` is recorded as "partial", so it never becomes the cursor.
    """
    if batch_size < 1 or batch_size > 10_000:
        raise HarvestError(f"batch_size must be between 1 and 10000, not {batch_size}")
    today = today or utc_today()
    until_day = parse_date(until, "until") or today
    if until_day > today:  # nothing has entered PubMed after today; recorded as is, it would skip days
        log.info("until %s is after today: harvesting up to %s", format_date(until_day), format_date(today))
        until_day = today
    since_day = parse_date(since, "since")
    if since_day is None:
        since_day = resume_point(store, query, today)
        if since_day is not None and since_day > until_day:
            raise HarvestError(f"earlier runs of this query cover it up to {format_date(since_day + OVERLAP)}: "
                               f"until {format_date(until_day)} leaves nothing new to fetch (give a since date "
                               "to fetch an earlier stretch again)")
    if since_day is not None and since_day > until_day:
        raise HarvestError(f"since {format_date(since_day)} is after until {format_date(until_day)}")
    result = HarvestResult(
        run_id=store.start_run(kind="harvest", query=query, query_version=query_version,
                               since=since_day and format_date(since_day), until=format_date(until_day),
                               source=client.base_url),
        since=since_day and format_date(since_day), until=format_date(until_day),
    )
    try:
        result.windows = _plan_run(client, query, since_day, until_day, explicit_until=until is not None)
        _fetch_windows(client, store, query, result, max_records, batch_size, progress)
    except BaseException as error:
        store.finish_run(result.run_id, outcome="failed", counts=result.counts, fetched=result.fetched,
                         error=ended_by(error), extra=_details(result), cause=error)
        raise
    store.finish_run(result.run_id, outcome="partial" if result.truncated else "ok", counts=result.counts,
                     fetched=result.fetched, extra=_details(result))
    if since_day is None and not result.windows:
        log.warning("PubMed found no records for the query up to %s; the next run searches from the beginning again",
                    result.until)
    log.info("harvest run %d: %d windows, %d records fetched in %d batches", result.run_id,
             len(result.windows), result.fetched, result.batches)
    return result


def resume_point(store, query: str, today: dt.date) -> dt.date | None:
    """Where an incremental run of ``query`` starts: a day before the end of what earlier
    successful runs covered without a gap, or None (everything) when none did."""
    end = covered_until((run["since"], run["until"], run["started"])
                        for run in store.successful_runs("harvest", query) if _covers(run))
    return None if end is None else min(end - OVERLAP, today)


def _covers(run: dict) -> bool:
    """Whether a successful run counts towards the covered stretch: not one over all dates
    that found nothing. Why: NCBI has answered a search with an empty result by mistake,
    and counted, it would make every later run search only its own days, never fetching
    the records before them; not counted, the next run searches all dates again (one
    esearch where nothing is found)."""
    if run["since"] is not None:
        return True
    try:
        return json.loads(run.get("details") or "{}").get("matched") != 0
    except (ValueError, AttributeError):
        return True


def covered_until(windows) -> dt.date | None:
    """The end of the stretch that successful runs' (since, until[, started]) windows
    cover from the first record on, or None.

    A run extends the stretch only if it started inside it (an incremental run starts a
    day before its end) or had no lower bound: a later ``since`` leaves a gap, and if it
    counted, the next incremental run would start after records it never fetched. A run
    starting the day after the end extends it only if the end day was long over when the
    run that reached it started (an ``until`` in the past): a run up to today saw only
    part of today. Started, not finished: a run searches first and then fetches, for hours
    where NCBI keeps it waiting, and what entered after its searches it never saw. Long
    over: by the OVERLAP an incremental run allows for records
    indexed late, counted from the end of the day in UTC, which is hours ahead of
    PubMed's Eastern time (a run that started at 01:00 UTC the next day started in the
    evening of the end day in Bethesda). Runs are taken by their ``since``, not in the
    order they ran: a run that fills a gap joins the stretch with the one beyond it.
    """
    runs = []
    for since, until, *started in windows:
        until_day = parse_date(until, "a stored run's until")
        if until_day is not None:
            whole = bool(started and started[0]) and _utc_day(started[0]) > until_day + OVERLAP
            runs.append((parse_date(since, "a stored run's since"), until_day, whole))
    end, whole_end = None, False
    for since_day, until_day, whole in sorted(runs, key=lambda run: run[0] or dt.date.min):
        reach = end and end + dt.timedelta(days=1 if whole_end else 0)
        if since_day is None or (reach is not None and since_day <= reach):
            if end is None or until_day > end:
                end, whole_end = until_day, whole
            elif until_day == end:
                whole_end = whole_end or whole
    return end


def _utc_day(stamp: str) -> dt.date:
    """The UTC day of a stored run's ISO timestamp (they are written in UTC)."""
    moment = dt.datetime.fromisoformat(stamp)
    return (moment.astimezone(dt.timezone.utc) if moment.tzinfo else moment).date()


def _plan_run(client, query, since_day, until_day, *, explicit_until: bool) -> list[Window]:
    """Windows of a run: everything (first run), or what entered and what changed since."""
    if since_day is None:
        if explicit_until:
            return plan_windows(client, query, datetype="edat", mindate=EARLIEST_DATE, maxdate=until_day)
        return plan_windows(client, query, latest=until_day)
    windows = []
    for datetype in ("edat", "mdat"):
        windows += plan_windows(client, query, datetype=datetype, mindate=since_day, maxdate=until_day)
    return windows


def _fetch_windows(client, store, query: str, result: HarvestResult, max_records, batch_size, progress) -> None:
    """Fetch every window batch by batch, one store transaction per batch, then what
    earlier runs could not fetch.

    A record found by two windows (one that entered in the run's window is also modified
    in it) is fetched once: a later window's records that an earlier one brought (or
    found efetch would not return) are left out, and the rest of it is fetched by id.
    """
    result.counts = SaveCounts()
    result.matched = _matched(result.windows)
    run = _Run(client, store, query, result, batch_size, progress, max_records or None,  # 0: no bound, as None
               min(result.matched, max_records) if max_records else result.matched)
    run.advance(0)
    if not _new_first(run):
        for window in result.windows:
            if window.ids and any(run.dealt_with(pmid) for pmid in window.ids):
                _fetch_by_id(run, window)
            else:
                _fetch_window(run, window)
            if result.truncated:
                break
    if not result.truncated:  # a run cut short leaves the records awaited from earlier runs for the next
        _fetch_pending(run)
    _settle_pending(run)


def _new_first(run: _Run) -> bool:
    """A run that --max cuts short asks first for the records not stored yet, by id, then
    for stored ones; True if it did (the run is then partial).

    In search order, every bounded run would fetch the same first records again, and one
    whose budget a window's stored records fill would never reach the rest: runs cut short
    do not move the cursor, so the same windows come back, and new records waited for
    ever. Records efetch did not return before come after the other new ones, so that they
    neither bar those nor wait past PENDING_RUNS runs to be given up. Where this order is
    search order (none stored or awaited yet), the history pages serve.
    """
    ids = distinct_ids(run.result.windows)
    if run.limit is None or ids is None or len(ids) <= run.limit:
        return False
    found = list(dict.fromkeys(pmid for window in run.result.windows for pmid in window.search.ids))
    new = set(run.store.unknown_pmids(found))
    awaited = run.store.pending(run.query)  # efetch did not return them before: after the other new ones
    ordered = ([pmid for pmid in found if pmid in new and pmid not in awaited]
               + [pmid for pmid in found if pmid in awaited]
               + [pmid for pmid in found if pmid not in new and pmid not in awaited])  # awaited and stored since: once
    if ordered == found:
        return False
    todo = ordered[: run.room(len(ordered))]
    seen = _Brought(run)
    _fetch_batches_by_id(run, todo, seen, "the run's windows found, those not stored yet first", wanted=ids)
    _report_never(run, seen, [pmid for pmid in todo if pmid not in seen.pmids])
    return True


@dataclass
class _Run:
    """A run's fetching: how far it is into its budget (``limit``, max_records; None for
    none), and the PMIDs it has dealt with."""

    client: EutilsClient
    store: object
    query: str
    result: HarvestResult
    batch_size: int
    progress: Callable[[int, int], None] | None
    limit: int | None
    total: int  # what the progress bar counts to
    done: int = 0  # records asked for so far
    brought: set[str] = field(default_factory=set)  # PMIDs the replies brought
    never: set[str] = field(default_factory=set)  # PMIDs asked for by id that did not come
    unreadable: set[str] = field(default_factory=set)  # the unreadable records written (_sameness)

    def dealt_with(self, pmid: str) -> bool:
        return pmid in self.brought or pmid in self.never

    def room(self, wanted: int) -> int:
        """How many of ``wanted`` more records the budget allows; short of it, the run is truncated."""
        allowed = wanted if self.limit is None else max(0, min(wanted, self.limit - self.done))
        if allowed < wanted:
            self.result.truncated = True
        return allowed

    def advance(self, records: int) -> None:
        self.done += records
        if self.progress:
            self.progress(min(self.done, self.total), self.total)


def _matched(windows: list[Window]) -> int:
    """How many records the windows hold, each counted once where every window knows its
    ids (else an upper bound: a record two windows share counts twice)."""
    ids = distinct_ids(windows)
    return sum(w.search.count for w in windows) if ids is None else len(ids)


def distinct_ids(windows: list[Window]) -> set[str] | None:
    """Every PMID the windows found, each once; None where a window did not hand out all of its."""
    if all(w.ids is not None for w in windows):
        return set().union(*(w.search.ids for w in windows))
    return None


def _fetch_window(run: _Run, window: Window) -> None:
    """One window batch by batch through its history entry, each reply checked against the
    window's ids: a record the search did not find is not stored (a proxy's stray, a reply
    for another query), and the window's records that no batch brought (a reply for another
    retstart, a repeated record, a result that moved) are fetched by id at the end. One
    that efetch never returns is recorded as a problem, not retried for ever. Where the
    search listed fewer ids than its Count, a page past the list must bring a record no
    earlier page brought, and what the pages did not bring is searched for again
    (_fetch_unlisted); a search NCBI no longer holds is finished by the listed ids first."""
    ids, result = window.ids, run.result
    listed = window.search.ids  # where shorter than the Count: the records known to be there
    if listed and len(listed) != window.search.count:
        log.warning("%s: esearch counted %d records and listed %d ids; each listed one is fetched",
                    window.describe(), window.search.count, len(listed))
    seen = _Brought(run)
    gone = capped = False
    asked = 0  # the window's records, in search order, that batches asked for
    for retstart in range(0, window.search.count, run.batch_size):
        whole = min(run.batch_size, window.search.count - retstart)
        retmax = run.room(whole)
        if retmax <= 0:
            capped = True
            break
        result.batches += 1
        label = _batch_label(result.batches, retstart, retmax, window, len(result.windows))
        past_list = ids is None and retstart + retmax > len(listed)  # no ids to check it by
        try:
            body = run.client.efetch(window.search.webenv, window.search.query_key, retstart, retmax, label=label,
                                     expected=None if ids else _expected(retstart, retmax, listed),
                                     brought=set(seen.pmids) if past_list else None)
        except EutilsError as error:
            if not ((ids or listed) and HISTORY_GONE in str(error)):
                raise
            log.warning("%s: NCBI no longer holds the search (%s); the rest of %s is fetched by id",
                        label, HISTORY_GONE, window.describe())
            gone = True
            break
        _save_batch(run.store, result, body, label, ids and set(ids), seen)
        run.advance(retmax)
        asked = retstart + retmax
        if retmax < whole:  # max_records reached inside this batch
            capped = True
            break
    known = ids or listed
    missing = [pmid for pmid in known[:asked] if pmid not in seen.pmids]
    if known and (gone or not capped):  # ids no batch asked for (history gone, or listed past the Count), within --max
        never_asked = [pmid for pmid in known[asked:] if pmid not in seen.pmids]
        taken = never_asked[: run.room(len(never_asked))]
        missing += taken
        run.advance(len(taken))
    _fetch_missing(run, window, missing, seen)
    if ids is None and not result.truncated:
        _fetch_unlisted(run, window, seen, charged=not gone)


def _fetch_unlisted(run: _Run, window: Window, seen: "_Brought", charged: bool = True) -> None:
    """The rest of a window whose search listed fewer ids than its Count, where its replies
    brought fewer records than the Count: a page past the list, which no id vouches for,
    may come short or empty, and accepted it lost its records (the run ok, its dates
    covered). The window is searched once more and the ids it lists that no reply
    brought are fetched by id. What still falls short is one problem, so that it is never
    silent; the run still counts as whole, since NCBI's Count can exceed what its history
    holds (failed, every run of such a window would fail).

    ``charged``: the window's pages were all asked for, and --max charged for them; where
    NCBI dropped the search part way, the records past the list were never charged, so
    they take their places of --max now, and those past it wait for the next run.
    """
    listed = window.search.ids
    if _accounted(run, seen, listed) >= window.search.count:
        return
    again = _search(run.client, run.query, window.datetype, window.mindate, window.maxdate,
                    window.entered, window.modified)
    todo = [pmid for pmid in again.ids if pmid not in seen.pmids and not run.dealt_with(pmid)]
    if not charged:
        todo = todo[: run.room(len(todo))]
        run.advance(len(todo))
    log.warning("%s: the replies brought fewer records than the %d esearch counted; searched again, the %d listed ids "
                "not brought are fetched by id", window.describe(), window.search.count, len(todo))
    _fetch_missing(run, window, todo, seen, wanted=set(listed) | set(again.ids))
    counted = min(window.search.count, again.count)  # fewer now: the first Count was off, or records left the window
    short = counted - _accounted(run, seen, [*listed, *again.ids])
    if short > 0 and not run.result.truncated:  # cut short by --max, the run is partial: the next one goes on
        with run.store.transaction():
            _record_problems(run.store, run.result, [
                ParseProblem("esearch", window.describe(), f"counted {counted} records; {short} could not be "
                             "listed or fetched")])


def _accounted(run: _Run, seen: "_Brought", listed: list[str]) -> int:
    """How many of a window's records the run has dealt with: those its replies brought,
    unreadable ones too, and the ``listed`` ones brought by another window or reported as
    not returned (each a problem already, and awaited)."""
    return len(seen.pmids | {pmid for pmid in listed if run.dealt_with(pmid)}) + len(seen.unreadable)


def _expected(retstart: int, retmax: int, listed: list[str]) -> int | None:
    """How many records a page of a window whose ids are not all known must hold: all it
    asks for, but where the search listed fewer ids than its Count, only as many as the
    list vouches for (a Count above what the history holds failed every run on its last
    page). None where the page lies past the list: it may hold nothing (and what it lacks
    _fetch_unlisted looks for)."""
    if not listed:
        return retmax
    vouched = min(retmax, len(listed) - retstart)
    return vouched if vouched > 0 else None


def _fetch_by_id(run: _Run, window: Window) -> None:
    """A window's records that no earlier window dealt with, fetched by id a batch at a time."""
    wanted = [pmid for pmid in window.search.ids if not run.dealt_with(pmid)]
    todo = wanted[: run.room(len(wanted))]
    seen = _Brought(run)
    _fetch_batches_by_id(run, todo, seen, f"of {window.describe()} no earlier window brought",
                         wanted=set(window.search.ids))
    _report_never(run, seen, [pmid for pmid in todo if pmid not in seen.pmids])


def _fetch_batches_by_id(run: _Run, pmids: list[str], seen: "_Brought", what: str,
                         wanted: set[str] | None = None) -> None:
    """``pmids`` fetched by id a batch at a time, each batch counted in the run and saved.
    ``wanted``: the records a reply may bring (default: the batch's own)."""
    for start in range(0, len(pmids), run.batch_size):
        chunk = pmids[start : start + run.batch_size]
        run.result.batches += 1
        label = f"efetch batch {run.result.batches} ({len(chunk)} ids {what})"
        _save_batch(run.store, run.result, run.client.efetch_ids(chunk, label=label), label,
                    set(chunk) if wanted is None else wanted, seen)
        run.advance(len(chunk))


def _fetch_missing(run: _Run, window: Window, missing: list[str], seen: "_Brought",
                   wanted: set[str] | None = None) -> None:
    """The window's records its batches did not bring, fetched by id; those that never come are problems.
    ``wanted``: the records a reply may bring (default: those the window's search listed).

    Among them, a record that came unreadable (its PMID, listed, was never read): what
    the replies by id bring is counted apart, so that _report_never weighs the ids still
    missing against the unreadable records those replies brought, not the batches'.
    """
    by_id = _Brought(run)
    for start in range(0, len(missing), run.batch_size):
        chunk = missing[start : start + run.batch_size]
        label = f"efetch of {len(chunk)} ids missing from {window.describe()}"
        _save_batch(run.store, run.result, run.client.efetch_ids(chunk, label=label), label,
                    set(window.search.ids) if wanted is None else wanted, by_id)
    _report_never(run, by_id, [pmid for pmid in missing if pmid not in by_id.pmids])
    seen.pmids |= by_id.pmids
    seen.unreadable |= by_id.unreadable


def _report_never(run: _Run, seen: "_Brought", never: list[str]) -> None:
    """Record the PMIDs efetch did not return as problems, once a run (a later window that
    finds them too does not ask again), and remember them for the next runs to ask for.

    Why remember: the next incremental run searches only from this one's end, so a record
    this run found and could not fetch would never be asked for again.

    ``seen``: what the replies that asked for ``never`` by id brought. A record whose
    PMID cannot be read came, as a problem already, and its listed PMID is among
    ``never``: as long as there are no more of them than such records, none is reported
    (said "not returned", it went into harvest_pending and was asked for in every run).
    """
    if len(never) > len(seen.unreadable):
        run.never.update(never)
        with run.store.transaction():
            _record_problems(run.store, run.result, [
                ParseProblem("efetch", f"PMID {pmid}", "in the search result, but efetch did not return it; "
                             "the next harvest asks for it again") for pmid in never])
            run.store.note_missed(run.query, run.result.run_id, never)


def _fetch_pending(run: _Run) -> None:
    """The records earlier runs of the query found but efetch did not return, asked for
    again by id, each miss counted (_settle_pending gives them up)."""
    pending = run.store.pending(run.query)
    if not pending:
        return
    todo = [pmid for pmid in pending if not run.dealt_with(pmid)]
    if run.limit is not None:  # --max cuts what a run fetches; the rest wait, and the run still counts as whole
        todo = todo[: max(0, run.limit - run.done)]
    run.total += len(todo)
    seen = _Brought(run)
    _fetch_batches_by_id(run, todo, seen, "earlier runs found but could not fetch")
    missed = [pmid for pmid in todo if pmid not in seen.pmids]
    run.never.update(missed)
    with run.store.transaction():
        run.store.note_missed(run.query, run.result.run_id, missed)


def _settle_pending(run: _Run) -> None:
    """Forget the awaited records this run brought, and give up, as a problem, those it
    asked for in vain that have now been missed by PENDING_RUNS runs."""
    pending = run.store.pending(run.query)  # this run's misses counted
    if not pending:
        return
    given_up = [pmid for pmid, misses in pending.items() if misses >= PENDING_RUNS and pmid in run.never]
    with run.store.transaction():
        run.store.forget_pending(run.query, [pmid for pmid in pending if pmid in run.brought] + given_up)
        if given_up:
            _record_problems(run.store, run.result, [
                ParseProblem("efetch", f"PMID {pmid}", f"found by a search, but efetch did not return it in "
                             f"{PENDING_RUNS} runs; no longer asked for") for pmid in given_up])


class _Brought:
    """What a window's replies brought: PMIDs, and the records that came unreadable without
    one, each told by its bytes (_sameness: a record twice is one record). Every PMID
    also goes into what the whole ``run`` has brought."""

    def __init__(self, run: _Run):
        self.pmids: set[str] = set()
        self.run = run
        self.unreadable: set[str] = set()

    def add(self, pmid: str) -> None:
        self.pmids.add(pmid)
        self.run.brought.add(pmid)


def _record_problems(store, result: HarvestResult, problems: list[ParseProblem]) -> None:
    _note_problems(result, problems)
    result.counts.add(store.save_records(problems, run_id=result.run_id))


def _note_problems(result: HarvestResult, problems: list[ParseProblem]) -> None:
    for problem in problems:
        log.warning("%s", problem)
        result.problems.append(str(problem))


def _batch_label(number: int, retstart: int, retmax: int, window: Window, windows: int) -> str:
    label = f"efetch batch {number} (records {retstart}-{retstart + retmax - 1} of {window.search.count})"
    return label if windows == 1 and window.datetype is None else f"{label} in {window.describe()}"


def _save_batch(store, result: HarvestResult, body: bytes, label: str, wanted: set[str] | None = None,
                seen: "_Brought | None" = None) -> None:
    """Parse one efetch reply and write it in one transaction; parse problems are counted, not fatal.

    ``wanted``: the PMIDs the search found; records outside it are reported, not stored.
    ``seen`` collects the PMIDs the reply brought.
    """
    name = label.split(" (", 1)[0]
    records = list(iter_records(io.BytesIO(body), name=name))
    withdrawn = [r for r in records if isinstance(r, Deletion)]
    records = [r for r in records if not isinstance(r, Deletion)]
    strays = []
    if wanted is not None:
        strays = [r for r in records if isinstance(r, Article) and r.pmid not in wanted]
        records = [r for r in records if not (isinstance(r, Article) and r.pmid not in wanted)]
    if seen is not None:
        records = _first_time(records, seen)
    # efetch serves records, never withdrawals: only NLM's update files carry those
    records += [ParseProblem(name, "DeleteCitation", f"withdrawal of PMIDs {', '.join(r.pmids)} in an efetch "
                             "reply; not applied") for r in withdrawn]
    records += [ParseProblem(name, f"PMID {r.pmid}", "not in the search result; not stored") for r in strays]
    _note_problems(result, [r for r in records if isinstance(r, ParseProblem)])
    counts = store.save_records(records, run_id=result.run_id)
    result.counts.add(counts)
    read = sum(isinstance(r, Article) for r in records)
    result.fetched += read
    log.info("%s: %d read, %d new, %d revised, %d unchanged, %d problems", label, read,
             counts.new, counts.revised, counts.unchanged, counts.problems)


def _first_time(records: list, seen: _Brought) -> list:
    """The records of a reply that the run has not dealt with before (a proxy that serves
    one batch again, a window whose search gave no ids to leave them out by), each noted
    in ``seen``: a record brought again is not written or counted again.

    A record that came unreadable came all the same: it is a problem already, and one
    brought again (the same bytes: _sameness) is not written again either.
    """
    earlier, this_reply = seen.run.brought, set()
    kept = []
    for record in records:
        pmid = record.pmid if isinstance(record, Article) else None
        if isinstance(record, ParseProblem) and record.where.startswith("PMID "):
            pmid = record.where.removeprefix("PMID ")
        if pmid is None:
            if not record.where.startswith("DeleteCitation"):  # a withdrawal is no record of the search
                same = _sameness(record)
                seen.unreadable.add(same)  # its PMID unreadable too: it came, under no PMID
                if same in seen.run.unreadable:
                    log.debug("%s: brought again in this run; not written again", record.message)
                    continue
                seen.run.unreadable.add(same)
        elif pmid in earlier and pmid not in this_reply:
            seen.pmids.add(pmid)
            log.debug("PMID %s: brought again in this run; not written again", pmid)
            continue
        else:
            this_reply.add(pmid)
            seen.add(pmid)
        kept.append(record)
    return kept


def _sameness(problem: ParseProblem) -> str:
    """What tells an unreadable record from another: its bytes (a record brought twice
    comes the same), not what is wrong with it ("record has no PMID" is said of every
    record without one, and two such records counted as one lost the second)."""
    return hashlib.sha1(problem.raw).hexdigest() if problem.raw else f"{problem.where}: {problem.message}"


def _details(result: HarvestResult) -> dict:
    return {
        "windows": [{"window": w.describe(), "count": w.search.count} for w in result.windows],
        "matched": result.matched,
        "batches": result.batches,
        "truncated": result.truncated,
    }
