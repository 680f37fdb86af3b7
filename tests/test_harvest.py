"""The harvester end to end: the real client, the loopback emulator and the real Store.

Records are synthetic (tests/emulator.py); their entrez dates run from 2001 to 2024 and
"today" is passed in, so the incremental windows are the same on any day.
"""

import logging
import dataclasses
import datetime as dt
import re
import sqlite3
import tomllib

import pytest

from emulator import Emulator, Fault, SyntheticRecord, revised, synthetic_records
from ingest.eutils import EutilsClient, EutilsError
from ingest.harvest import (
    PENDING_RUNS,
    HarvestError,
    WindowTooLargeError,
    build_query,
    covered_until,
    harvest,
    load_default_query,
)

EMAIL = "harvest-bot@example.org"
TODAY = dt.date(2025, 3, 14)
QUERY = "(cryoablation[tiab]) AND (bone neoplasms[mesh])"
NOT_RETURNED = "in the search result, but efetch did not return it; the next harvest asks for it again"


@pytest.fixture
def emu():
    with Emulator() as server:
        yield server


@pytest.fixture
def client(emu):
    return EutilsClient(emu.url, email=EMAIL, interval=0.01, backoff_base=0.01, timeout=0.5, max_tries=3)


def stored_pmids(store) -> list[str]:
    return [row["pmid"] for row in store.db.query("select pmid from articles order by pmid")]


def runs(store) -> list[dict]:
    return list(store.db.query("select * from harvest_runs order by id"))


def efetch_slices(emu) -> list[tuple[str, int, int]]:
    """(WebEnv/query_key, retstart, retmax) of every efetch that was answered normally."""
    return [(r.params["WebEnv"] + "#" + r.params["query_key"], int(r.params["retstart"]), int(r.params["retmax"]))
            for r in emu.requests_to("efetch") if r.fault is None]


# -- a first run ------------------------------------------------------------------------

def test_a_first_run_stores_every_record_exactly_once(emu, client, store):
    emu.records = synthetic_records(1234)
    progress = []
    result = harvest(client, store, QUERY, batch_size=200, today=TODAY,
                     progress=lambda done, total: progress.append((done, total)))
    assert stored_pmids(store) == sorted(r.pmid for r in emu.records)
    assert (result.fetched, result.counts.new, result.batches) == (1234, 1234, 7)
    # one search without a date bound, then seven batches that tile the result without overlap
    assert [r.params.get("datetype") for r in emu.requests_to("esearch")] == [None]
    slices = efetch_slices(emu)
    assert [(start, size) for _, start, size in slices] == [(i * 200, 200) for i in range(6)] + [(1200, 34)]
    assert progress[0] == (0, 1234) and progress[-1] == (1234, 1234)
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)
    run = runs(store)[-1]
    assert (run["outcome"], run["since"], run["until"], run["new"]) == ("ok", None, "2025/03/14", 1234)


def test_a_query_over_ten_thousand_is_split_into_date_windows(emu, client, store):
    emu.records = synthetic_records(12_500)
    result = harvest(client, store, QUERY, batch_size=2500, today=TODAY)
    assert store.db["articles"].count == 12_500 and result.counts.new == 12_500
    assert len(result.windows) >= 2
    assert all(0 < w.search.count < 10_000 for w in result.windows)
    assert sum(w.search.count for w in result.windows) == 12_500
    # the windows tile the dates: each starts the day after the previous one ends
    spans = sorted((w.mindate, w.maxdate) for w in result.windows)
    assert all(later[0] > earlier[1] for earlier, later in zip(spans, spans[1:]))
    # every efetch stays inside what ESearch hands out, through its own window's history entry
    slices = efetch_slices(emu)
    assert all(start + size <= 9_999 for _, start, size in slices)
    assert len({entry for entry, _, _ in slices}) == len(result.windows)
    assert all(r.params["datetype"] == "edat" for r in emu.requests_to("esearch")[1:])


def test_an_entry_day_over_the_limit_is_split_by_modification_date_in_the_term(emu, client, store, monkeypatch):
    """A bulk load enters many old records on one day: the EDAT day is split again on
    modification date, so that the run fetches them all instead of failing on every run."""
    import ingest.harvest

    monkeypatch.setattr(ingest.harvest, "ESEARCH_LIMIT", 100)  # the emulator's 9,999 cap, scaled down
    same_day = dt.date(2019, 5, 2)
    emu.records = [dataclasses.replace(r, entrez_date=same_day) for r in synthetic_records(250, end=TODAY)]
    result = harvest(client, store, QUERY, today=TODAY)
    assert (result.counts.new, result.fetched) == (250, 250) and runs(store)[-1]["outcome"] == "ok"
    modified = [w for w in result.windows if w.modified]
    assert modified and all(w.search.count < 100 for w in result.windows)
    assert all(w.mindate == w.maxdate == same_day for w in modified)
    assert "modified" in runs(store)[-1]["details"]


def test_a_day_over_the_limit_by_both_dates_is_an_error_naming_both(emu, client, store, monkeypatch):
    import ingest.harvest

    monkeypatch.setattr(ingest.harvest, "ESEARCH_LIMIT", 100)
    emu.records = [dataclasses.replace(r, entrez_date=dt.date(2019, 5, 2), modified_date=dt.date(2020, 5, 5))
                   for r in synthetic_records(150)]
    with pytest.raises(WindowTooLargeError, match=r"EDAT 2019/05/02 and MDAT 2020/05/05 \(one day each\) hold 150"):
        harvest(client, store, QUERY, today=TODAY)
    assert runs(store)[-1]["outcome"] == "failed"
    assert emu.requests_to("efetch") == []


def test_a_modification_day_over_the_limit_is_split_by_entry_date_in_the_term(emu, client, store, monkeypatch):
    """A MeSH reload revises a whole result on one day: the MDAT day is split again on
    entry date (in the query term, the date parameters taking one date type), so that an
    incremental run fetches every revision instead of failing for good."""
    import ingest.harvest

    monkeypatch.setattr(ingest.harvest, "ESEARCH_LIMIT", 100)  # the emulator's 9,999 cap, scaled down
    old = synthetic_records(450, end=dt.date(2025, 2, 1))
    old[7] = dataclasses.replace(old[7], entrez_date=dt.date(1975, 6, 2))  # entered long before the others
    emu.records = old
    harvest(client, store, QUERY, today=TODAY)
    reload_day = TODAY + dt.timedelta(days=2)
    emu.records = [revised(r, reload_day, f"Re-indexed: {r.title}") for r in old]
    result = harvest(client, store, QUERY, today=reload_day)
    assert (result.counts.revised, result.fetched) == (450, 450)
    assert runs(store)[-1]["outcome"] == "ok"
    entered = [w for w in result.windows if w.entered]
    assert entered and all(w.search.count < 100 for w in result.windows)
    assert all(w.mindate == w.maxdate == reload_day for w in entered)
    assert sum(w.search.count for w in entered) == 450


