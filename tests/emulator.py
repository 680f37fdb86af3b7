"""A loopback E-utilities emulator: a real HTTP server on 127.0.0.1 for the harvester's tests.

It serves ``esearch.fcgi`` and ``efetch.fcgi`` over GET and POST in NCBI's own reply
formats (eSearchResult and PubmedArticleSet, with their DOCTYPE lines), keeps history
entries (WebEnv + query_key), filters on entrez (EDAT) and modification (MDAT) dates,
and caps what a search can hand out at the first 9,999 records as PubMed does
("'retstart' cannot be larger than 9998"). Faults (429 with Retry-After, 5xx, a
truncated body, a slow reply) are scripted per request, and every request is logged
with its arrival time so tests can check counts, spacing and identity parameters.

Every record it serves is synthetic: titles and abstracts are assembled from the
invented phrases below, with made-up numbers, authors and journals (PMIDs 90000001 up).
The query term is not interpreted, but for an entry- or modification-date range written
into it (``... AND ("2001/01/01"[EDAT] : "2010/12/31"[EDAT])``, likewise [MDAT]): every
record in the store matches any search.

    with Emulator(synthetic_records(120)) as emu:
        client = EutilsClient(emu.url, email="lab@example.org")
"""

from __future__ import annotations

import dataclasses
import gzip
import datetime as dt
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

# The cap PubMed puts on what one search result can hand out (retstart <= 9998).
MAX_RETSTART = 9998
HANDOUT_CAP = MAX_RETSTART + 1
STRAY_PMID = "77000001"  # a record no search of the emulator finds
# An entry- and a modification-date range in a query term, as PubMed's search syntax writes them.
TERM_EDAT_RANGE = re.compile(r'"(\d{4}(?:/\d{2}){0,2})"\[EDAT\]\s*:\s*"(\d{4}(?:/\d{2}){0,2})"\[EDAT\]', re.I)
TERM_MDAT_RANGE = re.compile(r'"(\d{4}(?:/\d{2}){0,2})"\[MDAT\]\s*:\s*"(\d{4}(?:/\d{2}){0,2})"\[MDAT\]', re.I)

ESEARCH_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" ?>\n'
    '<!DOCTYPE eSearchResult PUBLIC "-//NLM//DTD esearch 20060628//EN" '
    '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd">\n'
)
EFETCH_HEAD = (
    '<?xml version="1.0" ?>\n'
    '<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
    '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n'
)
CAP_ERROR = (
    "Search Backend failed: Exception:\n'retstart' cannot be larger than 9998. For PubMed, "
    "ESearch can only retrieve the first 9,999 records matching the query. To obtain more "
    "than 9,999 PubMed records, split the query into several searches."
)

# -- synthetic records ------------------------------------------------------

LESIONS = [
    ("osteoid osteoma", "Osteoma, Osteoid"), ("bone metastases", "Bone Neoplasms"),
    ("extra-abdominal desmoid tumours", "Fibromatosis, Aggressive"),
    ("soft-tissue sarcoma recurrences", "Sarcoma"), ("vertebral haemangiomas", "Hemangioma"),
    ("low-flow venous malformations", "Vascular Malformations"),
    ("aneurysmal bone cysts", "Bone Cysts, Aneurysmal"), ("sacral chordoma", "Chordoma"),
    ("giant cell tumour of bone", "Giant Cell Tumor of Bone"), ("spinal metastases", "Spinal Neoplasms"),
]
SITES = ["femur", "tibia", "pelvis", "sacrum", "thoracic spine", "humerus", "chest wall",
         "scapula", "calcaneus", "abdominal wall"]
GUIDANCE = ["CT-guided", "MRI-guided", "ultrasound-guided", "cone-beam CT-guided", "fluoroscopy-assisted"]
DESIGNS = ["a single-centre retrospective series", "a prospective multicentre cohort",
           "a two-centre experience", "a registry analysis", "an initial case series"]
AIMS = ["To report the safety and efficacy of {g} percutaneous cryoablation of {l}.",
        "To assess local control after {g} cryoablation of {l} of the {s}.",
        "To describe pain relief and complications of {g} cryoablation for {l}."]
METHODS = ["We reviewed {n} consecutive patients with {m} lesions treated between {y0} and {y1}.",
           "{n} patients ({m} lesions) were treated with two freeze-thaw cycles under general anaesthesia.",
           "Between {y0} and {y1}, {n} patients underwent {g} cryoablation using {p} cryoprobes on average."]
