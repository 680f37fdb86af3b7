"""A small NCBI E-utilities client: esearch with the history server, efetch in batches.

Requests are built by Biopython (``Bio.Entrez._build_request``), so the parameters,
the encoding and the GET/POST choice are the ones Biopython sends to NCBI, but they
go to *our* base URL and through *our* transport. Bio.Entrez hard-codes the NCBI
address in each of its functions and keeps its settings (email, api_key, the rate
limiter) in module globals; its retry loop does not sleep after an HTTP error. This
client keeps every setting on the object, spaces requests with a monotonic clock
(retries included), backs off exponentially with jitter on every transient failure,
and checks that an efetch body is complete XML before handing it on. The code path is
the same whatever the URL: the tests point it at a loopback emulator.

What we rely on in Biopython (pinned by tests/test_eutils.py):
``Bio.Entrez._build_request(cgi, params, post=None)`` returns a ``urllib.request.Request``
and only fills ``tool``, ``email`` and ``api_key`` from its module globals when the
params do not carry those keys (``setdefault``), dropping keys whose value is None.
``Bio.Entrez.read(handle)`` parses an eSearchResult from a binary handle with the DTD
bundled in Biopython (no network).
"""

from __future__ import annotations

import datetime
import email.utils
import functools
import http.client
import io
import json
import logging
import random
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zlib
from dataclasses import dataclass, field
from typing import Callable

from Bio import Entrez
from lxml import etree

from ingest.model import canonical_pmid
from ingest.safexml import parse_bytes

log = logging.getLogger("cryokb.eutils")

if not callable(getattr(Entrez, "_build_request", None)):  # pinned: see the module docstring
    raise ImportError("ingest.eutils needs Bio.Entrez._build_request (Biopython 1.84 to 1.88 are known to have it)")

DEFAULT_BASE_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"

# NCBI: at most 3 requests a second without an API key, 10 with one. Biopython found
# 1/3 s too tight in practice and uses 0.37 s; we keep the same margin for both.
INTERVAL_WITHOUT_KEY = 0.37
INTERVAL_WITH_KEY = 0.11

# HTTP statuses worth another try: a request timeout, throttling, and every server-side
# failure (5xx: a proxy's 520-524 as much as NCBI's own 500-504).
RETRY_STATUSES = frozenset({408, 429, *range(500, 600)})

# A reply may take this many times ``timeout`` in all, headers included: the socket
# timeout bounds each read, not a reply that trickles in a byte at a time (a stalled
# proxy), which would hang a run.
REPLY_DEADLINE_FACTOR = 5
# Bytes one reply may hold: 500 records are about 5 MB; a reply of hundreds of megabytes
# is a broken server or proxy, read whole into memory on every try.
MAX_REPLY_BYTES = 256 << 20
READ_CHUNK = 1 << 16

EFETCH_END_TAG = b"</PubmedArticleSet>"
# NCBI's words for a history entry (WebEnv) it no longer holds (they expire after hours):
# another try would only repeat them, so the harvest fetches the rest by id at once.
HISTORY_GONE = "Unable to obtain query"
# NCBI's efetch error for a slice that holds no record (a retstart past the result's end).
EMPTY_RESULT = "Empty result - nothing to do"
EMPTY_SET = b'<?xml version="1.0" ?>\n<PubmedArticleSet></PubmedArticleSet>\n'

EFETCH_RECORD_TAGS = frozenset({"PubmedArticle", "PubmedBookArticle"})


class EutilsError(Exception):
    """An E-utilities request that failed for good (after its retries, or at once for a 4xx)."""


class _Permanent(Exception):
    """A failure that another try would only repeat (a 4xx other than 429)."""