def test_an_entry_day_still_over_the_limit_inside_a_modification_day_is_an_error_naming_both(
        emu, client, store, monkeypatch):
    import ingest.harvest

    monkeypatch.setattr(ingest.harvest, "ESEARCH_LIMIT", 100)
    emu.records = [dataclasses.replace(r, entrez_date=dt.date(2019, 3, 3), modified_date=dt.date(2020, 5, 5))
                   for r in synthetic_records(150)]
    with pytest.raises(WindowTooLargeError, match=r"MDAT 2020/05/05 and EDAT 2019/03/03 \(one day each\) hold 150"):
        harvest(client, store, QUERY, since="2020/05/01", until="2020/05/31", today=TODAY)
    assert runs(store)[-1]["outcome"] == "failed" and emu.requests_to("efetch") == []


def test_the_progress_reaches_its_total_when_an_expired_search_is_finished_by_id(emu, client, store):
    emu.records = synthetic_records(250)
    emu.inject("efetch", Fault.expired(), times=None, when=lambda p: p.get("retstart") not in (None, "0"))
    progress = []
    harvest(client, store, QUERY, batch_size=100, today=TODAY, progress=lambda done, total: progress.append((done, total)))
    assert progress[-1] == (250, 250)


@pytest.mark.parametrize("off_by", [-5, 5])
@pytest.mark.parametrize("past_the_end", ["an empty set", "NCBI's Empty result"])
def test_a_search_whose_count_disagrees_with_its_ids_still_stores_every_listed_record(
        emu, client, store, off_by, past_the_end):
    """A Count below the IdList lost the records past it, the run recorded ok; one above
    what the history held failed every run on its last batch."""
    emu.records = synthetic_records(300)
    emu.inject("esearch", Fault.miscounted(off_by), times=None)
    if past_the_end == "NCBI's Empty result":
        emu.inject("efetch", Fault.empty_result(), times=None, when=lambda p: int(p.get("retstart") or 0) >= 300)
    result = harvest(client, store, QUERY, batch_size=100, today=TODAY)
    assert store.db["articles"].count == 300 and result.counts.new == 300
    assert runs(store)[-1]["outcome"] == "ok"


def test_a_search_listing_fewer_ids_than_its_count_still_stores_what_its_history_holds(emu, client, store):
    """Taken as every id, a short list made the records past it strays: dropped, the run ok."""
    emu.records = synthetic_records(300)
    emu.inject("esearch", Fault.short_list(250), times=None)
    result = harvest(client, store, QUERY, batch_size=100, today=TODAY)
    assert store.db["articles"].count == 300 and result.counts.new == 300 and result.counts.problems == 0


# -- incremental runs ---------------------------------------------------------------------

def test_a_first_run_that_finds_nothing_leaves_the_next_run_searching_all_dates(emu, client, store, caplog):
    """NCBI has answered searches empty by mistake: taken as covering everything, the
    first run made every later one search only from yesterday, and the records entered
    before were never fetched."""
    emu.records = []
    with caplog.at_level(logging.WARNING, logger="cryokb"):
        first = harvest(client, store, QUERY, today=TODAY)
    assert first.windows == [] and "found no records for the query up to 2025/03/14" in caplog.text
    emu.records = synthetic_records(120, end=dt.date(2024, 6, 1))
    before = len(emu.requests)
    harvest(client, store, QUERY, today=TODAY + dt.timedelta(days=1))
    assert "datetype" not in emu.requests[before].params  # all dates again
    assert store.db["articles"].count == 120
    assert harvest(client, store, QUERY, today=TODAY + dt.timedelta(days=2)).fetched == 0
    assert emu.requests[-1].params.get("datetype") == "mdat"  # and incremental once something was found


def test_a_second_run_fetches_nothing_new(emu, client, store):
    emu.records = synthetic_records(300)
    harvest(client, store, QUERY, today=TODAY)
    before = len(emu.requests)
    result = harvest(client, store, QUERY, today=TODAY)
    second = emu.requests[before:]
    assert [r.utility for r in second] == ["esearch", "esearch"]
    assert [(r.params["datetype"], r.params["mindate"], r.params["maxdate"]) for r in second] == [
        ("edat", "2025/03/13", "2025/03/14"), ("mdat", "2025/03/13", "2025/03/14")]
    assert result.fetched == 0 and store.db["articles"].count == 300
    assert runs(store)[-1]["outcome"] == "ok"


def test_new_and_revised_records_are_picked_up_by_the_next_run(emu, client, store):
    old = synthetic_records(400, end=dt.date(2025, 2, 1))
    emu.records = old
    harvest(client, store, QUERY, batch_size=150, today=TODAY)
    later = TODAY + dt.timedelta(days=9)
    fresh = [dataclasses.replace(r, entrez_date=later, modified_date=later)
             for r in synthetic_records(3, first_pmid=90500001, seed=11)]
    corrected = {old[5].pmid: "Erratum-corrected title: percutaneous cryoablation of sacral chordoma",
                 old[250].pmid: "Revised title: cryoablation of desmoid tumours of the abdominal wall"}
    emu.records = [revised(r, later, corrected[r.pmid]) if r.pmid in corrected else r for r in old] + fresh
    before = len(emu.requests)
    result = harvest(client, store, QUERY, today=later)
    assert (result.counts.new, result.counts.revised) == (3, 2)
    assert store.db["articles"].count == 403
    for pmid, title in corrected.items():
        assert store.db["articles"].get(pmid)["title"].startswith(title)
    searched = [(r.params["datetype"], r.params["mindate"]) for r in emu.requests[before:] if r.utility == "esearch"]
    assert searched == [("edat", "2025/03/13"), ("mdat", "2025/03/13")]
    # only the new and revised records were fetched, each once: the new ones through the
    # EDAT search, the revised ones (all the MDAT search found besides) by id
    fetches = emu.requests_to("efetch")[-2:]
    assert int(fetches[0].params["retmax"]) == 3
    assert sorted(fetches[1].params["id"].split(",")) == sorted(corrected)
    assert result.fetched == result.matched == 5


def test_since_and_until_bound_the_run(emu, client, store):
    emu.records = synthetic_records(500)
    result = harvest(client, store, QUERY, since="2010/01/01", until="2011/12/31", today=TODAY)
    expected = {r.pmid for r in emu.records
                if dt.date(2010, 1, 1) <= r.entrez_date <= dt.date(2011, 12, 31)
                or dt.date(2010, 1, 1) <= r.modified_date <= dt.date(2011, 12, 31)}
    assert set(stored_pmids(store)) == expected and len(expected) > 20
    assert result.since == "2010/01/01" and result.until == "2011/12/31"
    run = runs(store)[-1]
    assert (run["since"], run["until"], run["outcome"]) == ("2010/01/01", "2011/12/31", "ok")


