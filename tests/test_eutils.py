"""EutilsClient against the loopback emulator: requests built by Biopython, rate, retries.

Every test talks HTTP to a real server on 127.0.0.1 (tests/emulator.py) and checks the
requests the server saw, not only what the client returned.
"""

import datetime as dt
import logging
import random
import re
import socket
import time
import urllib.request
from contextlib import contextmanager

import pytest
from Bio import Entrez
from lxml import etree

from emulator import ESEARCH_HEAD, Emulator, Fault, synthetic_records
from ingest import eutils
from ingest.eutils import (
    INTERVAL_WITH_KEY,
    INTERVAL_WITHOUT_KEY,
    EutilsClient,
    EutilsError,
    RateLimiter,
)

EMAIL = "harvest-bot@example.org"
SECRET = "k3y-0123456789abcdef"


@pytest.fixture
def emu():
    with Emulator(synthetic_records(60)) as server:
        yield server


def fast_client(emu, **settings):
    """A client with test-sized spacing and backoff; the code path is the production one."""
    options = dict(email=EMAIL, interval=0.01, backoff_base=0.01, timeout=5.0)
    options.update(settings)
    return EutilsClient(emu.url, **options)


def pmids_in(body: bytes) -> list[str]:
    root = etree.fromstring(body)
    return [e.text for e in root.iterfind("PubmedArticle/MedlineCitation/PMID")]


# -- what we rely on in Biopython -------------------------------------------------

def test_biopython_request_builder_uses_our_url_and_our_identity_not_its_globals(monkeypatch):
    monkeypatch.setattr(Entrez, "email", "someone-else@example.com")
    monkeypatch.setattr(Entrez, "api_key", "global-key")
    monkeypatch.setattr(Entrez, "tool", "biopython")
    request = Entrez._build_request(
        "http://127.0.0.1:9/eutils/esearch.fcgi",
        {"db": "pubmed", "term": "cryoablation", "tool": "cryokb", "email": EMAIL, "api_key": None},
    )
    assert request.get_method() == "GET"
    assert request.full_url.startswith("http://127.0.0.1:9/eutils/esearch.fcgi?")
    assert "tool=cryokb" in request.full_url and "harvest-bot%40example.org" in request.full_url
    assert "api_key" not in request.full_url and "someone-else" not in request.full_url


def test_biopython_request_builder_posts_when_asked():
    request = Entrez._build_request("http://127.0.0.1:9/efetch.fcgi", {"id": ["1", "2"], "email": EMAIL},
                                    post=True)
    assert request.get_method() == "POST" and b"id=1%2C2" in request.data


# -- requests and replies -------------------------------------------------------------

def test_esearch_keeps_the_result_on_the_history_server_and_counts_the_window(emu):
    client = fast_client(emu)
    result = client.esearch("cryoablation bone", datetype="edat", mindate="2005/01/01", maxdate="2012/12/31")
    expected = [r for r in emu.records if dt.date(2005, 1, 1) <= r.entrez_date <= dt.date(2012, 12, 31)]
    assert result.count == len(expected) > 0
    assert result.webenv.startswith("MCID_") and result.query_key == "1"
    sent = emu.requests_to("esearch")[0].params
    assert sent["usehistory"] == "y" and sent["datetype"] == "edat" and sent["mindate"] == "2005/01/01"


def test_efetch_by_history_returns_the_requested_slice(emu):
    client = fast_client(emu)
    search = client.esearch("cryoablation", retmax=60)
    body = client.efetch(search.webenv, search.query_key, 20, 15)
    assert pmids_in(body) == search.ids[20:35]
    sent = emu.requests_to("efetch")[0].params
    assert (sent["retstart"], sent["retmax"], sent["retmode"]) == ("20", "15", "xml")


def test_efetch_ids_goes_by_post_with_every_id(emu):
    client = fast_client(emu)
    ids = [r.pmid for r in emu.records[:45]]
    body = client.efetch_ids(ids)
    request = emu.requests_to("efetch")[0]
    assert request.method == "POST"
    assert request.params["id"].split(",") == ids
    assert sorted(pmids_in(body)) == sorted(ids)