class _Transient(Exception):
    """One failed try that may succeed if repeated; ``retry_after`` in seconds when the server said."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class SearchResult:
    """An esearch reply: the full count, its history entry, and the first ids served."""

    count: int
    webenv: str | None
    query_key: str | None
    ids: list[str] = field(default_factory=list)
    warning: str | None = None  # what PubMed warned of the query (a phrase not found), said by the client


class RateLimiter:
    """Minimum spacing between request starts, on a monotonic clock.

    Every try of every request goes through ``wait()``, so retries count against the
    limit too. ``clock`` and ``sleep`` are injectable for tests. ``replied()`` moves
    the mark to when the previous request's reply began: requests go one at a time, so
    that request had reached the server by then, and spacing from it keeps NCBI's count
    within the limit however long a request spent on the way (spaced only by their
    starts, a delayed request reached the server bunched with the next ones).
    """

    def __init__(self, interval: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.interval = interval
        self._clock = clock
        self._sleep = sleep
        self._last: float | None = None

    def wait(self) -> None:
        """Block until ``interval`` seconds have passed since the previous request began."""
        if self._last is not None:
            delay = self._last + self.interval - self._clock()
            if delay > 0:
                self._sleep(delay)
        self._last = self._clock()

    def replied(self) -> None:
        """The reply to the request in flight has begun to arrive."""
        self._last = self._clock()


class EutilsClient:
    """One connection's worth of E-utilities settings, limits and retries.

    ``interval`` overrides the spacing derived from the API key (tests make it small);
    ``backoff_base`` is the first retry delay in seconds, doubled on each later try up to
    ``backoff_cap``, each delay drawn uniformly from its upper half (jitter).
    """

    def __init__(self, base_url: str = DEFAULT_BASE_URL, email: str | None = None,
                 api_key: str | None = None, tool: str = "cryokb", *, db: str = "pubmed",
                 timeout: float = 60.0, max_tries: int = 5, backoff_base: float = 1.0,
                 backoff_cap: float = 60.0, retry_after_cap: float = 600.0,
                 interval: float | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None,
                 opener: urllib.request.OpenerDirector | None = None):
        if not email:
            log.warning("no email address set (--email, NCBI_EMAIL): NCBI asks every E-utilities client for a contact address")
        elif wrong := email_problem(email):  # said before the first request, which would send it
            raise EutilsError(f"contact address {wrong}")
        if max_tries < 1:
            raise ValueError(f"EutilsClient: max_tries must be at least 1, not {max_tries}")
        problem = base_url_problem(base_url)
        if problem:  # said before urllib's error, which would quote the whole URL, API key included
            raise EutilsError(f"E-utilities URL {problem}")
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.email = email or None
        self.api_key = api_key or None
        self.tool = tool
        self.db = db
        self.timeout = timeout
        self.max_tries = max_tries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.retry_after_cap = retry_after_cap
        if interval is None:
            interval = INTERVAL_WITH_KEY if self.api_key else INTERVAL_WITHOUT_KEY
        self.limiter = RateLimiter(interval, clock=clock, sleep=sleep)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._watch = _Watch()
        self._opener = opener or urllib.request.build_opener(_PacedRedirects(self.limiter), _WatchedHTTP(self._watch),
                                                             _WatchedHTTPS(self._watch))

    def __repr__(self) -> str:
        key = "set" if self.api_key else "none"
        return f"EutilsClient(base_url={self.base_url!r}, email={self.email!r}, api_key={key})"

    # -- the three requests -------------------------------------------------

    def esearch(self, term: str, *, datetype: str | None = None, mindate: str | None = None,
                maxdate: str | None = None, retmax: int = 0, label: str | None = None) -> SearchResult:
        """Search PubMed and keep the result on the history server (usehistory=y).

        ``mindate``/``maxdate`` are YYYY/MM/DD, inclusive, on ``datetype`` (edat, mdat,
        pdat). ``retmax`` ids are returned too (0 by default: we fetch through history).
        """
        params = {"db": self.db, "term": term, "usehistory": "y", "retmax": retmax}
        if datetype:
            params.update(datetype=datetype, mindate=mindate, maxdate=maxdate)
        label = label or _describe_search(datetype, mindate, maxdate)
        result = self._request("esearch.fcgi", params, label, _parse_esearch)
        if result.warning:  # PubMed's words, which may echo the request: said without the key
            log.warning("PubMed warned about the query: %s", self._redact(result.warning))
        return result

    def efetch(self, webenv: str, query_key: str, retstart: int, retmax: int, *,
               label: str | None = None, expected: int | None = None, brought: set[str] | None = None) -> bytes:
        """Fetch records ``retstart`` to ``retstart + retmax - 1`` of a history entry as PubMed XML.

        ``expected``: how many records the reply must hold (a caller that knows the slice
        lies inside the result). NCBI now and then sends a well-formed reply with records
        missing; fewer than expected is retried like a truncated reply, since once
        accepted the missing records would never be asked for again.
        ``brought``: the PMIDs earlier slices brought, for a caller that cannot check the
        slice against ids (they were not listed): a reply holding only those is the reply
        to another slice (a proxy that ignored ``retstart``), retried likewise.
        """
        params = {"db": self.db, "WebEnv": webenv, "query_key": query_key, "retstart": retstart,
                  "retmax": retmax, "rettype": "xml", "retmode": "xml"}
        label = label or f"efetch records {retstart}-{retstart + retmax - 1}"
        check = functools.partial(_check_pubmed_xml, expected=expected, brought=brought)
        return self._request("efetch.fcgi", params, label, check)

    def efetch_ids(self, ids, *, label: str | None = None) -> bytes:
        """Fetch the given PMIDs as PubMed XML, by POST (NCBI's advice for long id lists).

        A reply with fewer records than ids is tried again like a truncated one, and the
        last try takes what comes: a record deleted since it was found never comes, and
        the caller reports the ones still missing.
        """
        ids = [str(i) for i in ids]
        params = {"db": self.db, "id": ids, "rettype": "xml", "retmode": "xml"}
        label = label or f"efetch of {len(ids)} ids"
        wanted = {canonical_pmid(i) for i in ids} - {None}
        return self._request("efetch.fcgi", params, label,
                             functools.partial(_check_pubmed_xml, expected=len(wanted), wanted=wanted), post=True,
                             last_check=_check_pubmed_xml)

    # -- one request, with its tries ----------------------------------------

    def _request(self, utility: str, params: dict, label: str, check: Callable[[bytes], object],
                 post: bool | None = None, last_check: Callable[[bytes], object] | None = None):
        """Send one request until ``check`` (on the last try ``last_check``, if given)
        accepts the body, or raise EutilsError."""
        last_error = ""
        for attempt in range(1, self.max_tries + 1):
            self.limiter.wait()
            request = self._build(utility, params, post)  # each try its own: urllib keeps redirect state on it
            accept = last_check if last_check is not None and attempt == self.max_tries else check
            try:
                return self._accepted(accept, self._send(request))
            except _Permanent as problem:
                raise EutilsError(f"{label} failed: {self._redact(str(problem))}") from None
            except _Transient as problem:
                last_error = self._redact(str(problem))
                if attempt == self.max_tries:
                    break
                delay = self._backoff(attempt, problem.retry_after)
                log.warning("%s: try %d of %d failed (%s); retrying in %.2f s",
                            label, attempt, self.max_tries, last_error, delay)
                self._sleep(delay)
        raise EutilsError(f"{label} failed after {self.max_tries} tries: {last_error}")

    def _redact(self, text: str) -> str:
        """``text`` without the API key, as it is or as a URL writes it ("abc%2Bdef"):
        error messages are printed and stored in harvest_runs, and some quote the URL."""
        if not self.api_key:
            return text
        for written in dict.fromkeys((self.api_key, urllib.parse.quote_plus(self.api_key),
                                      urllib.parse.quote(self.api_key, safe=""))):
            text = text.replace(written, "<api key>")
        return text

    def _build(self, utility: str, params: dict, post: bool | None) -> urllib.request.Request:
        """A Request built by Biopython for our URL, with our identity and never its globals."""
        params = dict(params, tool=self.tool, email=self.email, api_key=self.api_key)
        with warnings.catch_warnings():  # its dozen lines on a missing email, each request: we said it once
            warnings.filterwarnings("ignore", r"\s*Email address is not specified", UserWarning)
            request = Entrez._build_request(self.base_url + utility, params, post=post)
        log.debug("%s %s%s (%s)", request.get_method(), self.base_url, utility,
                  ", ".join(f"{k}={v}" for k, v in params.items() if k not in ("api_key", "id")))
        return request

    def _send(self, request: urllib.request.Request) -> bytes:
        """One HTTP exchange, cut at its deadline however slowly its headers or body come;
        failures become _Transient (worth a retry) or _Permanent."""
        deadline = REPLY_DEADLINE_FACTOR * self.timeout
        watchdog = threading.Timer(deadline, self._watch.cut, args=(self._watch.begin(),))
        watchdog.daemon = True
        watchdog.start()
        try:
            body = self._exchange(request)
        except (_Transient, _Permanent):
            body = None
            if not self._watch.was_cut:
                raise
        finally:
            watchdog.cancel()
            self._watch.end()
        if self._watch.was_cut:  # cut headers may read as a whole reply with no body
            raise _Transient(f"reply still arriving after {deadline:g} s")
        return body

    def _exchange(self, request: urllib.request.Request) -> bytes:
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                self.limiter.replied()
                body = self._read_reply(response)
                encoding = (response.headers.get("Content-Encoding") or "").strip().lower() if response.headers else ""
        except urllib.error.HTTPError as error:
            self.limiter.replied()
            said = self._said(error)  # NCBI's "API rate limit exceeded", for the last try's message
            error.close()
            if error.code in RETRY_STATUSES:
                raise _Transient(f"HTTP {error.code}" + (f": {said}" if said else ""), _retry_after(error.headers)) \
                    from None
            reason = " ".join(str(error.reason).split())  # urllib's redirect loop says it in three lines
            raise _Permanent(f"HTTP {error.code} {reason} from {request.host}" + (f": {said}" if said else "")) \
                from None
        except (TimeoutError, socket.timeout):
            raise _Transient(f"timed out after {self.timeout:g} s") from None
        except urllib.error.URLError as error:
            if isinstance(error.reason, (TimeoutError, socket.timeout)):
                raise _Transient(f"timed out after {self.timeout:g} s") from None
            raise _Transient(f"connection error with {request.host}: {error.reason}") from None
        except (http.client.HTTPException, ConnectionError, OSError) as error:
            raise _Transient(f"connection error with {request.host}: {type(error).__name__}: {error}") from None
        except ValueError as error:  # urllib on a redirect's Location it cannot parse (a broken proxy)
            raise _Transient(f"a redirect from {request.host} to an address that cannot be used: {error}") from None
        return _decoded(body, encoding)

    def _accepted(self, accept: Callable[[bytes], object], body: bytes):
        """``accept(body)`` of the reply as it came: its records are stored as sent, even
        where they hold the API key's letters (a short key of a mirror's, "the"). Where
        ``accept`` refuses it, the refusal is made again from the reply without the key, so
        that the piece of the reply it quotes, cut short, cannot carry a part of it: an
        error reply on HTTP 200 may echo the key ("API rate limit exceeded"), and a cut
        key no longer matches what ``_redact`` looks for."""
        try:
            return accept(body)
        except (_Transient, _Permanent) as problem:
            refused = problem
        redacted = self._redact_body(body)
        if redacted is not body:
            try:
                accept(redacted)
            except (_Transient, _Permanent) as problem:
                refused = problem
        raise refused

    def _redact_body(self, body: bytes) -> bytes:
        """The reply with the API key replaced by a stand-in without angle brackets, so that
        it parses as it would have."""
        if not self.api_key:
            return body
        key = self.api_key.encode("utf-8")
        return body.replace(key, b"(api key)") if key in body else body

    def _said(self, error: urllib.error.HTTPError) -> str:
        """What the server said in refusing a request, redacted, then cut to SAID_CHARS. Its
        body is read for one timeout at most: a refusal sent a byte at a time must not hold
        the run longer than a reply would."""
        deadline = time.monotonic() + self.timeout
        read = getattr(error, "read1", error.read)
        body = b""
        try:
            while len(body) < SAID_BYTES and time.monotonic() < deadline and (chunk := read(SAID_BYTES - len(body))):
                body += chunk
        except (OSError, http.client.HTTPException, AttributeError):
            pass
        said = self._redact(_what_it_said(body.decode("utf-8", "replace")))  # redacted whole, then cut
        return said if len(said) <= SAID_CHARS else said[: SAID_CHARS - 3] + "..."

    def _read_reply(self, response) -> bytes:
        """The body, read against a deadline and a size cap (each a failed try)."""
        deadline = time.monotonic() + REPLY_DEADLINE_FACTOR * self.timeout
        read = getattr(response, "read1", response.read)  # read1: what has arrived, without waiting for more
        chunks, size = [], 0
        while chunk := read(READ_CHUNK):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_REPLY_BYTES:
                raise _Transient(f"reply larger than {MAX_REPLY_BYTES:,} bytes")
            if time.monotonic() > deadline:
                raise _Transient(f"reply still arriving after {REPLY_DEADLINE_FACTOR * self.timeout:g} s "
                                 f"({size:,} bytes so far)")
        return b"".join(chunks)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential delay with jitter (upper half of the range); Retry-After is a floor."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        delay = ceiling / 2 + self._rng.random() * ceiling / 2
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.retry_after_cap))
        return delay


class _PacedRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects followed, each new request spaced by the client's limiter: NCBI counts the
    request a redirect sends as much as the first.

    A POST (efetch by id) is posted again, body and all, where a 301, 302, 307 or 308
    sends it: urllib would send it on as a GET without its ids after a 301 or 302, and
    refuse the other two.
    """

    def __init__(self, limiter: RateLimiter):
        self.limiter = limiter

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if req.data is not None and code in (301, 302, 307, 308):
            kept = {name: value for name, value in req.header_items() if name.lower() not in ("host", "content-length")}
            new = urllib.request.Request(newurl.replace(" ", "%20"), data=req.data, headers=kept, method="POST",
                                         origin_req_host=req.origin_req_host, unverifiable=True)
        else:
            new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            self.limiter.replied()
            self.limiter.wait()
        return new