def test_max_records_bounds_a_run_that_then_does_not_count_as_the_cursor(emu, client, store):
    emu.records = synthetic_records(700)
    result = harvest(client, store, QUERY, max_records=250, batch_size=100, today=TODAY)
    assert store.db["articles"].count == 250 and result.truncated
    assert [int(r.params["retmax"]) for r in emu.requests_to("efetch")] == [100, 100, 50]
    assert runs(store)[-1]["outcome"] == "partial"
    harvest(client, store, QUERY, today=TODAY)  # no successful run yet: everything again
    assert store.db["articles"].count == 700


def test_runs_cut_short_by_max_fetch_what_is_not_stored_first_so_each_gets_further(emu, client, store):
    emu.records = synthetic_records(60)
    for stored in (20, 40, 60):
        result = harvest(client, store, QUERY, max_records=20, batch_size=10, today=TODAY)
        assert result.truncated and (result.fetched, result.counts.new) == (20, 20)
        assert store.db["articles"].count == stored
    assert [run["outcome"] for run in runs(store)] == ["partial"] * 3
    assert harvest(client, store, QUERY, today=TODAY).counts.new == 0 and runs(store)[-1]["outcome"] == "ok"


def test_a_scheduled_run_capped_by_max_gets_to_the_new_records_past_the_cap(emu, client, store):
    emu.records = synthetic_records(200, end=dt.date(2025, 2, 1))
    harvest(client, store, QUERY, today=TODAY)
    later = TODAY + dt.timedelta(days=3)
    emu.records = emu.records + entered_on(later, 8, 90800001)
    counts = [harvest(client, store, QUERY, max_records=5, today=later).counts.new for _ in range(2)]
    assert counts == [5, 3] and store.db["articles"].count == 208
    assert [run["outcome"] for run in runs(store)[-2:]] == ["partial", "partial"]  # 5 of 8 asked each time


def test_max_records_reached_inside_a_batch_stops_there(emu, client, store):
    """The records after the cap in its batch's slice are not 'missing' from the reply:
    fetched by id, they took the run past max_records."""
    emu.records = synthetic_records(250)
    result = harvest(client, store, QUERY, max_records=220, batch_size=100, today=TODAY)
    assert store.db["articles"].count == 220 and result.truncated
    assert [int(r.params["retmax"]) for r in emu.requests_to("efetch")] == [100, 100, 20]
    assert runs(store)[-1]["outcome"] == "partial"


def test_max_records_counts_a_record_both_searches_found_once(emu, client, store):
    emu.records = synthetic_records(200, end=dt.date(2025, 2, 1))
    harvest(client, store, QUERY, today=TODAY)
    later = TODAY + dt.timedelta(days=3)
    emu.records = emu.records + entered_on(later, 5, 90800001)
    result = harvest(client, store, QUERY, max_records=5, today=later)
    assert (result.matched, result.fetched, result.counts.new) == (5, 5, 5)
    assert not result.truncated and runs(store)[-1]["outcome"] == "ok"


def entered_on(day: dt.date, n: int, first_pmid: int) -> list[SyntheticRecord]:
    """``n`` new records that entered PubMed (and were last changed) on ``day``."""
    return [dataclasses.replace(r, entrez_date=day, modified_date=day)
            for r in synthetic_records(n, first_pmid=first_pmid, seed=5)]


def test_an_until_after_today_is_taken_as_today_so_the_next_run_misses_nothing(emu, client, store):
    emu.records = synthetic_records(80, end=dt.date(2025, 3, 1))
    result = harvest(client, store, QUERY, until="2030/01/01", today=TODAY)
    assert result.until == "2025/03/14" and runs(store)[-1]["until"] == "2025/03/14"
    fresh = entered_on(TODAY + dt.timedelta(days=6), 5, 90600001)
    emu.records = emu.records + fresh
    harvest(client, store, QUERY, today=TODAY + dt.timedelta(days=20))
    assert {r.pmid for r in fresh} <= set(stored_pmids(store))


def test_a_run_from_a_later_since_leaves_a_gap_that_the_next_plain_run_goes_over(emu, client, store):
    emu.records = synthetic_records(80, end=dt.date(2025, 1, 9))
    harvest(client, store, QUERY, today=dt.date(2025, 1, 10))
    in_the_gap = entered_on(dt.date(2025, 2, 10), 4, 90700001)
    emu.records = emu.records + in_the_gap
    harvest(client, store, QUERY, since="2025/03/01", today=dt.date(2025, 3, 5))
    assert not {r.pmid for r in in_the_gap} & set(stored_pmids(store))
    before = len(emu.requests)
    harvest(client, store, QUERY, today=dt.date(2025, 4, 1))
    assert {r.pmid for r in in_the_gap} <= set(stored_pmids(store))
    assert [r.params["mindate"] for r in emu.requests[before:] if r.utility == "esearch"] == ["2025/01/09"] * 2


def test_after_a_first_run_with_since_the_next_plain_run_fetches_everything(emu, client, store):
    emu.records = synthetic_records(300)
    harvest(client, store, QUERY, since="2020/01/01", today=TODAY)
    assert 0 < store.db["articles"].count < 300
    harvest(client, store, QUERY, today=TODAY)
    assert store.db["articles"].count == 300


def test_incremental_runs_continue_the_unbroken_stretch_of_earlier_runs():
    day = dt.date
    assert covered_until([]) is None
    assert covered_until([(None, "2025/01/10")]) == day(2025, 1, 10)
    # an incremental run starts a day before the end: it extends the stretch
    assert covered_until([(None, "2025/01/10"), ("2025/01/09", "2025/02/01")]) == day(2025, 2, 1)
    # a later since leaves a gap; an earlier until does not shorten what was covered
    assert covered_until([(None, "2025/01/10"), ("2025/03/01", "2025/03/05")]) == day(2025, 1, 10)
    assert covered_until([(None, "2025/01/10"), ("2010/01/01", "2011/12/31")]) == day(2025, 1, 10)
    # a first run bounded below covers nothing from the start
    assert covered_until([("2020/01/01", "2025/01/10")]) is None
    # a run from the day after the end goes on from it when the end day was over as the run reaching it started
    assert covered_until([(None, "2025/01/10", "2025-01-12T03:00:00+00:00"),
                          ("2025/01/11", "2025/01/20", "2025-01-20T09:00:00+00:00")]) == day(2025, 1, 20)
    # not when the end was the day it ran: records entered later that day would be skipped
    assert covered_until([(None, "2025/01/10", "2025-01-10T22:00:00+00:00"),
                          ("2025/01/11", "2025/01/20", "2025-01-20T09:00:00+00:00")]) == day(2025, 1, 10)
    # nor the next morning in UTC: evening still in PubMed's Eastern time, and no day's
    # room for records indexed late, which an incremental run's overlap gives
    assert covered_until([(None, "2025/01/10", "2025-01-11T03:00:00+00:00"),
                          ("2025/01/11", "2025/01/20", "2025-01-20T09:00:00+00:00")]) == day(2025, 1, 10)
    # a run that fills a gap later joins the stretch with the run beyond the gap
    assert covered_until([(None, "2025/01/10"), ("2025/01/30", "2025/02/10"),
                          ("2025/01/10", "2025/01/31")]) == day(2025, 2, 10)