def test_an_efetch_by_id_short_of_records_is_tried_again(emu):
    client = fast_client(emu)
    ids = [r.pmid for r in emu.records[:20]]
    emu.inject("efetch", Fault.short(3))
    assert sorted(pmids_in(client.efetch_ids(ids))) == sorted(ids)
    assert [r.fault for r in emu.requests_to("efetch")] == ["short", None]


def test_the_last_try_of_an_efetch_by_id_takes_the_records_that_still_come(emu):
    """A record deleted since the search never comes: the caller reports it, and keeps the rest."""
    client = fast_client(emu, max_tries=3)
    ids = [r.pmid for r in emu.records[:20]]
    emu.unfetchable = {ids[4]}
    assert sorted(pmids_in(client.efetch_ids(ids))) == sorted(ids[:4] + ids[5:])
    assert len(emu.requests_to("efetch")) == 3


def test_a_client_refuses_a_contact_address_that_is_not_one_before_any_request(emu):
    with pytest.raises(EutilsError, match="contact address 'nobody' is not an e-mail address"):
        fast_client(emu, email="nobody")
    assert emu.requests == []


def test_every_request_names_the_tool_the_email_and_the_key(emu):
    client = fast_client(emu, api_key=SECRET)
    search = client.esearch("cryoablation")
    client.efetch(search.webenv, search.query_key, 0, 5)
    client.efetch_ids([emu.records[0].pmid])
    assert len(emu.requests) == 3
    for request in emu.requests:
        assert request.params["tool"] == "cryokb"
        assert request.params["email"] == EMAIL
        assert request.params["api_key"] == SECRET


def test_replies_that_hold_the_api_key_s_letters_are_taken_as_sent(emu):
    """A short key (a mirror's, a test server's) was taken out of every reply: "<QueryKey>"
    no longer parsed with the key "Key", and with "ablation" the records were stored with
    "(api key)" in their titles."""
    assert fast_client(emu, api_key="Key").esearch("cryoablation").count == len(emu.records)
    client = fast_client(emu, api_key="ablation")
    search = client.esearch("cryoablation")
    body = client.efetch(search.webenv, search.query_key, 0, 10)
    titles = [e.text for e in etree.fromstring(body).iter("ArticleTitle")]
    assert len(titles) == 10 and b"ablation" in body and b"(api key)" not in body
    assert titles == [e.text for e in etree.fromstring(client.efetch_ids(pmids_in(body))).iter("ArticleTitle")]


def test_the_api_key_is_never_logged_nor_put_in_an_error(emu, caplog):
    caplog.set_level(logging.DEBUG, logger="cryokb")
    client = fast_client(emu, api_key=SECRET, max_tries=2)
    emu.inject("esearch", Fault.http(503), times=None)
    with pytest.raises(EutilsError) as failure:
        client.esearch("cryoablation")
    assert "try 1 of 2 failed" in caplog.text
    assert SECRET not in caplog.text and SECRET not in str(failure.value) and SECRET not in repr(client)


@pytest.mark.parametrize("key", [SECRET, "abc+def/ghi=="], ids=["plain", "needs quoting in a URL"])
def test_an_error_quoting_the_request_url_does_not_carry_the_api_key_out(emu, key):
    """A URL writes a mirror's key with "+", "/" or "=" quoted ("abc%2Bdef..."), which a
    search for the key as it is does not find."""
    class QuotingProxy(urllib.request.OpenerDirector):
        def open(self, request, timeout=None):
            raise OSError(f"proxy refused {request.full_url}")

    client = fast_client(emu, api_key=key, max_tries=2, opener=QuotingProxy())
    with pytest.raises(EutilsError, match=r"proxy refused .*api_key=<api key>") as failure:
        client.esearch("cryoablation")
    assert key not in str(failure.value) and "abc" not in str(failure.value)