class _Watch:
    """The sockets of the request in flight, for a watchdog to shut when the exchange
    outlives its deadline: a socket's timeout bounds each read, and http.client reads
    headers a line at a time, so headers sent a byte a second never time out."""

    def __init__(self):
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._exchange = 0  # which exchange is in flight; 0 none
        self._count = 0
        self.was_cut = False

    def begin(self) -> int:
        """Watch a new exchange; its number, for its watchdog to name in ``cut``."""
        with self._lock:
            self._count += 1
            self._sockets, self.was_cut, self._exchange = [], False, self._count
            return self._count

    def end(self) -> None:
        with self._lock:
            self._sockets, self._exchange = [], 0

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.was_cut:
                _shut(sock)

    def cut(self, exchange: int) -> None:
        """Shut the sockets of ``exchange`` if it is still in flight: a watchdog that fired
        as its exchange ended (cancelling a timer does not wait for it) must not cut the next."""
        with self._lock:
            if exchange != self._exchange:
                return
            self.was_cut = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # closed already
        pass


class _Watching:
    """A urllib handler whose connections hand their sockets to a _Watch."""

    def __init__(self, watch: _Watch, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.watch = watch

    def do_open(self, http_class, req, **kwargs):
        watch = self.watch

        class Watched(http_class):
            def connect(self):
                super().connect()
                watch.add(self.sock)

        return super().do_open(Watched, req, **kwargs)


class _WatchedHTTP(_Watching, urllib.request.HTTPHandler):
    pass


class _WatchedHTTPS(_Watching, urllib.request.HTTPSHandler):
    pass


def _decoded(body: bytes, encoding: str) -> bytes:
    """The body as sent, undone: a proxy may gzip a reply nobody asked it to (urllib does not undo it)."""
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip", "deflate"):
        inflater = zlib.decompressobj(47)  # a gzip or zlib header, whichever it has
        try:
            out = inflater.decompress(body, MAX_REPLY_BYTES + 1)
        except zlib.error as error:
            raise _Transient(f"a reply sent as {encoding} that does not decompress ({error})") from None
        if len(out) > MAX_REPLY_BYTES:
            raise _Transient(f"reply larger than {MAX_REPLY_BYTES:,} bytes")
        if not inflater.eof:
            raise _Transient(f"a reply sent as {encoding}, cut short")
        return out
    raise _Permanent(f"a reply in an encoding cryokb cannot read (Content-Encoding: {encoding})")


def base_url_problem(base_url: str) -> str | None:
    """What is wrong with a base URL ("'x' is not an http:// or https:// address ..."),
    None if urllib can send to it: the client, the CLI and the settings each say it as
    their own error, before urllib's (which quotes the whole URL, API key included)."""
    try:
        parts = urllib.parse.urlsplit(base_url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as error:  # "Invalid IPv6 URL", "Port out of range 0-65535"
        return f"{base_url!r} cannot be used: {error}"
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() or not c.isprintable()
                                                                        for c in base_url):
        return f"{base_url!r} is not an http:// or https:// address (for instance {DEFAULT_BASE_URL})"
    if parts.username is not None or parts.password is not None:
        # said without them: urllib took "user:password@host" for the host name, and every
        # message, the runs table and the published pages then showed the password
        shown = urllib.parse.urlunsplit(parts._replace(netloc=f"<user>@{parts.netloc.rpartition('@')[2]}"))
        return (f"{shown!r} holds a user name or password, which cryokb does not send; give a proxy "
                "that needs them in the https_proxy or http_proxy environment variable")
    if parts.query or parts.fragment:
        return (f"{base_url!r} has a query or fragment after the path, which would end up before "
                f"esearch.fcgi; give the E-utilities folder alone (for instance {DEFAULT_BASE_URL})")
    return None


def email_problem(address: str) -> str | None:
    """What is wrong with a contact address ("'nobody' is not an e-mail address ..."), None
    for one of the form name@host.domain: NCBI asks for one it can write to about a
    client's requests, and a placeholder ("nobody", "a@", " ") was sent with every one.
    Plus-addressing and subdomains are ordinary addresses; quoted local parts are not
    taken, no contact address needs them."""
    local, at, domain = address.rpartition("@")
    labels = domain.split(".")
    if (not at or not local or "@" in local or any(c.isspace() or not c.isprintable() for c in address)
            or len(labels) < 2 or not all(label and all(c.isalnum() or c == "-" for c in label)
                                          for label in labels)):
        return f"{address!r} is not an e-mail address: NCBI asks for one it can write to, such as you@example.org"
    return None


def _describe_search(datetype, mindate, maxdate) -> str:
    if datetype:
        return f"esearch {datetype.upper()} {mindate}-{maxdate}"
    return "esearch"


def _retry_after(headers) -> float | None:
    """Seconds from a Retry-After header (a number or an HTTP date), or None."""
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # the asctime form and a "-0000" zone: HTTP dates are in GMT, not local time
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, when.timestamp() - time.time())