def test_a_run_has_seen_its_end_day_by_when_it_searched_not_by_when_it_finished(emu, client, store):
    emu.records = synthetic_records(50, end=TODAY - dt.timedelta(days=1))
    harvest(client, store, QUERY, today=TODAY)
    # it searched in the evening of its end day, then fetched for three days (NCBI's waits)
    _stamp_last_run(store, started=f"{TODAY}T20:00:00+00:00", finished=f"{TODAY + dt.timedelta(days=3)}T09:00:00+00:00")
    late = synthetic_records(1, first_pmid=96000001, start=TODAY, end=TODAY)[0]  # entered after its searches
    emu.records = emu.records + [late]
    later = TODAY + dt.timedelta(days=3)
    harvest(client, store, QUERY, since=(TODAY + dt.timedelta(days=1)).strftime("%Y/%m/%d"), today=later)
    _stamp_last_run(store, started=f"{later}T10:00:00+00:00", finished=f"{later}T11:00:00+00:00")

    harvest(client, store, QUERY, today=TODAY + dt.timedelta(days=10))

    assert late.pmid in stored_pmids(store)


def _stamp_last_run(store, **stamps) -> None:
    """Give the last run the times it would have had (harvest stamps the real clock's)."""
    last = store.db.execute("select max(id) from harvest_runs").fetchone()[0]
    store.db["harvest_runs"].update(last, stamps)


# -- faults --------------------------------------------------------------------------------

def test_throttling_server_errors_truncation_and_timeouts_are_retried_and_the_run_completes(emu, client, store):
    emu.records = synthetic_records(1000)
    emu.inject("esearch", Fault.http(503))
    emu.inject("efetch", Fault.http(429, retry_after="0.1"), when=lambda p: p["retstart"] == "0")
    emu.inject("efetch", Fault.http(500), when=lambda p: p["retstart"] == "200")
    emu.inject("efetch", Fault.truncated(), times=2, when=lambda p: p["retstart"] == "400")
    emu.inject("efetch", Fault.slow(1.2), when=lambda p: p["retstart"] == "800")
    result = harvest(client, store, QUERY, batch_size=200, today=TODAY)
    assert stored_pmids(store) == sorted(r.pmid for r in emu.records)
    assert result.counts.new == 1000 and runs(store)[-1]["outcome"] == "ok"
    faults = [r.fault for r in emu.requests if r.fault]
    assert sorted(faults) == ["slow", "status", "status", "status", "truncate", "truncate"]
    assert len(emu.requests_to("efetch")) == 5 + 5


def test_a_persistent_fault_names_the_batch_and_keeps_every_earlier_batch(emu, client, store):
    emu.records = synthetic_records(1000)
    emu.inject("efetch", Fault.http(500), times=None, when=lambda p: p["retstart"] == "600")
    with pytest.raises(EutilsError,
                       match=r"^efetch batch 4 \(records 600-799 of 1000\) failed after 3 tries: HTTP 500: injected$"):
        harvest(client, store, QUERY, batch_size=200, today=TODAY)
    newest_first = sorted((r.pmid for r in emu.records), key=int, reverse=True)
    assert stored_pmids(store) == sorted(newest_first[:600])
    failed = runs(store)[-1]
    assert failed["outcome"] == "failed" and "efetch batch 4" in failed["error"] and failed["new"] == 600

    emu.clear_faults()
    result = harvest(client, store, QUERY, batch_size=200, today=TODAY)
    assert stored_pmids(store) == sorted(newest_first)
    assert (result.counts.new, result.counts.unchanged) == (400, 600)
    assert runs(store)[-1]["outcome"] == "ok"


def test_a_fault_stays_the_error_told_when_the_run_cannot_even_record_it(emu, client, store, monkeypatch):
    """The failure to record a failed run (the same full disk, say) goes to the log: the
    fault that stopped the harvest is what its user must read."""
    emu.records = synthetic_records(400)
    emu.inject("efetch", Fault.http(500), times=None, when=lambda p: p["retstart"] == "200")
    finish_run = store.finish_run

    def full_disk():
        raise sqlite3.OperationalError("database or disk is full")

    def finish_on_a_full_disk(run_id, **kwargs):
        if kwargs["outcome"] == "failed":
            monkeypatch.setattr(store, "transaction", full_disk)
        finish_run(run_id, **kwargs)

    monkeypatch.setattr(store, "finish_run", finish_on_a_full_disk)
    with pytest.raises(EutilsError, match=r"^efetch batch 2 \(records 200-399 of 400\) failed"):
        harvest(client, store, QUERY, batch_size=200, today=TODAY)
    monkeypatch.undo()
    assert len(stored_pmids(store)) == 200


def test_a_reply_with_records_missing_has_them_fetched_by_id(emu, client, store):
    emu.records = synthetic_records(600)
    emu.inject("efetch", Fault.short(10), times=1, when=lambda p: p.get("retstart") == "200")
    result = harvest(client, store, QUERY, batch_size=200, today=TODAY)
    assert store.db["articles"].count == 600 and result.fetched == 600
    assert runs(store)[-1]["outcome"] == "ok"
    by_id = [r for r in emu.requests_to("efetch") if "id" in r.params]
    assert [len(r.params["id"].split(",")) for r in by_id] == [10]


def test_a_record_efetch_never_returns_is_a_problem_and_the_run_goes_on(emu, client, store):
    """A record deleted between the search and the fetch: retried for ever, it failed every
    run at its batch, and no run reached the records after it."""
    emu.records = synthetic_records(600)
    ghost = emu.records[450].pmid
    emu.unfetchable = {ghost}
    result = harvest(client, store, QUERY, batch_size=200, today=TODAY)
    assert store.db["articles"].count == 599 and runs(store)[-1]["outcome"] == "ok"
    assert result.problems == [f"efetch: PMID {ghost}: {NOT_RETURNED}"]
    assert store.db["problems"].count == 1