@pytest.mark.parametrize("url, why", [
    ("eutils.ncbi.nlm.nih.gov/entrez/eutils/", "is not an http:// or https:// address"),
    ("ftp://mirror.example.org/eutils/", "is not an http:// or https:// address"),
    ("http://", "is not an http:// or https:// address"),
    ("http://mirror example.org/eutils/", "is not an http:// or https:// address"),
    ("http://[::1/eutils/", "cannot be used: Invalid IPv6 URL"),
    ("http://mirror.example.org:port/eutils/", "cannot be used: Port could not be cast to integer value as 'port'"),
    ("http://127.0.0.1:99999/eutils/", "cannot be used: Port out of range 0-65535"),
    ("http://127.0.0.1:8080/eutils/?tool=x", "has a query or fragment after the path"),
    ("http://127.0.0.1:8080/eutils/#top", "has a query or fragment after the path"),
    ("http://<user>@127.0.0.1:8080/eutils/", "holds a user name or password"),
])
def test_a_base_url_that_urllib_cannot_send_to_is_refused_before_any_request(url, why):
    """A bad port was told as not being an http:// address, blaming the scheme."""
    with pytest.raises(EutilsError, match=re.escape(why)):
        EutilsClient(url, email=EMAIL)


@pytest.mark.parametrize("url", ["http://lab:s3cret-pw@proxy.example.org:3128/eutils/",
                                 "https://:s3cret-pw@proxy.example.org/eutils/"])
def test_a_base_url_with_a_password_is_refused_without_repeating_it(url):
    """urllib took "lab:s3cret-pw@proxy..." for the host: a lookup that failed, and a
    message, a runs table and published pages that showed the password."""
    with pytest.raises(EutilsError, match="holds a user name or password") as refused:
        EutilsClient(url, email=EMAIL)
    assert "s3cret-pw" not in str(refused.value) and "proxy.example.org" in str(refused.value)


def test_a_refusal_that_is_retried_says_what_the_server_said_when_the_tries_run_out(emu):
    emu.inject("esearch", Fault.http(429, retry_after="0", body='{"error":"API rate limit exceeded","count":"11"}'),
               times=None)
    with pytest.raises(EutilsError, match=r"failed after 2 tries: HTTP 429: API rate limit exceeded$"):
        fast_client(emu, max_tries=2).esearch("cryoablation")


# -- retries ------------------------------------------------------------------------

@pytest.mark.parametrize(
    "fault, reason",
    [
        (Fault.http(429, retry_after="0"), "HTTP 429"),
        (Fault.http(500), "HTTP 500"),
        (Fault.http(503), "HTTP 503"),
        (Fault.http(520), "HTTP 520"),  # a proxy in front of NCBI
        (Fault.http(408), "HTTP 408"),
        (Fault.truncated(), "truncated efetch XML"),
        (Fault.http(200, body="<html><body><h1>Service temporarily unavailable</h1></body></html>"),
         "a reply that is not PubMed XML (66 bytes): '<html><body><h1>Service temporarily"),
        (Fault.slow(1.5), "timed out"),
    ],
)
def test_a_transient_efetch_failure_is_retried_and_the_reply_is_whole(emu, caplog, fault, reason):
    client = fast_client(emu, timeout=0.5)
    search = client.esearch("cryoablation", retmax=10)
    emu.inject("efetch", fault)
    body = client.efetch(search.webenv, search.query_key, 0, 10)
    assert pmids_in(body) == search.ids[:10]
    assert [r.fault for r in emu.requests_to("efetch")] == [fault.kind, None]
    assert reason in caplog.text


def test_a_transient_esearch_failure_is_retried(emu):
    client = fast_client(emu)
    emu.inject("esearch", Fault.truncated())
    emu.inject("esearch", Fault.http(502))
    assert client.esearch("cryoablation").count == 60
    assert len(emu.requests_to("esearch")) == 3


@pytest.mark.parametrize("zone", ["UTC", "America/Los_Angeles", "Asia/Tokyo"])
@pytest.mark.parametrize("form", ["%a %b %d %H:%M:%S %Y", "%a, %d %b %Y %H:%M:%S -0000"], ids=["asctime", "-0000"])
def test_a_retry_after_date_without_a_zone_is_read_in_gmt_whatever_the_local_zone(monkeypatch, zone, form):
    """Read in local time, 4 s became 8 hours in Los Angeles and nothing in Tokyo."""
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        when = time.strftime(form, time.gmtime(time.time() + 4))
        assert 2.5 <= eutils._retry_after({"Retry-After": when}) <= 4.5
    finally:
        monkeypatch.undo()
        time.tzset()