# How much of a refusal's body is read for what the server said, and how much of that is told.
SAID_BYTES = 4096
SAID_CHARS = 200
_TAGS = re.compile(r"<[^>]*>")


def _what_it_said(text: str) -> str:
    """What a server said in refusing a request, in a line: NCBI's JSON ``{"error": ...}``
    ("API key invalid"), an ``<ERROR>`` element, or the text without its tags."""
    try:
        said = json.loads(text).get("error", "")
    except (ValueError, AttributeError):
        found = re.search(r"<ERROR>(.*?)</ERROR>", text, re.S | re.I)
        said = found.group(1) if found else _TAGS.sub(" ", text)
    return " ".join(str(said).split())


_KINDS = {"PhraseNotFound": "terms not found", "FieldNotFound": "unknown search fields"}


def _parse_esearch(body: bytes) -> SearchResult:
    """Bio.Entrez.read over the reply; an unreadable or ERROR reply is worth another try."""
    try:  # ignore_errors: an <ERROR> reply comes back as data, for the check below to name
        # validate=False: an element NCBI adds to esearch's output, unknown to Biopython's
        # copy of the 2006 DTD, is passed over instead of failing every search
        data = Entrez.read(io.BytesIO(body), validate=False, ignore_errors=True)
    except Exception as error:  # Biopython raises several parser errors; all mean "bad body"
        raise _Transient(f"unparsable esearch XML ({type(error).__name__}: {error})") from None
    if "ERROR" in data:
        raise _Transient(f"NCBI error: {' '.join(str(data['ERROR']).split())[:300]}")
    not_found = {kind: list(items) for kind, items in (data.get("ErrorList") or {}).items() if items}
    if not_found:  # PubMed searched without them: a broader search than asked, and a count that lies
        said = "; ".join(f"{_KINDS.get(kind, kind)}: {', '.join(map(str, items))}" for kind, items in not_found.items())
        raise _Permanent(f"PubMed could not use part of the query ({said}) and would search without it; "
                         "correct the query")
    # A quoted phrase or a term found nowhere: the search ran, narrower than meant. An
    # OutputMessage alone ("No items found.") comes with every empty result: no warning.
    warned = {kind: list(items) for kind, items in (data.get("WarningList") or {}).items() if items}
    warning = None
    if set(warned) - {"OutputMessage"}:
        warning = "; ".join(f"{kind}: {', '.join(' '.join(str(item).split()) for item in items)}"
                            for kind, items in warned.items())
    try:
        count = int(data["Count"])
    except (KeyError, ValueError):
        raise _Transient("esearch reply without a Count") from None
    return SearchResult(
        count=count,
        webenv=str(data["WebEnv"]) if "WebEnv" in data else None,
        query_key=str(data["QueryKey"]) if "QueryKey" in data else None,
        ids=[str(i) for i in data.get("IdList", [])],
        warning=warning,
    )