RESULTS = ["Technical success was {ts}%. Mean pain score fell from {a} to {b} at {w} weeks.",
           "Local control was achieved in {c} of {m} lesions at a median of {w} months.",
           "There were {k} minor complications and no major complication; {c} of {m} lesions showed no residual enhancement."]
CONCLUSIONS = ["{G} cryoablation appears safe and effective for {l}.",
               "Cryoablation offers durable control of {l} with few complications.",
               "These results support cryoablation as an option for {l} unsuitable for surgery."]
SURNAMES = ["Varnholt", "Okonkwo", "Lindqvist", "Marchetti", "Duvall", "Sato", "Reinholt", "Abranches",
            "Kowalczyk", "Haddad", "Brennagh", "Ilves"]
FORENAMES = ["Anneke", "Tomas", "Priya", "Jonah", "Mireille", "Kenji", "Solveig", "Rafael", "Dana"]
JOURNALS = [("Journal of Synthetic Interventional Oncology", "J Synth Interv Oncol", "9990-0011", "9900011"),
            ("Musculoskeletal Ablation Reports", "Musculoskelet Ablat Rep", "9990-0022", "9900022"),
            ("Cryotherapy and Image Guidance", "Cryother Image Guid", "9990-0033", "9900033")]
NLM_CATEGORY = {"PURPOSE": "OBJECTIVE", "METHODS": "METHODS", "RESULTS": "RESULTS", "CONCLUSION": "CONCLUSIONS"}
ENTREZ_STATUS, PUBMED_STATUS = ' PubStatus="entrez"', ' PubStatus="pubmed"'
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


@dataclass
class SyntheticRecord:
    """One invented PubMed record: what the emulator filters on and what it renders."""

    pmid: str
    entrez_date: dt.date
    modified_date: dt.date
    title: str
    sections: list[tuple[str, str]]
    authors: list[tuple[str, str]]
    journal: int
    mesh: list[str] = field(default_factory=list)
    broken: bool = False  # served with a non-numeric PMID, so that a parser must report it
    unnumbered: bool = False  # served with no PMID at all: every such record is "record has no PMID"