def test_an_esearch_reply_with_an_element_biopython_does_not_know_is_read():
    """Biopython validates against its copy of the 2006 DTD: one element NCBI added
    failed every search, five tries each, and so every harvest."""
    body = (ESEARCH_HEAD + "<eSearchResult><Count>3</Count><RetMax>3</RetMax><RetStart>0</RetStart>"
            "<QueryKey>1</QueryKey><WebEnv>MCID_0123</WebEnv><IdList><Id>31000001</Id><Id>31000002</Id>"
            "<Id>31000003</Id></IdList><TranslationSet/><QueryTimeMs>12</QueryTimeMs>"
            "<QueryTranslation>cryoablation[All Fields]</QueryTranslation></eSearchResult>").encode()
    result = eutils._parse_esearch(body)
    assert (result.count, result.webenv, result.ids) == (3, "MCID_0123", ["31000001", "31000002", "31000003"])


WARNED = (ESEARCH_HEAD + "<eSearchResult><Count>0</Count><RetMax>0</RetMax><RetStart>0</RetStart><IdList/>"
          "<TranslationSet/><QueryTranslation/><WarningList><PhraseIgnored/>"
          "<QuotedPhraseNotFound>\"{phrase}\"</QuotedPhraseNotFound>"
          "<OutputMessage>No items found.</OutputMessage></WarningList></eSearchResult>")


def test_a_warning_pubmed_gives_with_its_result_is_logged(emu, caplog):
    """A quoted phrase PubMed finds nowhere: the search runs, finds nothing, and the
    reply's WarningList was the only place that said why."""
    emu.inject("esearch", Fault.http(200, body=WARNED.format(phrase="cryoablatoin of chordoma")))
    with caplog.at_level(logging.WARNING, logger="cryokb"):
        assert fast_client(emu).esearch("cryoablatoin of chordoma").count == 0
    assert 'QuotedPhraseNotFound: "cryoablatoin of chordoma"' in caplog.text and "No items found." in caplog.text
    caplog.clear()
    nothing_new = WARNED.format(phrase="").replace("<PhraseIgnored/>", "").replace(
        '<QuotedPhraseNotFound>""</QuotedPhraseNotFound>', "")
    emu.inject("esearch", Fault.http(200, body=nothing_new))
    with caplog.at_level(logging.WARNING, logger="cryokb"):
        assert fast_client(emu).esearch("cryoablation").count == 0
    assert caplog.text == ""  # every empty result says "No items found.": no warning


def test_a_warning_that_echoes_the_api_key_is_logged_without_it(emu, caplog):
    """Replies are parsed as sent (records hold what they hold), so what the client logs
    of one must leave the key out itself."""
    key = "0123456789abcdef0123456789abcdef0123"
    emu.inject("esearch", Fault.http(200, body=WARNED.format(phrase=f"cryoablation api_key={key}")))
    with caplog.at_level(logging.DEBUG, logger="cryokb"):
        fast_client(emu, api_key=key).esearch("cryoablation")
    assert "QuotedPhraseNotFound" in caplog.text and "<api key>" in caplog.text
    assert not [key[i : i + 8] for i in range(len(key) - 7) if key[i : i + 8] in caplog.text]


def test_retry_after_is_honoured(emu):
    client = fast_client(emu)
    emu.inject("esearch", Fault.http(429, retry_after="0.4"))
    client.esearch("cryoablation")
    first, second = emu.requests_to("esearch")
    assert second.time - first.time >= 0.39


def test_backoff_doubles_with_jitter_between_tries(emu):
    waits = []
    client = fast_client(emu, backoff_base=1.0, sleep=waits.append, rng=random.Random(3), max_tries=5)
    emu.inject("esearch", Fault.http(500), times=4)
    client.esearch("cryoablation")
    backoffs = [w for w in waits if w >= 0.4]  # the limiter's own waits are at most 0.01 s
    assert len(backoffs) == 4
    for attempt, delay in enumerate(backoffs, 1):
        ceiling = 2 ** (attempt - 1)
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(backoffs)) == 4