def test_a_reply_by_id_with_a_record_twice_in_place_of_another_is_tried_again(emu, client, store):
    """It held as many records as ids asked for, so it passed, and the record it displaced
    was only a problem."""
    emu.records = synthetic_records(300)
    emu.inject("efetch", Fault.short(10_000), times=1, when=lambda p: p.get("retstart") == "0")
    emu.inject("efetch", Fault.repeated(), times=1, when=lambda p: "id" in p)
    result = harvest(client, store, QUERY, batch_size=200, today=TODAY)
    assert stored_pmids(store) == sorted(r.pmid for r in emu.records) and result.problems == []
    by_id = [r for r in emu.requests_to("efetch") if "id" in r.params]
    assert [r.fault for r in by_id] == ["repeated", None]


def test_records_efetch_did_not_return_are_asked_for_by_the_next_run(emu, client, store):
    """An outage answering every efetch with an empty set: the incremental run after it
    searched only from the outage run's end, and its 300 records were never fetched."""
    emu.records = synthetic_records(600)
    emu.inject("efetch", Fault.short(10_000), times=None, when=lambda p: "id" in p or p.get("retstart") == "200")
    first = harvest(client, store, QUERY, batch_size=200, today=TODAY)
    assert runs(store)[-1]["outcome"] == "ok" and len(first.problems) == 200
    assert store.stats()["awaiting_fetch"] == 200
    emu.clear_faults()
    later = TODAY + dt.timedelta(days=1)
    second = harvest(client, store, QUERY, batch_size=200, today=later)
    assert stored_pmids(store) == sorted(r.pmid for r in emu.records)
    assert (second.counts.new, second.problems, store.stats()["awaiting_fetch"]) == (200, [], 0)
    assert [r.params["datetype"] for r in emu.requests_to("esearch")[1:]] == ["edat", "mdat"]  # nothing new in them


def test_records_awaited_from_earlier_runs_wait_beyond_max_and_do_not_make_the_run_partial(emu, client, store):
    """Drawn from the --max budget like the windows' records, they made a run whose new
    records all fitted "partial", and it never became the next run's start."""
    old = synthetic_records(50, end=dt.date(2025, 2, 1))
    emu.records = old
    emu.unfetchable = {old[7].pmid}
    harvest(client, store, QUERY, today=TODAY)
    emu.unfetchable = set()
    later = TODAY + dt.timedelta(days=3)
    emu.records = old + synthetic_records(5, first_pmid=90700001, start=later, end=later)
    result = harvest(client, store, QUERY, max_records=5, today=later)
    assert result.counts.new == 5 and not result.truncated and runs(store)[-1]["outcome"] == "ok"
    assert store.pending(QUERY) == {old[7].pmid: 1}  # asked for by the next run, not counted a miss
    harvest(client, store, QUERY, today=later)
    assert store.pending(QUERY) == {} and store.db["articles"].count == 55


def test_runs_capped_by_max_get_past_new_records_efetch_does_not_return_and_give_them_up_in_time(
        emu, client, store):
    """They came first among the records not stored yet, so every capped run asked for them
    alone and fetched nothing; and a capped run never reached the step that gives them up."""
    old = synthetic_records(50, end=dt.date(2025, 2, 1))
    emu.records = old
    harvest(client, store, QUERY, today=TODAY)
    later = TODAY + dt.timedelta(days=3)
    fresh = synthetic_records(10, first_pmid=90700001, start=later, end=later)
    emu.records = old + fresh
    ghosts = sorted((r.pmid for r in fresh), key=int, reverse=True)[:5]  # first in search order
    emu.unfetchable = set(ghosts)
    problems = []
    for run in range(PENDING_RUNS + 1):
        result = harvest(client, store, QUERY, max_records=5, today=later)
        problems += [p for p in result.problems if "no longer asked for" in p]
    assert store.db["articles"].count == 55  # the five that efetch returns
    assert len(problems) == 5 and store.pending(QUERY) == {}


def test_a_record_awaited_and_stored_since_is_asked_for_once_by_a_run_capped_by_max(emu, client, store):
    """Awaited for this query and stored since by a harvest of another, it came in the
    order both among the awaited records and among the stored ones: asked for twice, it
    took two places of --max."""
    old = synthetic_records(30, end=dt.date(2025, 2, 1))
    awaited = old[-1].pmid  # first in search order
    emu.records = old
    emu.unfetchable = {awaited}
    harvest(client, store, QUERY, today=TODAY)
    emu.unfetchable = set()
    harvest(client, store, "another query", today=TODAY)
    assert store.pending(QUERY) == {awaited: 1}
    later = TODAY + dt.timedelta(days=1)
    emu.records = ([revised(r, later, "Revised: " + r.title) if r in old[-3:] else r for r in old]
                   + entered_on(later, 9, 90800001))
    before = len(emu.requests_to("efetch"))
    result = harvest(client, store, QUERY, max_records=11, today=later)
    by_id = [pmid for r in emu.requests_to("efetch")[before:] for pmid in r.params.get("id", "").split(",") if pmid]
    assert by_id.count(awaited) == 1 and result.truncated
    assert (result.counts.new, result.counts.revised) == (9, 2)  # eleven places, eleven records
    assert store.pending(QUERY) == {}


def test_a_record_efetch_never_returns_is_asked_for_in_a_few_runs_then_given_up(emu, client, store):
    emu.records = synthetic_records(100)
    ghost = emu.records[40].pmid
    emu.unfetchable = {ghost}
    asked = []
    for run in range(1, PENDING_RUNS + 2):
        before = len(emu.requests_to("efetch"))
        result = harvest(client, store, QUERY, today=TODAY + dt.timedelta(days=run))
        asked.append(any(ghost in r.params.get("id", "") for r in emu.requests_to("efetch")[before:]))
        if run == PENDING_RUNS:
            assert result.problems == [f"efetch: PMID {ghost}: found by a search, but efetch did not return it in "
                                       f"{PENDING_RUNS} runs; no longer asked for"]
    assert asked == [True] * PENDING_RUNS + [False]
    assert store.stats()["awaiting_fetch"] == 0 and store.db["articles"].count == 99