def _check_pubmed_xml(body: bytes, expected: int | None = None, wanted: set[str] | None = None,
                      brought: set[str] | None = None) -> bytes:
    """Accept an efetch body only if it is a whole PubmedArticleSet document (holding
    ``expected`` records, when given: as many different PMIDs, of ``wanted`` when given;
    and, where ``brought`` is given, a record outside it if any).

    A body cut short by the network still parses up to the cut with a lenient reader,
    so we demand both the closing tag and a clean parse by lxml. A record twice in a
    reply, in the place of another, counts once: counted twice, it passed for the record
    it displaced, which no try then asked for again.
    """
    if not body.rstrip().endswith(EFETCH_END_TAG):
        said = _ncbi_error(body)
        if HISTORY_GONE in said:
            raise _Permanent(said.removeprefix("; "))
        if EMPTY_RESULT in said and not expected:  # a slice that may hold nothing holds nothing
            return EMPTY_SET
        if b"<PubmedArticleSet" not in body:  # an error page, a proxy's notice
            raise _Transient(f"a reply that is not PubMed XML ({len(body)} bytes){said or _opening(body)}")
        raise _Transient(f"truncated efetch XML ({len(body)} bytes, no closing </PubmedArticleSet>){said}")
    try:
        root = parse_bytes(body, "efetch reply")  # the same hardened parser as files: no entities, no network
    except etree.XMLSyntaxError as error:
        raise _Transient(f"unparsable efetch XML: {error}") from None
    if expected is None and not brought:
        return body
    pmids, unreadable = _pmids_held(root)
    if expected is not None:
        # records whose PMID cannot be read came too, as problems
        held = len(pmids & wanted if wanted is not None else pmids) + unreadable
        if held < expected:
            raise _Transient(f"efetch reply holds {held} of the {expected} records asked for{_ncbi_error(body)}")
    if brought and pmids and pmids <= brought:
        raise _Transient(f"efetch reply holds only records that earlier batches brought ({len(pmids)}): "
                         "the reply to another retstart (a proxy that ignores it?)")
    return body


def _pmids_held(root) -> tuple[set[str], int]:
    """The different PMIDs a reply's records carry, and how many records carry none that can be read."""
    pmids, unreadable = set(), 0
    for child in root:
        if child.tag in EFETCH_RECORD_TAGS:
            pmid = child.findtext("MedlineCitation/PMID" if child.tag == "PubmedArticle" else "BookDocument/PMID")
            pmid = pmid and canonical_pmid(pmid)
            if pmid:
                pmids.add(pmid)
            else:
                unreadable += 1
    return pmids, unreadable


def _opening(body: bytes) -> str:
    """The start of a reply that is not what was asked for, for a log line."""
    text = " ".join(body[:200].decode("utf-8", "replace").split())
    return f": {text[:80]!r}" if text else ""


def _ncbi_error(body: bytes) -> str:
    """The text of an <ERROR> element NCBI sometimes sends in place of records, if any."""
    start = body.find(b"<ERROR>")
    if start < 0:
        return ""
    end = body.find(b"</ERROR>", start)
    text = body[start + 7 : end if end > 0 else start + 307].decode("utf-8", "replace")
    return f"; NCBI error: {' '.join(text.split())[:300]}"