def test_a_fault_that_persists_fails_after_the_bounded_tries(emu):
    client = fast_client(emu, max_tries=3)
    search = client.esearch("cryoablation")
    emu.inject("efetch", Fault.http(500), times=None)
    with pytest.raises(EutilsError,
                       match=r"^efetch batch 7 \(records 3000-3499 of 4210\) failed after 3 tries: HTTP 500: injected$"):
        client.efetch(search.webenv, search.query_key, 0, 10, label="efetch batch 7 (records 3000-3499 of 4210)")
    assert len(emu.requests_to("efetch")) == 3


def test_an_error_reply_from_ncbi_is_reported_in_ncbi_words(emu):
    client = fast_client(emu, max_tries=2)
    with pytest.raises(EutilsError, match=r"esearch failed after 2 tries: NCBI error: Empty term and query_key"):
        client.esearch("")


def test_a_bad_request_is_not_retried(emu):
    client = fast_client(emu)
    emu.inject("esearch", Fault.http(400))
    with pytest.raises(EutilsError, match="esearch failed: HTTP 400"):
        client.esearch("cryoablation")
    assert len(emu.requests) == 1


@pytest.mark.parametrize("body, said", [
    ('{"error":"API key invalid","api-key":"0123456789abcdef","type":"invalid","status":"unknown"}',
     "API key invalid"),
    ("<html><body><h1>Bad Request</h1><p>The request could not be understood.</p></body></html>",
     "Bad Request The request could not be understood."),
    ('<?xml version="1.0"?><eSearchResult><ERROR>Invalid db name specified: pubmd</ERROR></eSearchResult>',
     "Invalid db name specified: pubmd"),
], ids=["NCBI's JSON", "HTML", "an ERROR element"])
def test_a_refused_request_says_what_the_server_said_and_never_the_key(emu, body, said):
    client = fast_client(emu, api_key="0123456789abcdef")
    emu.inject("esearch", Fault.http(400, body=body))
    with pytest.raises(EutilsError) as raised:
        client.esearch("cryoablation")
    host = emu.url.split("/")[2]
    assert str(raised.value) == f"esearch failed: HTTP 400 Bad Request from {host}: {said}"


def test_a_refusal_that_echoes_the_request_never_shows_a_piece_of_the_key(emu):
    """Cut to its length before the key was taken out, a long page showed the key's start."""
    key = "f00dfeed" * 4 + "c0de"
    page = ("<html><body><h1>400 Bad Request</h1><p>The request could not be satisfied. Refused: GET "
            "/entrez/eutils/esearch.fcgi?db=pubmed&term=cryoablation&retmax=9999&usehistory=y&tool=cryokb"
            f"&email=lab%40example.org&api_key={key}</p></body></html>")
    emu.inject("esearch", Fault.http(400, body=page))
    with pytest.raises(EutilsError) as raised:
        fast_client(emu, api_key=key).esearch("cryoablation")
    assert "The request could not be satisfied" in str(raised.value) and key[:4] not in str(raised.value)


@pytest.mark.parametrize("utility, body", [
    ("efetch", '{{"error":"API rate limit exceeded","api-key":"{key}","count":"11","limit":"10"}}'),
    ("efetch", '<?xml version="1.0" ?>\n<eFetchResult><ERROR>Too many requests for api_key {key}, '
               'slow down and try again</ERROR></eFetchResult>'),
    ("esearch", ESEARCH_HEAD + '<eSearchResult><ERROR>Too many requests for api_key {key}, '
                'slow down and try again</ERROR></eSearchResult>'),
], ids=["JSON on efetch", "ERROR on efetch", "ERROR on esearch"])
def test_an_error_reply_on_http_200_that_echoes_the_key_never_shows_a_piece_of_it(emu, caplog, utility, body):
    """Such replies were quoted cut to 80 or 300 characters, and then the cut key no longer
    matched the key taken out of messages: 34 of its 36 characters were printed and stored."""
    caplog.set_level(logging.DEBUG, logger="cryokb")
    key = "0123456789abcdef0123456789abcdef0123"
    client = fast_client(emu, api_key=key, max_tries=2)
    emu.inject(utility, Fault.http(200, body=body.format(key=key)), times=None)
    with pytest.raises(EutilsError) as raised:
        if utility == "esearch":
            client.esearch("cryoablation")
        else:
            client.efetch_ids([emu.records[0].pmid])
    told = str(raised.value) + caplog.text
    assert "(api key)" in told
    assert not [key[i : i + 8] for i in range(len(key) - 7) if key[i : i + 8] in told]