def test_a_record_efetch_never_returns_in_both_windows_costs_no_other_record(emu, client, store):
    """A new record deleted before the fetch is found by the EDAT and the MDAT search: it
    used up the run's count of records to fetch, the run was "partial" with no --max, and a
    revised record of the MDAT window was never fetched, run after run."""
    old = synthetic_records(100, end=dt.date(2025, 2, 1))
    emu.records = old
    harvest(client, store, QUERY, today=TODAY)
    later = TODAY + dt.timedelta(days=3)
    ghost = dataclasses.replace(synthetic_records(1, first_pmid=90800001)[0], entrez_date=later,
                                modified_date=later)
    titles = {old[10].pmid: "Revised: cryoablation of a glomus tumour of the thumb",
              old[20].pmid: "Revised: cryoablation of an intramuscular haemangioma"}
    emu.records = [revised(r, later, titles[r.pmid]) if r.pmid in titles else r for r in old] + [ghost]
    emu.unfetchable = {ghost.pmid}
    result = harvest(client, store, QUERY, today=later)
    assert runs(store)[-1]["outcome"] == "ok" and not result.truncated
    assert all(store.db["articles"].get(pmid)["title"].startswith(title) for pmid, title in titles.items())
    assert result.problems == [f"efetch: PMID {ghost.pmid}: {NOT_RETURNED}"]
    # asked for by id after its own window's batch (and retried), not again with the MDAT window's records
    assert set(emu.requests_to("efetch")[-1].params["id"].split(",")) == set(titles)


@pytest.mark.parametrize("withdrawn", ["12345678", "not-a-number"], ids=["a withdrawal", "an unreadable one"])
def test_a_withdrawal_in_a_reply_does_not_stand_in_for_a_record_missing_from_another(emu, client, store, withdrawn):
    emu.records = synthetic_records(100)
    emu.inject("efetch", Fault.withdrawal(withdrawn), times=1, when=lambda p: p.get("retstart") == "0")
    emu.inject("efetch", Fault.short(1), times=1, when=lambda p: p.get("retstart") == "50")
    harvest(client, store, QUERY, batch_size=50, today=TODAY)
    assert stored_pmids(store) == sorted(r.pmid for r in emu.records)


def test_records_two_searches_share_are_written_once_when_a_search_gives_no_ids(emu, client, store):
    """Without the MDAT search's ids the run cannot leave out what the EDAT one brought:
    it fetches them again, but writes and counts each record once."""
    old = synthetic_records(200, end=dt.date(2025, 2, 1))
    emu.records = old
    harvest(client, store, QUERY, today=TODAY)
    later = TODAY + dt.timedelta(days=3)
    fresh = [dataclasses.replace(r, entrez_date=later, modified_date=later)
             for r in synthetic_records(5, first_pmid=90800001, seed=5)]
    emu.records = [revised(r, later, "Changed: " + r.title) if i in (3, 4) else r for i, r in enumerate(old)] + fresh
    search = client.esearch

    def without_ids(term, **params):
        found = search(term, **params)
        if params.get("datetype") == "mdat":
            found.ids = found.ids[:1]
        return found

    client.esearch = without_ids
    result = harvest(client, store, QUERY, today=later)
    assert (result.fetched, result.counts.new, result.counts.revised, result.counts.unchanged) == (7, 5, 2, 0)


def test_a_proxy_that_ignores_retstart_loses_nothing(emu, client, store):
    """Every reply the first slice: each looked whole (200 records), 400 were never stored,
    and the run said "ok" (and "unchanged" for records it had just stored)."""
    emu.records = synthetic_records(600)
    emu.inject("efetch", Fault.stale(), times=None, when=lambda p: "id" not in p)
    result = harvest(client, store, QUERY, batch_size=200, today=TODAY)
    assert store.db["articles"].count == 600 and runs(store)[-1]["outcome"] == "ok"
    # the slice served again is neither written again nor counted (it read "1000 fetched, 400 unchanged")
    assert (result.fetched, result.counts.new, result.counts.unchanged) == (600, 600, 0)
    assert (runs(store)[-1]["fetched"], runs(store)[-1]["unchanged"]) == (600, 0)


def test_a_proxy_that_ignores_retstart_past_a_short_list_fails_the_run_naming_the_batch(emu, client, store):
    """No listed id checks a page past the list: the first page served again passed for
    it, 70 of 100 records were lost and the run was ok, its dates covered."""
    emu.records = synthetic_records(100)
    emu.inject("esearch", Fault.short_list(30), times=1)
    emu.inject("efetch", Fault.stale(), times=None, when=lambda p: p.get("retstart") not in (None, "0"))
    with pytest.raises(EutilsError, match=r"^efetch batch 2 \(records 30-59 of 100\) failed after 3 tries: "
                                          r"efetch reply holds only records that earlier batches brought"):
        harvest(client, store, QUERY, batch_size=30, today=TODAY)
    assert runs(store)[-1]["outcome"] == "failed"
    emu.clear_faults()
    harvest(client, store, QUERY, batch_size=30, today=TODAY)  # the next run starts over: nothing lost
    assert stored_pmids(store) == sorted(r.pmid for r in emu.records)


@pytest.mark.parametrize("page", [Fault.short(3), Fault.empty_result()], ids=["short", "empty"])
def test_a_page_past_a_short_list_that_comes_short_has_its_records_searched_again_and_fetched_by_id(
        emu, client, store, page):
    """Nothing vouched for the page, so nothing missed its records: lost, the run ok."""
    emu.records = synthetic_records(100)
    emu.inject("esearch", Fault.short_list(30), times=1)
    emu.inject("efetch", page, times=1, when=lambda p: p.get("retstart") == "60")
    result = harvest(client, store, QUERY, batch_size=20, today=TODAY)
    assert stored_pmids(store) == sorted(r.pmid for r in emu.records)
    assert result.problems == [] and runs(store)[-1]["outcome"] == "ok"
    assert len(emu.requests_to("esearch")) == 2


def test_records_a_short_list_and_its_pages_never_yield_are_one_problem_in_an_ok_run(emu, client, store):
    """NCBI's Count can exceed what its history holds, so the run cannot fail for them;
    but they were lost without a word."""
    emu.records = synthetic_records(100)
    emu.inject("esearch", Fault.short_list(30), times=None)
    emu.inject("efetch", Fault.short(10), times=None, when=lambda p: p.get("retstart") == "40")
    result = harvest(client, store, QUERY, batch_size=20, today=TODAY)
    assert store.db["articles"].count == 90 and runs(store)[-1]["outcome"] == "ok"
    assert result.problems == ["esearch: all dates: counted 100 records; 10 could not be listed or fetched"]
    assert store.db["problems"].count == 1 and store.pending(QUERY) == {}


def test_a_record_the_search_did_not_find_is_not_stored(emu, client, store):
    from emulator import STRAY_PMID

    emu.records = synthetic_records(100)
    emu.inject("efetch", Fault.stray(), times=1)
    result = harvest(client, store, QUERY, batch_size=50, today=TODAY)
    assert store.db["articles"].count == 100 and not store.db["articles"].count_where("pmid = ?", [STRAY_PMID])
    assert any(f"PMID {STRAY_PMID}: not in the search result; not stored" in p for p in result.problems)