def synthetic_records(n: int, *, first_pmid: int = 90000001, start: dt.date = dt.date(2001, 1, 1),
                      end: dt.date = dt.date(2024, 12, 31), seed: int = 7) -> list[SyntheticRecord]:
    """``n`` records with entrez dates spread evenly over [start, end], modified later."""
    span, rng = (end - start).days, random.Random(seed)
    return [_make_record(first_pmid + i, start + dt.timedelta(days=(span * i) // max(n - 1, 1)), end, rng)
            for i in range(n)]


def revised(record: SyntheticRecord, on: dt.date, title: str) -> SyntheticRecord:
    """The same PMID, revised on ``on`` with a new title (as PubMed corrections are)."""
    return dataclasses.replace(record, modified_date=on, title=title)


def _make_record(pmid: int, entered: dt.date, last: dt.date, rng: random.Random) -> SyntheticRecord:
    lesion, mesh = rng.choice(LESIONS)
    site, guide = rng.choice(SITES), rng.choice(GUIDANCE)
    n = rng.randint(6, 140)
    words = dict(l=lesion, s=site, g=guide, G=guide[0].upper() + guide[1:], n=n, m=n + rng.randint(0, 20),
                 y0=entered.year - rng.randint(3, 9), y1=entered.year - 1, p=rng.randint(1, 5),
                 ts=rng.randint(90, 100), a=round(rng.uniform(6, 9), 1), b=round(rng.uniform(0, 3), 1),
                 w=rng.choice([4, 6, 12, 24]), c=n - rng.randint(0, 5), k=rng.randint(0, 6))
    title = f"{guide[0].upper() + guide[1:]} cryoablation of {lesion} of the {site}: {rng.choice(DESIGNS)}"
    sections = [(label, rng.choice(pool).format(**words)) for label, pool in
                (("PURPOSE", AIMS), ("METHODS", METHODS), ("RESULTS", RESULTS), ("CONCLUSION", CONCLUSIONS))]
    authors = [(rng.choice(SURNAMES), rng.choice(FORENAMES)) for _ in range(rng.randint(1, 5))]
    modified = min(last, entered + dt.timedelta(days=rng.randint(0, 400)))
    return SyntheticRecord(str(pmid), entered, modified, title, sections, authors,
                           rng.randrange(len(JOURNALS)), ["Cryosurgery", mesh, "Humans"])


def _date_xml(tag: str, day: dt.date, attrs: str = "") -> str:
    return f"<{tag}{attrs}><Year>{day.year}</Year><Month>{day.month:02d}</Month><Day>{day.day:02d}</Day></{tag}>"


def render_article(rec: SyntheticRecord) -> str:
    """The record as a PubmedArticle element, laid out as efetch returns it."""
    title, abbrev, issn, nlm_id = JOURNALS[rec.journal]
    year = rec.entrez_date.year
    abstract = "".join(f'<AbstractText Label="{label}" NlmCategory="{NLM_CATEGORY.get(label, "UNASSIGNED")}">'
                       f"{escape(text)}</AbstractText>" for label, text in rec.sections)
    authors = "".join(f'<Author ValidYN="Y"><LastName>{last}</LastName><ForeName>{fore}</ForeName>'
                      f"<Initials>{fore[0]}</Initials></Author>" for last, fore in rec.authors)
    mesh = "".join(f'<MeshHeading><DescriptorName MajorTopicYN="N">{escape(m)}</DescriptorName></MeshHeading>'
                   for m in rec.mesh)
    doi = f"10.99999/synth.{rec.pmid}"
    return (
        f'<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM">'
        f'{"" if rec.unnumbered else f"""<PMID Version="1">{"PMID-" if rec.broken else ""}{rec.pmid}</PMID>"""}'
        f"{_date_xml('DateRevised', rec.modified_date)}"
        f'<Article PubModel="Print-Electronic"><Journal><ISSN IssnType="Electronic">{issn}</ISSN>'
        f'<JournalIssue CitedMedium="Internet"><Volume>{year - 1990}</Volume><Issue>{rec.entrez_date.month}</Issue>'
        f"<PubDate><Year>{year}</Year><Month>{MONTHS[rec.entrez_date.month - 1]}</Month></PubDate></JournalIssue>"
        f"<Title>{title}</Title><ISOAbbreviation>{abbrev}</ISOAbbreviation></Journal>"
        f"<ArticleTitle>{escape(rec.title)}.</ArticleTitle>"
        f"<Pagination><MedlinePgn>{int(rec.pmid) % 900 + 1}-{int(rec.pmid) % 900 + 9}</MedlinePgn></Pagination>"
        f'<ELocationID EIdType="doi" ValidYN="Y">{doi}</ELocationID>'
        f'<Abstract>{abstract}</Abstract><AuthorList CompleteYN="Y">{authors}</AuthorList>'
        f"<Language>eng</Language><PublicationTypeList>"
        f'<PublicationType UI="D016428">Journal Article</PublicationType></PublicationTypeList></Article>'
        f"<MedlineJournalInfo><Country>United States</Country><MedlineTA>{abbrev}</MedlineTA>"
        f"<NlmUniqueID>{nlm_id}</NlmUniqueID><ISSNLinking>{issn}</ISSNLinking></MedlineJournalInfo>"
        f"<MeshHeadingList>{mesh}</MeshHeadingList></MedlineCitation>"
        f"<PubmedData><History>{_date_xml('PubMedPubDate', rec.entrez_date, ENTREZ_STATUS)}"
        f"{_date_xml('PubMedPubDate', rec.entrez_date, PUBMED_STATUS)}</History>"
        f"<PublicationStatus>ppublish</PublicationStatus><ArticleIdList>"
        f'<ArticleId IdType="pubmed">{rec.pmid}</ArticleId><ArticleId IdType="doi">{doi}</ArticleId>'
        f"</ArticleIdList></PubmedData></PubmedArticle>\n"
    )


# -- faults and the request log ----------------------------------------------

@dataclass
class Fault:
    """What to do instead of (or before) a normal reply."""

    kind: str  # "status", "truncate", "short", "repeated", "slow", "drip", "stall", "phrase", "stale", "stray",
    # "expired", "withdrawal", "gzipped", "miscount", "shortlist", "empty"
    status: int = 500
    retry_after: str | None = None
    delay: float = 0.0
    missing: int = 0
    text: str = ""  # the phrase PubMed cannot find, the PMID withdrawn, an error reply's body

    @classmethod
    def http(cls, status: int, retry_after: str | None = None, body: str = '{"error":"injected"}') -> "Fault":
        return cls("status", status=status, retry_after=retry_after, text=body)

    @classmethod
    def truncated(cls) -> "Fault":
        return cls("truncate")

    @classmethod
    def short(cls, missing: int) -> "Fault":
        """A well-formed efetch reply without its last ``missing`` records."""
        return cls("short", missing=missing)

    @classmethod
    def repeated(cls) -> "Fault":
        """A reply holding as many records as asked for, its first one twice: in place of the second."""
        return cls("repeated")

    @classmethod
    def slow(cls, seconds: float) -> "Fault":
        return cls("slow", delay=seconds)

    @classmethod
    def stall(cls, seconds_per_byte: float) -> "Fault":
        """A status line, then a header a byte at a time, never ending (a stalled proxy)."""
        return cls("stall", delay=seconds_per_byte)

    @classmethod
    def drip(cls, seconds_per_byte: float) -> "Fault":
        """The reply's headers at once, then its body a byte at a time (a stalled link, slowloris)."""
        return cls("drip", delay=seconds_per_byte)

    @classmethod
    def stale(cls) -> "Fault":
        """An efetch reply for retstart 0 whatever was asked (a caching proxy that ignores it)."""
        return cls("stale")

    @classmethod
    def expired(cls) -> "Fault":
        """NCBI's reply to an efetch on a history entry it no longer holds."""
        return cls("expired")

    @classmethod
    def withdrawal(cls, pmid: str) -> "Fault":
        """An efetch reply with a DeleteCitation of ``pmid`` appended (as no real efetch sends)."""
        return cls("withdrawal", text=pmid)

    @classmethod
    def gzipped(cls) -> "Fault":
        """The reply gzipped, with Content-Encoding: gzip, though nobody asked (a proxy)."""
        return cls("gzipped")

    @classmethod
    def stray(cls) -> "Fault":
        """An efetch reply with a record the search never found appended (a mixed-up proxy)."""
        return cls("stray")

    @classmethod
    def miscounted(cls, by: int) -> "Fault":
        """An esearch reply whose Count is ``by`` off its IdList and history entry (NCBI's
        count and list can disagree, as when records are withdrawn in between)."""
        return cls("miscount", missing=by)

    @classmethod
    def short_list(cls, listed: int) -> "Fault":
        """An esearch reply listing only its first ``listed`` ids, its Count and history whole."""
        return cls("shortlist", missing=listed)

    @classmethod
    def empty_result(cls) -> "Fault":
        """NCBI's efetch reply for a slice that holds no record."""
        return cls("empty")

    @classmethod
    def phrase_not_found(cls, phrase: str) -> "Fault":
        """An esearch reply as PubMed sends it for a term it cannot find: the count of the
        query searched without it, and an ErrorList naming it."""
        return cls("phrase", text=phrase)


@dataclass
class _Rule:
    utility: str
    fault: Fault
    remaining: int | None  # None: for ever
    when: Callable[[dict], bool] | None


@dataclass
class LoggedRequest:
    time: float  # time.monotonic() at arrival
    method: str
    path: str
    utility: str
    params: dict[str, str]
    fault: str | None = None


# -- the server ----------------------------------------------------------------

class Emulator:
    """The server and its state; use as a context manager (started on enter, stopped on exit)."""

    def __init__(self, records=()):
        self._lock = threading.Lock()
        self.records = records
        self.requests: list[LoggedRequest] = []
        self._rules: list[_Rule] = []
        self._history: dict[str, list[list[str]]] = {}
        self.unfetchable: set[str] = set()  # found by esearch, never served by efetch (deleted in between)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    @property
    def records(self) -> list[SyntheticRecord]:
        return self._records

    @records.setter
    def records(self, records) -> None:
        with self._lock:
            self._records = list(records)
            self._by_pmid = {r.pmid: r for r in self._records}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/entrez/eutils/"

    def __enter__(self) -> "Emulator":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def inject(self, utility: str, fault: Fault, *, times: int | None = 1,
               when: Callable[[dict], bool] | None = None) -> None:
        """Answer the next ``times`` matching requests (None: all of them) with ``fault``."""
        with self._lock:
            self._rules.append(_Rule(utility, fault, times, when))

    def clear_faults(self) -> None:
        """Forget every injected fault: the service is healthy again."""
        with self._lock:
            self._rules.clear()

    def requests_to(self, utility: str) -> list[LoggedRequest]:
        return [r for r in self.requests if r.utility == utility]

    # -- called by the handler ------------------------------------------------

    def _take_fault(self, utility: str, params: dict) -> Fault | None:
        with self._lock:
            for rule in self._rules:
                if rule.utility == utility and rule.remaining != 0 and (rule.when is None or rule.when(params)):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    return rule.fault
        return None

    def _log(self, entry: LoggedRequest) -> None:
        with self._lock:
            self.requests.append(entry)

    def esearch(self, params: dict) -> str:
        if not params.get("term"):
            return _esearch_error("Empty term and query_key - nothing todo")
        retstart, retmax = int(params.get("retstart", 0)), min(int(params.get("retmax", 20)), 10000)
        if retstart > MAX_RETSTART:
            return _esearch_error(CAP_ERROR)
        with self._lock:
            matched = _matching(self._records, params)
            webenv = params.get("WebEnv") if params.get("WebEnv") in self._history else None
            webenv = webenv or f"MCID_{uuid.uuid4().hex[:24]}"
            entries = self._history.setdefault(webenv, [])
            entries.append(matched)
            key = len(entries)
        ids = matched[retstart : min(retstart + retmax, HANDOUT_CAP)]
        id_list = "".join(f"<Id>{pmid}</Id>\n" for pmid in ids)
        return (f"{ESEARCH_HEAD}<eSearchResult><Count>{len(matched)}</Count><RetMax>{len(ids)}</RetMax>"
                f"<RetStart>{retstart}</RetStart><QueryKey>{key}</QueryKey><WebEnv>{webenv}</WebEnv>"
                f"<IdList>\n{id_list}</IdList><TranslationSet/>"
                f"<QueryTranslation>{escape(params['term'])}</QueryTranslation></eSearchResult>\n")

    def efetch(self, params: dict, missing: int = 0, repeated: bool = False) -> str:
        if "id" in params:
            pmids = [p.strip() for p in params["id"].split(",") if p.strip()]
        else:
            entries = self._history.get(params.get("WebEnv", ""), [])
            key = int(params.get("query_key", 0) or 0)
            if not 1 <= key <= len(entries):
                return f'<?xml version="1.0" ?>\n<eFetchResult><ERROR>Unable to obtain query #{key}</ERROR></eFetchResult>\n'
            retstart, retmax = int(params.get("retstart", 0)), min(int(params.get("retmax", 20)), 10000)
            if retstart > MAX_RETSTART:
                return f'<?xml version="1.0" ?>\n<eFetchResult><ERROR>{escape(CAP_ERROR)}</ERROR></eFetchResult>\n'
            pmids = entries[key - 1][retstart : min(retstart + retmax, HANDOUT_CAP)]
        with self._lock:
            found = [self._by_pmid[p] for p in pmids if p in self._by_pmid and p not in self.unfetchable]
        found = found[: len(found) - missing]
        if repeated and len(found) > 1:
            found[1] = found[0]
        body = "".join(render_article(r) for r in found)
        return f"{EFETCH_HEAD}<PubmedArticleSet>\n{body}</PubmedArticleSet>\n"


def _esearch_error(message: str) -> str:
    return f"{ESEARCH_HEAD}<eSearchResult><ERROR>{escape(message)}</ERROR></eSearchResult>\n"


def _parse_day(text: str, upper: bool) -> dt.date:
    """YYYY, YYYY/MM or YYYY/MM/DD; an upper bound covers the whole year or month."""
    parts = [int(p) for p in text.split("/")]
    if len(parts) == 3:
        return dt.date(*parts)
    if len(parts) == 2:
        first = dt.date(parts[0], parts[1], 1)
        if not upper:
            return first
        return (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
    return dt.date(parts[0], 12, 31) if upper else dt.date(parts[0], 1, 1)


def _matching(records: list[SyntheticRecord], params: dict) -> list[str]:
    """PMIDs of the records within the date bounds, newest PMID first (PubMed's default order)."""
    datetype, low, high = params.get("datetype"), params.get("mindate"), params.get("maxdate")
    if datetype in ("edat", "mdat") and low and high:
        attr = "entrez_date" if datetype == "edat" else "modified_date"
        low_day, high_day = _parse_day(low, False), _parse_day(high, True)
        records = [r for r in records if low_day <= getattr(r, attr) <= high_day]
    for pattern, attr in ((TERM_EDAT_RANGE, "entrez_date"), (TERM_MDAT_RANGE, "modified_date")):
        found = pattern.search(params.get("term", ""))
        if found:
            low_day, high_day = _parse_day(found.group(1), False), _parse_day(found.group(2), True)
            records = [r for r in records if low_day <= getattr(r, attr) <= high_day]
    return sorted((r.pmid for r in records), key=int, reverse=True)


def _make_handler(emulator: Emulator):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self._serve(parse_qs(urlsplit(self.path).query))

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            self._serve(parse_qs(self.rfile.read(length).decode("utf-8")))

        def _serve(self, multi: dict) -> None:
            params = {k: v[0] for k, v in multi.items()}
            utility = urlsplit(self.path).path.rsplit("/", 1)[-1].removesuffix(".fcgi")
            entry = LoggedRequest(time.monotonic(), self.command, urlsplit(self.path).path, utility, params)
            emulator._log(entry)
            if utility not in ("esearch", "efetch"):
                return self._reply(404, b"unknown utility")
            fault = emulator._take_fault(utility, params)
            entry.fault = fault.kind if fault else None
            if fault and fault.kind == "status":
                headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                return self._reply(fault.status, fault.text.encode("utf-8"), headers, "application/json")
            if fault and fault.kind == "slow":
                time.sleep(fault.delay)
            if fault and fault.kind == "stall":
                return self._stall(fault.delay)
            if fault and fault.kind in ("short", "repeated"):
                body = emulator.efetch(params, missing=fault.missing, repeated=fault.kind == "repeated").encode("utf-8")
            elif fault and fault.kind == "expired":
                body = b'<?xml version="1.0" ?>\n<eFetchResult><ERROR>Unable to obtain query #1</ERROR></eFetchResult>\n'
            elif fault and fault.kind == "empty":
                body = b'<?xml version="1.0" ?>\n<eFetchResult><ERROR>Empty result - nothing to do</ERROR></eFetchResult>\n'
            elif fault and fault.kind == "stale":
                body = emulator.efetch({**params, "retstart": "0"}).encode("utf-8")
            elif fault and fault.kind == "withdrawal":
                withdrawn = f'<DeleteCitation><PMID Version="1">{fault.text}</PMID></DeleteCitation>'
                body = emulator.efetch(params).replace("</PubmedArticleSet>", withdrawn + "</PubmedArticleSet>").encode()
            elif fault and fault.kind == "stray":
                stray = render_article(dataclasses.replace(emulator._records[0], pmid=STRAY_PMID))
                body = emulator.efetch(params).replace("</PubmedArticleSet>", stray + "</PubmedArticleSet>").encode()
            else:
                body = getattr(emulator, utility)(params).encode("utf-8")
            if fault and fault.kind == "truncate":
                body = body[: len(body) * 3 // 5]
            if fault and fault.kind == "shortlist":
                ids = re.findall(rb"<Id>\d+</Id>\n?", body)
                body = body.replace(b"".join(ids), b"".join(ids[: fault.missing]))
            if fault and fault.kind == "miscount":
                body = re.sub(rb"<Count>(\d+)</Count>", lambda found: b"<Count>%d</Count>" % (int(found.group(1))
                              + fault.missing), body, count=1)
            if fault and fault.kind == "phrase":
                body = body.replace(b"</eSearchResult>", b"<ErrorList><PhraseNotFound>" + escape(fault.text).encode()
                                    + b"</PhraseNotFound></ErrorList></eSearchResult>")
            if fault and fault.kind == "drip":
                return self._drip(body, fault.delay)
            if fault and fault.kind == "gzipped":
                return self._reply(200, gzip.compress(body), {"Content-Encoding": "gzip"}, "text/xml; charset=UTF-8")
            self._reply(200, body, {}, "text/xml; charset=UTF-8")

        def _drip(self, body: bytes, delay: float) -> None:
            try:
                self.send_response(200)
                self.send_header("Content-Type", "text/xml; charset=UTF-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                for i in range(len(body)):
                    self.wfile.write(body[i : i + 1])
                    self.wfile.flush()
                    time.sleep(delay)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _stall(self, delay: float) -> None:
            try:
                self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Stalled: ")
                while True:
                    self.wfile.write(b"z")
                    self.wfile.flush()
                    time.sleep(delay)
            except OSError:  # the client cut the exchange
                self.close_connection = True

        def _reply(self, status: int, body: bytes, headers: dict | None = None,
                   content_type: str = "text/plain") -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test); nothing to tell it

        def log_message(self, *args) -> None:
            pass

    return Handler