def test_a_refusal_sent_a_byte_at_a_time_is_read_for_a_timeout_at_most():
    import threading

    def drip(listener):
        conn, _ = listener.accept()
        conn.recv(65536)
        body = b'{"error":"' + b"slow " * 60 + b'"}'
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n" % len(body))
        for i in range(len(body)):
            try:
                conn.sendall(body[i : i + 1])
                time.sleep(0.05)
            except OSError:
                break
        conn.close()

    with socket.create_server(("127.0.0.1", 0)) as listener:
        threading.Thread(target=drip, args=(listener,), daemon=True).start()
        client = EutilsClient(f"http://127.0.0.1:{listener.getsockname()[1]}/", email=EMAIL, interval=0.0,
                              timeout=0.5, max_tries=1)
        started = time.monotonic()
        with pytest.raises(EutilsError, match="HTTP 400 Bad Request"):
            client.esearch("cryoablation")
    assert time.monotonic() - started < 3  # all of it would take 15 s


def test_a_refused_connection_is_retried_then_reported():
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = EutilsClient(f"http://127.0.0.1:{port}/eutils/", email=EMAIL, interval=0.0, backoff_base=0.01,
                          max_tries=2)
    with pytest.raises(EutilsError, match=f"esearch failed after 2 tries: connection error with 127.0.0.1:{port}: "):
        client.esearch("cryoablation")


# -- the emulator behaves as PubMed does at the 10,000 cap ---------------------------

def test_emulator_refuses_to_hand_out_records_past_the_cap(emu):
    with urllib.request.urlopen(f"{emu.url}esearch.fcgi?db=pubmed&term=x&retstart=9999") as reply:
        assert b"'retstart' cannot be larger than 9998" in reply.read()
    client = fast_client(emu, max_tries=2)
    search = client.esearch("cryoablation")
    with pytest.raises(EutilsError, match="NCBI error: Search Backend failed"):
        client.efetch(search.webenv, search.query_key, 9999, 10)


# -- the rate limit -------------------------------------------------------------------

class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_rate_limiter_spaces_request_starts():
    clock = FakeClock()
    limiter = RateLimiter(0.37, clock=clock, sleep=clock.sleep)
    starts = []
    for pause in (0.0, 0.1, 0.5, 0.0):
        clock.now += pause
        limiter.wait()
        starts.append(clock.now)
    gaps = [round(b - a, 6) for a, b in zip(starts, starts[1:])]
    assert gaps == [0.37, 0.5, 0.37]


def test_rate_limiter_spaces_the_next_request_from_when_the_reply_began():
    """A request slow on the way reached the server late and bunched with the next ones:
    the server, not the sender, counts requests per second."""
    clock = FakeClock()
    limiter = RateLimiter(0.37, clock=clock, sleep=clock.sleep)
    limiter.wait()
    sent = clock.now
    clock.now += 0.3  # the request took 0.3 s to reach the server and be answered
    limiter.replied()
    clock.now += 0.2  # its body read
    limiter.wait()
    assert round(clock.now - sent, 6) == 0.67


def test_default_spacing_follows_the_api_key(emu):
    assert EutilsClient(emu.url, email=EMAIL).limiter.interval == INTERVAL_WITHOUT_KEY
    assert EutilsClient(emu.url, email=EMAIL, api_key=SECRET).limiter.interval == INTERVAL_WITH_KEY
    assert 1 / INTERVAL_WITHOUT_KEY <= 3 and 1 / INTERVAL_WITH_KEY <= 10


def test_real_default_spacing_keeps_under_three_requests_a_second_retries_included(emu):
    client = EutilsClient(emu.url, email=EMAIL, backoff_base=0.001)  # default spacing, no key
    emu.inject("esearch", Fault.http(500), times=2)
    for _ in range(8):
        client.esearch("cryoablation")
    times = [r.time for r in emu.requests]
    assert len(times) == 10
    assert (len(times) - 1) / (times[-1] - times[0]) <= 3
    assert all(sum(1 for t in times if start <= t < start + 1.0) <= 3 for start in times)