def test_a_record_that_cannot_be_parsed_is_counted_and_the_rest_are_stored(emu, client, store):
    records = synthetic_records(120)
    records[30] = dataclasses.replace(records[30], broken=True)
    emu.records = records
    result = harvest(client, store, QUERY, batch_size=50, today=TODAY)
    assert store.db["articles"].count == 119 and result.counts.problems == 1
    assert len(result.problems) == 1 and "efetch batch" in result.problems[0]
    assert runs(store)[-1]["outcome"] == "ok"


def test_a_record_that_cannot_be_parsed_repeated_in_place_of_another_costs_no_record(emu, client, store):
    """Two unreadable copies counted as two records stood in for the missing ids: the
    record the second copy displaced was neither fetched by id nor reported, and the run
    was ok."""
    records = synthetic_records(40)
    records[-1] = dataclasses.replace(records[-1], broken=True)  # first in search order
    emu.records = records
    emu.inject("efetch", Fault.repeated(), times=1, when=lambda p: p.get("retstart") == "0")
    result = harvest(client, store, QUERY, batch_size=20, today=TODAY)
    assert stored_pmids(store) == sorted(r.pmid for r in records[:-1])
    assert result.counts.problems == 1 and len(result.problems) == 1 and "is not a number" in result.problems[0]
    assert store.pending(QUERY) == {} and runs(store)[-1]["outcome"] == "ok"


@pytest.mark.parametrize("batch_size", [20, 100], ids=["in two batches", "in one"])
def test_two_records_without_a_pmid_are_two_problems_not_one_record_brought_twice(emu, client, store, batch_size):
    """Both read "record has no PMID": told apart by that, the second was taken for the
    first brought again, left unwritten, and their PMIDs said not returned and awaited."""
    records = synthetic_records(40)
    for at in (5, 25):
        records[at] = dataclasses.replace(records[at], unnumbered=True)
    emu.records = records
    result = harvest(client, store, QUERY, batch_size=batch_size, today=TODAY)
    assert store.db["articles"].count == 38 and result.counts.problems == 2
    assert [p.split(": ")[-1] for p in result.problems] == ["record has no PMID"] * 2
    assert store.pending(QUERY) == {} and runs(store)[-1]["outcome"] == "ok"


def test_a_record_that_cannot_be_parsed_is_not_reported_as_not_returned_nor_awaited(emu, client, store):
    """With a short reply elsewhere in its window, it was asked for by id, said "efetch did
    not return it", noted in harvest_pending and asked for by every later run."""
    records = synthetic_records(40)
    records[-1] = dataclasses.replace(records[-1], broken=True)
    emu.records = records
    emu.inject("efetch", Fault.short(1), times=1, when=lambda p: p.get("retstart") == "20")
    result = harvest(client, store, QUERY, batch_size=20, today=TODAY)
    assert stored_pmids(store) == sorted(r.pmid for r in records[:-1])
    assert len(result.problems) == 1 and "is not a number" in result.problems[0]
    assert store.pending(QUERY) == {}
    before = len(emu.requests_to("efetch"))
    harvest(client, store, QUERY, batch_size=20, today=TODAY + dt.timedelta(days=1))
    assert emu.requests_to("efetch")[before:] == []  # nothing new, nothing awaited


def test_requests_keep_the_client_spacing_across_a_whole_run(emu, store):
    emu.records = synthetic_records(600)
    emu.inject("efetch", Fault.http(500), times=2)
    client = EutilsClient(emu.url, email=EMAIL, interval=0.1, backoff_base=0.001)
    harvest(client, store, QUERY, batch_size=100, today=TODAY)
    times = [r.time for r in emu.requests]
    assert len(times) == 1 + 6 + 2
    assert min(b - a for a, b in zip(times, times[1:])) >= 0.085  # arrivals, logged by a busy server


def test_bad_dates_are_refused_before_any_request(emu, client, store):
    with pytest.raises(HarvestError, match="since: '2024-13-01' is not a date"):
        harvest(client, store, QUERY, since="2024-13-01", today=TODAY)
    with pytest.raises(HarvestError, match="since 2024/06/01 is after until 2024/01/01"):
        harvest(client, store, QUERY, since="2024/06/01", until="2024/01/01", today=TODAY)
    with pytest.raises(HarvestError, match="until: '2024/01/015' is not a date"):
        harvest(client, store, QUERY, until="2024/01/015", today=TODAY)
    assert emu.requests == []


def test_an_until_before_what_earlier_runs_cover_is_an_error_not_a_one_day_run(emu, client, store):
    emu.records = synthetic_records(50)
    harvest(client, store, QUERY, today=TODAY)
    before = len(emu.requests)
    with pytest.raises(HarvestError, match="earlier runs of this query cover it up to 2025/03/14: until 2020/06/01 "
                                           "leaves nothing new to fetch"):
        harvest(client, store, QUERY, until="2020/06/01", today=TODAY)
    assert len(emu.requests) == before


def test_a_since_before_the_year_1000_is_stored_so_that_later_runs_read_it(emu, client, store):
    emu.records = synthetic_records(50)
    harvest(client, store, QUERY, today=TODAY)
    harvest(client, store, QUERY, since="0001/01/01", today=TODAY)
    assert runs(store)[-1]["since"] == "0001/01/01"
    assert emu.requests_to("esearch")[-1].params["mindate"] == "0001/01/01"
    result = harvest(client, store, QUERY, today=TODAY)  # failed: "a stored run's since: '1/01/01' is not a date"
    assert runs(store)[-1]["outcome"] == "ok" and result.since == "2025/03/13"


# -- the default query --------------------------------------------------------------------

SCHEMA_LESIONS = {  # every lesion type of EVIDENCE_SCHEMA.md and a word the query must search for it
    "osteoid_osteoma": "osteoid osteoma", "osteoblastoma": "osteoblastoma", "bone_metastasis": "bone metasta",
    "soft_tissue_metastasis": "soft tissue metasta", "myeloma": "myeloma", "desmoid_tumor": "desmoid",
    "soft_tissue_sarcoma": "sarcoma", "bone_sarcoma": "chondrosarcoma", "chordoma": "chordoma",
    "chondroblastoma": "chondroblastoma", "giant_cell_tumor": "giant cell tumo",
    "aneurysmal_bone_cyst": "aneurysmal bone cyst", "simple_bone_cyst": "simple bone cyst",
    "enchondroma": "enchondroma", "fibrous_dysplasia": "fibrous dysplasia",
    "langerhans_cell_histiocytosis": "langerhans cell histiocytosis",
    "vascular_malformation": "venous malformation", "hemangioma": "hemangioma",
    "nerve_sheath_tumor": "schwannoma", "glomus_tumor": "glomus tumo", "lipomatous_tumor": "lipoma",
}


def test_the_default_query_crosses_cryo_terms_with_every_lesion_type_of_the_schema():
    query, version = load_default_query()
    assert version == "1"
    cryo, lesions = re.fullmatch(r"\((.*)\) AND \((.*)\)", query).groups()
    assert '"Cryosurgery"[Mesh]' in cryo and '"cryoablat*"[tiab]' in cryo and '"Cryotherapy"[Mesh]' in cryo
    assert "analges" not in cryo and "neurolys" not in cryo
    assert '"Bone Neoplasms"[Mesh]' in lesions and '"Fibromatosis, Aggressive"[Mesh]' in lesions
    missing = [key for key, word in SCHEMA_LESIONS.items() if f'"{word}' not in lesions]
    assert missing == []


def test_the_long_default_query_is_searched_by_post_in_full(emu, client, store):
    query, version = load_default_query()
    emu.records = synthetic_records(40)
    harvest(client, store, query, query_version=version, today=TODAY)
    search = emu.requests_to("esearch")[0]
    assert search.method == "POST" and search.params["term"] == query
    assert store.db["articles"].count == 40 and runs(store)[-1]["query_version"] == "1"


def test_a_query_file_with_an_unknown_key_is_refused_by_name():
    data = tomllib.loads('version = "2"\nlimit = 5\n[[block]]\nmesh = ["Cryosurgery"]\n')
    with pytest.raises(HarvestError, match=r"pubmed_query.toml: unknown keys \['limit'\]"):
        build_query(data)
    data = tomllib.loads('version = "2"\n[[block]]\nname = "cryo"\n')
    with pytest.raises(HarvestError, match=r"block 1 \(cryo\) has no terms"):
        build_query(data)


def test_a_search_ncbi_no_longer_holds_is_finished_by_id(emu, client, store):
    """History entries expire: every later batch would fail, and every run start over."""
    emu.records = synthetic_records(600)
    emu.inject("efetch", Fault.expired(), times=None, when=lambda p: p.get("retstart") not in (None, "0"))
    harvest(client, store, QUERY, batch_size=200, today=TODAY)
    assert store.db["articles"].count == 600 and runs(store)[-1]["outcome"] == "ok"
    assert sorted(len(r.params["id"].split(",")) for r in emu.requests_to("efetch") if "id" in r.params) == [200, 200]
    # by id at once: another try of an entry NCBI no longer holds only repeats its error
    assert [r.params["retstart"] for r in emu.requests_to("efetch") if "id" not in r.params] == ["0", "200"]


def test_an_expired_search_after_a_short_reply_is_finished_whole_and_the_run_is_ok(emu, client, store):
    """The record a short reply lacked and the batches never asked for, all fetched by id;
    the one already counted is not taken for a --max cut."""
    emu.records = synthetic_records(250)
    emu.inject("efetch", Fault.short(1), times=1, when=lambda p: p.get("retstart") == "0")
    emu.inject("efetch", Fault.expired(), times=None, when=lambda p: p.get("retstart") not in (None, "0"))
    result = harvest(client, store, QUERY, batch_size=100, today=TODAY)
    assert store.db["articles"].count == 250 and not result.truncated
    assert runs(store)[-1]["outcome"] == "ok"


@pytest.mark.parametrize("search", [Fault.miscounted(5), Fault.short_list(30)], ids=["count over the list", "short list"])
def test_an_expired_search_whose_list_is_short_of_its_count_is_finished_by_id(emu, client, store, search):
    """Its ids were not all known, so the run failed, though the listed ones were."""
    emu.records = synthetic_records(100)
    emu.inject("esearch", search, times=1)
    emu.inject("efetch", Fault.expired(), times=None, when=lambda p: p.get("retstart") not in (None, "0"))
    result = harvest(client, store, QUERY, batch_size=20, today=TODAY)
    assert stored_pmids(store) == sorted(r.pmid for r in emu.records)
    assert result.problems == [] and runs(store)[-1]["outcome"] == "ok"


def test_an_expired_search_whose_list_is_short_keeps_to_max_and_the_next_run_gets_the_rest(emu, client, store):
    """The records past the list were fetched by id uncounted: --max 50 stored all 100 and
    the run was ok."""
    emu.records = synthetic_records(100)
    emu.inject("esearch", Fault.short_list(30), times=1)
    emu.inject("efetch", Fault.expired(), times=None, when=lambda p: p.get("retstart") == "20")
    result = harvest(client, store, QUERY, batch_size=20, today=TODAY, max_records=50)
    assert store.db["articles"].count == 50 and result.truncated and runs(store)[-1]["outcome"] == "partial"
    assert result.problems == []
    emu.clear_faults()
    harvest(client, store, QUERY, batch_size=20, today=TODAY)
    assert stored_pmids(store) == sorted(r.pmid for r in emu.records)


def test_max_records_reached_while_finishing_an_expired_search_by_id_is_a_partial_run(emu, client, store):
    """Records left unfetched by --max must keep the run from becoming the next one's cursor."""
    emu.records = synthetic_records(250)
    emu.inject("efetch", Fault.expired(), times=None, when=lambda p: p.get("retstart") not in (None, "0"))
    result = harvest(client, store, QUERY, batch_size=100, max_records=150, today=TODAY)
    assert store.db["articles"].count == 150 and result.truncated
    assert runs(store)[-1]["outcome"] == "partial"


def test_a_run_stopped_the_moment_a_batch_is_committed_records_that_batch(emu, client, store):
    """Ctrl-C right after a COMMIT, before the harvester adds the batch to its tally: the
    run's row must still count every record its committed batches stored."""
    from contextlib import contextmanager

    emu.records = synthetic_records(300)
    transaction, commits = store.transaction, []

    @contextmanager
    def stopped_after_the_second_batch():
        with transaction():
            yield store.db
        if not store.db.conn.in_transaction and store.db["articles"].count:
            commits.append(1)
            if len(commits) == 2:
                raise KeyboardInterrupt

    store.transaction = stopped_after_the_second_batch
    with pytest.raises(KeyboardInterrupt):
        harvest(client, store, QUERY, batch_size=100, today=TODAY)
    run = runs(store)[-1]
    assert store.db["articles"].count == 200
    assert (run["outcome"], run["new"], run["fetched"]) == ("failed", 200, 200)


def test_a_withdrawal_inside_an_efetch_reply_is_reported_not_applied(emu, client, store):
    emu.records = synthetic_records(100)
    first = emu.records[0].pmid
    emu.inject("efetch", Fault.withdrawal(first), times=1, when=lambda p: p.get("retstart") == "50")
    result = harvest(client, store, QUERY, batch_size=50, today=TODAY)
    assert store.db["articles"].get(first)["deleted"] == 0
    assert any(f"withdrawal of PMIDs {first} in an efetch reply; not applied" in p for p in result.problems)