def test_real_default_spacing_with_a_key_keeps_under_ten_requests_a_second(emu):
    client = EutilsClient(emu.url, email=EMAIL, api_key=SECRET)
    for _ in range(12):
        client.esearch("cryoablation")
    times = [r.time for r in emu.requests]
    assert (len(times) - 1) / (times[-1] - times[0]) <= 10
    assert all(sum(1 for t in times if start <= t < start + 1.0) <= 10 for start in times)


def test_a_missing_email_is_said_once_not_at_every_request(emu, caplog):
    import logging
    import warnings

    with caplog.at_level(logging.WARNING, logger="cryokb"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = fast_client(emu, email=None)
        client.esearch("cryoablation")
        client.esearch("cryotherapy")
    assert [r.getMessage() for r in caplog.records if "email" in r.getMessage()] == [
        "no email address set (--email, NCBI_EMAIL): NCBI asks every E-utilities client for a contact address"]
    assert not [w for w in caught if "Email address is not specified" in str(w.message)]


def test_a_term_pubmed_cannot_find_fails_the_search_at_once_rather_than_broaden_it(emu):
    """PubMed searches without a term it cannot find and says so only in an ErrorList: the
    count is then that of a broader search, and a harvest recorded "ok" on it would move on."""
    emu.inject("esearch", Fault.phrase_not_found("cryoablatoin"), times=None)
    client = fast_client(emu)
    with pytest.raises(EutilsError, match=r"PubMed could not use part of the query \(terms not found: "
                                          r"cryoablatoin\) and would search without it; correct the query"):
        client.esearch("cryoablatoin AND bone")
    assert len(emu.requests_to("esearch")) == 1  # another try would only repeat it


def test_a_reply_that_trickles_in_is_a_failed_try_not_a_hang(emu):
    """The socket timeout bounds each read; a reply sent a byte at a time never trips it."""
    import time

    emu.inject("esearch", Fault.drip(0.05), times=1)
    client = fast_client(emu, timeout=0.2, max_tries=2)
    started = time.monotonic()
    result = client.esearch("cryoablation")  # the second try is served whole
    assert result.count == 60
    assert [r.fault for r in emu.requests_to("esearch")] == ["drip", None]
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("utility", ["esearch", "efetch"])
def test_headers_that_trickle_in_are_a_failed_try_not_a_hang(emu, caplog, utility):
    """http.client reads headers a line at a time, each read within the socket timeout:
    a header sent a byte at a time held a run for hours."""
    emu.inject(utility, Fault.stall(0.05), times=1)
    client = fast_client(emu, timeout=0.2, max_tries=2)
    if utility == "esearch":
        assert client.esearch("cryoablation").count == 60  # the second try is served whole
    else:
        assert len(pmids_in(client.efetch_ids(["90000001", "90000002"]))) == 2
    assert [r.fault for r in emu.requests_to(utility)] == ["stall", None]
    assert "reply still arriving after 1 s" in caplog.text


def test_a_watchdog_late_for_its_exchange_does_not_cut_the_next():
    from ingest.eutils import _Watch

    watch = _Watch()
    first = watch.begin()
    watch.end()
    watch.begin()
    watch.cut(first)  # its timer fired as the first exchange ended, and ran once the second began
    assert not watch.was_cut


def test_a_short_reply_that_carries_an_ncbi_error_says_it(emu, caplog):
    """Well-formed, with NCBI's <ERROR> where records should be: the retry said only that
    records were missing."""
    emu.inject("efetch", Fault.http(200, body='<?xml version="1.0" ?>\n<PubmedArticleSet><ERROR>Backend '
                                               'timed out; partial results only</ERROR></PubmedArticleSet>\n'))
    body = fast_client(emu, max_tries=2).efetch_ids(["90000001", "90000002"])
    assert len(pmids_in(body)) == 2
    assert ("efetch reply holds 0 of the 2 records asked for; NCBI error: Backend timed out; partial results "
            "only") in caplog.text


def test_a_reply_over_the_size_cap_is_a_failed_try(emu, monkeypatch):
    import ingest.eutils

    monkeypatch.setattr(ingest.eutils, "MAX_REPLY_BYTES", 1000)
    client = fast_client(emu, max_tries=2)
    with pytest.raises(EutilsError, match="failed after 2 tries: reply larger than 1,000 bytes"):
        client.efetch(client.esearch("cryoablation").webenv, "1", 0, 20)


@contextmanager
def moved(emu, status: int = 301, location: str | None = None):
    """A server in front of the emulator answering every GET and POST with ``status`` to the
    emulator's address (an http:// base URL sent on to https://, a moved mirror), or to
    ``location`` when given ("itself": its own address, a loop); yields its base URL and
    the times requests reached it."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    arrivals = []

    class Moved(BaseHTTPRequestHandler):
        def _move(self):
            arrivals.append(time.monotonic())
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(status)
            own = f"http://127.0.0.1:{self.server.server_port}{self.path}"
            to = own if location == "itself" else location or emu.url.rstrip("/") + self.path.removeprefix("/old")
            self.send_header("Location", to)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = _move

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Moved)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/old/", arrivals
    finally:
        server.shutdown()


def test_every_try_through_a_redirect_is_a_real_try(emu):
    """urllib keeps the URLs a request was redirected through on the request: reused for
    the next try, its fifth visit looked like a redirect loop and failed unsent."""
    emu.inject("esearch", Fault.http(503), times=4)
    with moved(emu) as (url, _):
        client = fast_client(emu, max_tries=5)
        client.base_url = url
        assert client.esearch("cryoablation").count == 60
    assert len(emu.requests_to("esearch")) == 5


def test_a_redirect_and_the_request_it_sends_are_spaced_as_two_requests(emu):
    """NCBI counts the request a redirect sends (an http:// base URL sent to https://) as
    much as the first, so the spacing holds between every request that reaches a server."""
    with moved(emu) as (url, arrivals):
        client = fast_client(emu, interval=0.2)
        client.base_url = url
        for _ in range(3):
            client.esearch("cryoablation")
    times = sorted(arrivals + [r.time for r in emu.requests_to("esearch")])
    assert len(times) == 6
    assert min(later - earlier for earlier, later in zip(times, times[1:])) >= 0.17  # arrivals: server jitter


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_an_efetch_by_id_is_posted_again_where_it_is_redirected(emu, status):
    """urllib would send a POST redirected by 301/302 on as a GET without its ids, and
    refuse 307/308: the ids must reach the new address."""
    ids = [r.pmid for r in emu.records[:12]]
    with moved(emu, status) as (url, arrivals):
        client = fast_client(emu)
        client.base_url = url
        assert sorted(pmids_in(client.efetch_ids(ids))) == sorted(ids)
    (request,) = emu.requests_to("efetch")
    assert request.method == "POST" and request.params["id"].split(",") == ids and len(arrivals) == 1


def test_a_redirect_to_an_address_urllib_cannot_parse_is_a_failed_try_named_in_one_line(emu):
    """It raised urllib's ValueError through the harvest: a traceback, and no retry."""
    with moved(emu, 302, location="http://[::1/entrez/eutils/esearch.fcgi") as (url, arrivals):
        client = fast_client(emu, max_tries=2)
        client.base_url = url
        with pytest.raises(EutilsError, match=r"^esearch failed after 2 tries: a redirect from 127\.0\.0\.1:\d+ "
                                              r"to an address that cannot be used: Invalid IPv6 URL$"):
            client.esearch("cryoablation")
    assert len(arrivals) == 2


def test_a_redirect_loop_is_told_in_one_line(emu):
    with moved(emu, 301, location="itself") as (url, _):
        client = fast_client(emu, max_tries=2)
        client.base_url = url
        with pytest.raises(EutilsError) as raised:
            client.esearch("cryoablation")
    assert "infinite loop" in str(raised.value) and "\n" not in str(raised.value)


def test_a_reply_gzipped_by_a_proxy_is_read(emu):
    emu.inject("esearch", Fault.gzipped(), times=1)
    emu.inject("efetch", Fault.gzipped(), times=1)
    client = fast_client(emu, max_tries=1)
    search = client.esearch("cryoablation", retmax=5)
    assert search.count == 60 and len(search.ids) == 5
    assert client.efetch(search.webenv, search.query_key, 0, 5, expected=5).count(b"<PubmedArticle>") == 5
