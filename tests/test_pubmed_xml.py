"""PubMed XML into Article, Deletion and ParseProblem, streamed record by record."""

import io
import logging
import re
from pathlib import Path

import pytest
from lxml import etree

from ingest.model import Article, Deletion, ParseProblem
from ingest.pubmed_xml import XMLFileError, article_from_xml, iter_records, normalise_orcid, squash, text_of
from kb.store import FLAT_FIELDS

XML = Path(__file__).parent / "data" / "xml"
FLAT_PMCID = FLAT_FIELDS.index("pmcid")


def read(name):
    return list(iter_records(XML / name))


def only_article(name):
    (record,) = read(name)
    assert isinstance(record, Article)
    return record


@pytest.fixture(scope="module")
def full():
    return only_article("full_record.xml")


# --------------------------------------------------------------------------- every field


def test_identity_and_status(full):
    assert full.pmid == "39990001"
    assert full.version == 2
    assert full.status == "MEDLINE"
    assert full.source_format == "xml"
    assert full.is_book is False


def test_title_and_labelled_abstract_sections(full):
    assert full.title.startswith("Percutaneous CT-guided cryoablation of painful pelvic")
    assert [(s.label, s.nlm_category) for s in full.abstract_sections] == [
        ("PURPOSE", "OBJECTIVE"),
        ("MATERIALS AND METHODS", "METHODS"),
        ("RESULTS", "RESULTS"),
        ("CONCLUSION", "CONCLUSIONS"),
    ]
    # the escaped "<" is text, and CopyrightInformation is not part of the abstract
    assert "Median pain fell from 7 to 2 (P < .001)." in full.abstract
    assert "Copyright" not in full.abstract
    assert full.text == full.title + "\n\n" + full.abstract


def test_authors_affiliations_orcid_and_collective_name(full):
    names = [a.display_name for a in full.authors]
    # the ValidYN="N" duplicate ("Brenan") is an indexing error PubMed does not display
    assert names == ["Okonkwo-Lindqvist AJ", "Brennan T", "Pelvic Ablation Registry Group"]
    first = full.authors[0]
    assert first.fore_name == "Amara J"
    assert first.affiliations == [
        "Department of Interventional Radiology, Northfield University Hospital, Leeds, UK.",
        "Institute of Cancer Imaging, Leeds, UK.",
    ]
    assert first.orcid == "0000-0002-4412-907X"
    assert full.authors[1].affiliations == ["Department of Radiology, Lakeshore Medical Centre, Toronto, Canada."]
    assert full.authors[2].collective_name == "Pelvic Ablation Registry Group"
    assert full.authors[2].last_name is None


def test_journal_issue_and_pages(full):
    journal = full.journal
    assert journal.title == "Journal of musculoskeletal interventional oncology"
    assert (journal.iso_abbreviation, journal.medline_ta) == ("J. Musculoskelet. Interv. Oncol.",
                                                              "J Musculoskelet Interv Oncol")
    assert (journal.issn, journal.issn_linking, journal.nlm_unique_id) == ("1999-0042", "1999-0034", "101999042")
    assert journal.key == "101999042"
    assert (full.volume, full.issue, full.pages) == ("47", "2", "211-219")


def test_dates(full):
    # numeric month and zero-padded day written the way MEDLINE's DP writes them
    assert full.pub_date == "2024 Feb 7"
    assert full.pub_year == 2024
    assert full.entrez_date == "2023-12-21"  # PubStatus="entrez", not "pubmed" (a day later)
    assert full.revised_date == "2024-11-02"
    assert full.completed_date == "2024-03-18"


def test_languages_types_mesh_keywords(full):
    assert full.languages == ["eng"]
    assert [(p.name, p.ui) for p in full.publication_types] == [
        ("Journal Article", "D016428"),
        ("Observational Study", "D064888"),
    ]
    bone, cryo, humans = full.mesh_headings
    assert (bone.descriptor, bone.ui, bone.major) == ("Bone Neoplasms", "D001859", False)
    assert [(q.name, q.ui, q.major) for q in bone.qualifiers] == [
        ("secondary", "Q000556", True),
        ("surgery", "Q000601", False),
    ]
    assert (cryo.descriptor, cryo.major, cryo.qualifiers) == ("Cryosurgery", True, [])
    assert humans.major is False
    assert full.keywords == ["cryoablation", "pelvis", "pain palliation"]  # both KeywordLists


def test_ids_ignore_the_reference_list(full):
    assert full.doi == "10.5555/jmio.2023.0417"
    assert full.pmcid == "PMC11990001"  # not the reference's PMC0000001


def test_comments_corrections_become_links(full):
    assert [(l.ref_type, l.pmid, l.source) for l in full.links] == [
        ("CommentIn", "39990077", "J Musculoskelet Interv Oncol. 2024 Feb;47(2):220-221"),
        ("ErratumIn", "39990123", "J Musculoskelet Interv Oncol. 2024 Apr;47(4):530"),
    ]
    assert full.retracted is False


def test_raw_is_the_record_element_and_rereads_to_the_same_article(full):
    root = etree.fromstring(full.raw)
    assert root.tag == "PubmedArticle"
    assert root.findtext("MedlineCitation/PMID") == "39990001"
    again = article_from_xml(full.raw)
    assert again.to_dict() == full.to_dict()


# --------------------------------------------------------------------------- markup


def test_inline_markup_never_truncates_titles():
    first, second = read("markup.xml")
    assert first.title == "Argon-based cryoablation of desmoid tumours of the chest wall after 18F-FDG PET staging"
    # pretty-printed markup spread over lines is joined with single spaces
    assert second.title == "Margins of osteoid osteoma ablation: a 10\u22123 risk?"


def test_inline_markup_and_mathml_never_truncate_abstracts():
    first, second = read("markup.xml")
    background, results = first.abstract_sections
    assert background.text == "Ice-ball coverage was checked on T2-weighted MRI in all cases."
    assert results.text.startswith("Tumour volume fell by 64% (P = .002); the fitted decay was ")
    assert "Vt=V0e-kt" in results.text
    assert results.text.endswith("with k near 0.08 per month.")
    assert second.abstract == "Temperatures below \u2212 40 \u00b0C were reached at the margin in every case."
    assert first.keywords == ["CTNNB1 mutation"]


@pytest.mark.parametrize(
    "xml, expected",
    [
        ("<t>plain</t>", "plain"),
        ("<t>  spaced \n\t out  </t>", "spaced out"),
        ("<t>a <i>b</i> c</t>", "a b c"),
        ("<t>H<sub>2</sub>O at 10<sup>-3</sup></t>", "H2O at 10-3"),
        ("<t><b>bold</b><u>under</u></t>", "boldunder"),
        ("<t>x<!-- note -->y</t>", "xy"),
        ("<t/>", ""),
    ],
)
def test_text_of_takes_all_text_in_order(xml, expected):
    assert text_of(etree.fromstring(xml)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "plain words",
        " leading and trailing ",
        "double  space",
        "line\nbreak",
        "tab\there",
        "carriage\r\nreturn",
        "no-break\u00a0space",
        "thin\u2009space and em\u2003space",
        "\u00a0\u00a0",
        "",
        "Calmette-Gu\u00e9rin  bacillus",
        "40 \u00b1 5 \u00b0C",
        "line\u2028separator and next\u0085line",
        "ideographic\u3000space",
        " x ",
    ],
)
def test_squash_normalises_exactly_like_split_and_join(text):
    assert squash(text) == " ".join(text.split())


# --------------------------------------------------------------------------- forms


def test_publication_date_forms_and_year_fallback():
    by_pmid = {a.pmid: a for a in read("dates.xml")}
    assert (by_pmid["39990201"].pub_date, by_pmid["39990201"].pub_year) == ("2019 Jan-Feb", 2019)
    assert (by_pmid["39990202"].pub_date, by_pmid["39990202"].pub_year) == ("2018 Winter", 2018)
    assert (by_pmid["39990203"].pub_date, by_pmid["39990203"].pub_year) == ("1998 Dec-1999 Jan", 1998)
    assert (by_pmid["39990204"].pub_date, by_pmid["39990204"].pub_year) == ("Spring", 2020)  # ArticleDate
    assert by_pmid["39990205"].pub_date == "2017 Jun 1"
    assert by_pmid["39990205"].entrez_date == "2017-07-03"  # "pubmed" when there is no "entrez"


@pytest.mark.parametrize("year", ["0000", "20x9", "219"])
def test_a_publication_year_that_is_no_year_makes_the_record_a_problem(tmp_path, year):
    """Year 0000 was stored as the year 0, and sorted before every real one."""
    from ingest.fields import RecordError, pub_date

    with pytest.raises(RecordError, match=f"PubDate has a broken Year '{year}'"):
        pub_date({"Year": year, "Month": "Jan"})
    assert pub_date({"Year": "2019", "Month": "02"}) == ("2019 Feb", 2019)
    assert pub_date({"MedlineDate": "0000 Nov-Dec"}) == ("0000 Nov-Dec", None)


def test_book_chapter_and_whole_book():
    chapter, book = read("book.xml")
    assert chapter.is_book and book.is_book
    assert chapter.pmid == "39990301"
    assert chapter.title == "Cryoablation of Spinal Metastases"
    assert [a.display_name for a in chapter.authors] == ["Nakamura K", "Ortiz L"]  # chapter authors, not editors
    assert chapter.authors[0].affiliations == ["Riverside Spine Institute"]
    assert chapter.abstract_sections[0].label == "EXCERPT"
    assert chapter.abstract.startswith("Vertebral metastases can be frozen safely")
    assert (chapter.pub_date, chapter.pub_year) == ("2023 Jan", 2023)
    assert chapter.revised_date == "2023-02-14"
    assert chapter.entrez_date == "2023-01-20"
    assert chapter.doi == "10.5555/nbk999301"
    assert [p.name for p in chapter.publication_types] == ["Review"]
    assert chapter.keywords == ["vertebra"]
    assert etree.fromstring(chapter.raw).tag == "PubmedBookArticle"

    assert book.title == "Atlas of Musculoskeletal Cryotherapy"
    assert [a.display_name for a in book.authors] == ["Haldane R", "Mbeki S"]  # editors, as nothing else
    assert book.pub_year == 2021


def test_update_file_yields_articles_then_the_deletion():
    records = read("update_with_deletions.xml")
    assert [type(r) for r in records] == [Article, Article, Deletion]
    assert records[2].pmids == ["39990011", "39990012", "39990013"]


def test_old_medline_citation_set():
    first, second, deletion = read("medline_citation_set.xml")
    assert (first.pmid, second.pmid) == ("8990501", "8990502")
    assert first.title == "Liquid nitrogen spray in curettage of giant cell tumour of bone."
    assert first.completed_date == "1997-02-11"
    # the article-level Affiliation of the old DTDs goes to the first author
    assert first.authors[0].affiliations == ["Department of Orthopaedic Surgery, Eastgate Hospital, Cardiff, UK."]
    assert first.authors[1].affiliations == []
    assert first.entrez_date is None  # no PubmedData in this format
    # NLM's abbreviation, kept apart from an ISO one the record does not give
    assert (second.journal.iso_abbreviation, second.journal.medline_ta) == (None, "Arch Cryosurg")
    assert etree.fromstring(first.raw).tag == "MedlineCitation"
    assert deletion == Deletion(["8990499"])


@pytest.mark.parametrize("flat", [False, True], ids=["python walk", "compiled walk"])
def test_an_old_record_names_its_pmc_copy_in_an_nlm_other_id(flat):
    """Before 2017 a record's PMC id was only an OtherID of Source "NLM", embargoed ones
    with a note after it; MEDLINE text of the same record gives it as PMC."""
    first, second, _ = list(iter_records(XML / "medline_citation_set.xml", flat=flat))
    pmcid = (lambda record: record[FLAT_PMCID]) if flat else (lambda record: record.pmcid)
    assert (pmcid(first), pmcid(second)) == ("PMC1990501", "PMC1990502")  # not the NASA id, nor the note


@pytest.mark.parametrize("flat", [False, True], ids=["python walk", "compiled walk"])
def test_pubmed_data_names_the_pmc_copy_before_an_other_id(flat):
    document = one_record(b"<PMID>2005</PMID><OtherID Source=\"NLM\">PMC1000001</OtherID>").replace(
        b"</MedlineCitation>", b"</MedlineCitation><PubmedData><ArticleIdList>"
        b"<ArticleId IdType=\"pmc\">PMC1000002</ArticleId></ArticleIdList></PubmedData>")
    (record,) = list(iter_records(io.BytesIO(document), "ids.xml", flat=flat))
    assert (record[FLAT_PMCID] if flat else record.pmcid) == "PMC1000002"


def test_attribute_defaults_declared_in_the_doctype_count_however_the_document_is_read(monkeypatch):
    """A record without MajorTopicYN takes the default its DOCTYPE's <!ATTLIST> declares,
    as lxml reads it, whether the document's records are cut out as bytes (each parsed
    without the DOCTYPE) or read through iterparse."""
    from ingest import slicing

    document = (XML / "full_record.xml").read_bytes().replace(
        b'"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">',
        b'"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd" '
        b'[<!ATTLIST DescriptorName MajorTopicYN (Y|N) "Y">]>', 1,
    ).replace(b'<DescriptorName UI="D001859" MajorTopicYN="N">', b'<DescriptorName UI="D001859">', 1)
    (as_read,) = iter_records(io.BytesIO(document), "attlist.xml")
    monkeypatch.setattr(slicing, "record_start", lambda head: None)
    (through_iterparse,) = iter_records(io.BytesIO(document), "attlist.xml")
    heading = next(m for m in as_read.mesh_headings if m.ui == "D001859")
    assert heading.major is True
    assert as_read.to_dict() == through_iterparse.to_dict()


def test_vernacular_title_elocation_doi_and_start_end_pages():
    article = only_article("vernacular_title.xml")
    assert article.title == "Crioablación percutánea de metástasis óseas dolorosas."
    assert article.doi == "10.5555/rco.2020.045"
    assert article.pages == "45-52"
    assert article.languages == ["spa"]


def test_the_doi_pubmed_lists_comes_before_the_publishers_elocation():
    """As MEDLINE's AID before its LID: the two differ when a publisher's ELocationID is
    off, and PubMed's own ArticleIdList is the one to keep."""
    document = (XML / "full_record.xml").read_bytes().replace(
        b'<ELocationID EIdType="doi" ValidYN="Y">10.5555/jmio.2023.0417<',
        b'<ELocationID EIdType="doi" ValidYN="Y">10.5555/jmio.2023.417<', 1)
    (article,) = list(iter_records(io.BytesIO(document), "two-dois.xml"))
    assert article.doi == "10.5555/jmio.2023.0417"


@pytest.mark.parametrize(
    "value, expected",
    [
        ("0000-0002-4412-907X", "0000-0002-4412-907X"),
        ("https://orcid.org/0000-0002-4412-907x", "0000-0002-4412-907X"),
        ("http://orcid.org/0000000244129071", "0000-0002-4412-9071"),
        ("0000 0002 4412 907X", "0000-0002-4412-907X"),  # as some forms write it
        ("  ", None),
        (None, None),
    ],
)
def test_orcid_forms(value, expected):
    assert normalise_orcid(value) == expected


# --------------------------------------------------------------------------- problems


def test_unreadable_records_become_problems_and_parsing_goes_on(caplog):
    # logged at debug level only: callers (import, harvest) report the problems they receive
    with caplog.at_level(logging.DEBUG, logger="cryokb"):
        records = read("malformed_records.xml")
    assert [type(r) for r in records] == [Article, ParseProblem, ParseProblem, ParseProblem, Article]
    assert records[0].pmid == "39990601" and records[4].pmid == "39990605"
    no_pmid, bad_pmid, bad_date = records[1:4]
    assert no_pmid.where == "record 2" and "no PMID" in no_pmid.message
    assert bad_pmid.where == "record 3" and "3999O603" in bad_pmid.message
    assert bad_date.where == "PMID 39990604" and "DateRevised" in bad_date.message
    assert str(XML / "malformed_records.xml") == no_pmid.source
    assert sum("PMID 39990604" in m for m in caplog.messages) == 1


@pytest.mark.parametrize("flat", [False, True], ids=["python walk", "compiled walk"])
@pytest.mark.parametrize("date", [
    b"<DateRevised><Year>2020</Year><Month>1</Month><Day>3000000000</Day></DateRevised>",
    b"<DateRevised><Year>2020</Year><Month>30000000000000000000</Month></DateRevised>",
    b"<DateRevised><Year>+202</Year><Month>1</Month></DateRevised>",  # int() would take these
    b"<DateRevised><Year>2_02</Year><Month>1</Month></DateRevised>",
    "<DateRevised><Year>２０２４</Year><Month>1</Month></DateRevised>".encode(),
    b"<DateRevised><Year>+202</Year></DateRevised>",
    b"<DateRevised><Year>2020</Year><Month>1</Month><Day>+3</Day></DateRevised>",
])
def test_a_date_with_a_number_past_any_calendar_is_a_problem_and_the_file_goes_on(date, flat):
    document = (b"<PubmedArticleSet>" + one_record(b"<PMID>1</PMID>" + date)[len(b"<PubmedArticleSet>"):-len(
        b"</PubmedArticleSet>")] + one_record(b"<PMID>2</PMID>")[len(b"<PubmedArticleSet>"):])
    first, second = list(iter_records(io.BytesIO(document), "far.xml", flat=flat))
    assert isinstance(first, ParseProblem) and "DateRevised is not a valid date" in first.message
    assert (second[0] if flat else second.pmid) == "2"


@pytest.mark.parametrize("flat", [False, True], ids=["python walk", "compiled walk"])
def test_a_record_in_an_element_of_another_programs_is_read_where_the_document_is_read_whole(flat):
    """A document with namespaces on its root is read with iterparse: a record inside a
    wrapper element was passed over without a word, the file reported as read in full."""
    inner = lambda pmid: one_record(pmid)[len(b"<PubmedArticleSet>"):-len(b"</PubmedArticleSet>")]  # noqa: E731
    document = (b'<PubmedArticleSet xmlns:x="urn:example:batch">' + inner(b"<PMID>1</PMID>")
                + b"<x:Batch>" + inner(b"<PMID>2</PMID>") + b"</x:Batch></PubmedArticleSet>")
    records = list(iter_records(io.BytesIO(document), "wrapped.xml", flat=flat))
    assert [r[0] if flat else r.pmid for r in records] == ["1", "2"]


def one_record(pmid_xml: bytes, title: bytes = b"A synthetic record") -> bytes:
    return (b"<PubmedArticleSet><PubmedArticle><MedlineCitation Status=\"MEDLINE\">" + pmid_xml
            + b"<Article><ArticleTitle>" + title + b"</ArticleTitle></Article></MedlineCitation></PubmedArticle>"
            b"</PubmedArticleSet>")


@pytest.mark.parametrize("pmid, shown", [
    (b"<PMID Version=\"1\">20<!-- a note -->04</PMID>", "2004"),
    (b"<PMID>12\xc2\xb2</PMID>", "12\u00b2"),
    (b"<PMID>\xd9\xa1\xd9\xa2</PMID>", "\u0661\u0662"),
])
def test_a_pmid_is_all_of_its_text_and_ascii_digits_only(pmid, shown):
    (record,) = list(iter_records(io.BytesIO(one_record(pmid)), "odd.xml"))
    if shown.isascii():
        assert record.pmid == shown  # not "20": the comment does not cut it short
    else:
        assert isinstance(record, ParseProblem) and repr(shown) in record.message


def three_records(root: bytes = b"<PubmedArticleSet>", prolog: bytes = b"") -> bytes:
    """Two good records around one that does not parse (an unescaped "&")."""
    body = lambda pmid, title=b"A synthetic record": one_record(pmid, title)[len(b"<PubmedArticleSet>"):-len(  # noqa: E731
        b"</PubmedArticleSet>")]
    return (prolog + root + body(b"<PMID>1</PMID>") + body(b"<PMID>2</PMID>", b"Salt & pepper")
            + body(b"<PMID>3</PMID>") + b"</PubmedArticleSet>")


@pytest.mark.parametrize("prolog, root", [
    (b"<!--" + b" " * (65531 - 7) + b"-->", b"<PubmedArticleSet>"),  # its "<" at byte 65,531 of the first 65,536
    (b"", b'<PubmedArticleSet note="a>b" tail="]]>">'),
], ids=["the root's start tag past the first 64 KiB read", "a '>' in a quoted value of the root's start tag"])
def test_a_record_that_does_not_parse_is_skipped_whatever_the_root_start_tag_looks_like(prolog, root):
    """Both documents were read with iterparse, where the bad record ended the file (the
    first), or refused whole as not well-formed (the second: its tag cut at the first ">")."""
    records = list(iter_records(io.BytesIO(three_records(root, prolog)), "odd-root.xml"))
    assert [r.pmid if isinstance(r, Article) else r.where for r in records] == ["1", "PMID 2", "3"]


@pytest.mark.parametrize("linked", [True, False], ids=["a record linking to another", "no links"])
def test_a_record_that_does_not_parse_is_named_by_its_own_pmid_never_by_one_it_links_to(linked):
    """Its own PMID split by a comment, the first PMID written in it was a linked article's,
    which then named it (and a harvest took that article as brought already)."""
    links = (b'<CommentsCorrectionsList><CommentsCorrections RefType="CommentOn"><RefSource>J Synth. 2019</RefSource>'
             b'<PMID Version="1">777</PMID></CommentsCorrections></CommentsCorrectionsList>') if linked else b""
    record = one_record(b"<PMID>20<!-- moved -->04</PMID>", b"Salt & pepper").replace(
        b"</Article>", b"</Article>" + links)
    (problem,) = list(iter_records(io.BytesIO(record), "linked.xml"))
    assert problem.where == "record 1"


def test_a_record_refused_after_parsing_is_named_by_all_of_its_pmid():
    record = one_record(b"<PMID>20<!-- moved -->04</PMID>").replace(
        b"</MedlineCitation>", b"</MedlineCitation><MedlineCitation><PMID>2005</PMID></MedlineCitation>")
    (problem,) = list(iter_records(io.BytesIO(record), "two.xml"))
    assert problem.where == "PMID 2004" and "PMIDs 2004, 2005" in problem.message


def test_a_deletion_of_a_pmid_that_is_not_a_number_deletes_nothing_and_says_so():
    data = b"<PubmedArticleSet><DeleteCitation><PMID>20<!-- x -->04</PMID><PMID>7\xc2\xb2</PMID></DeleteCitation></PubmedArticleSet>"
    (problem,) = list(iter_records(io.BytesIO(data), "del.xml"))
    assert isinstance(problem, ParseProblem) and "'7\u00b2' is not a number; nothing deleted" in problem.message


def test_truncated_file_yields_earlier_records_then_a_clear_error():
    data = (XML / "update_with_deletions.xml").read_bytes()
    cut = data.index(b"<ArticleTitle>Second record")
    records = iter_records(io.BytesIO(data[:cut]), "cut.xml")
    first = next(records)
    assert first.pmid == "39990401"
    with pytest.raises(XMLFileError) as caught:
        next(records)
    err = caught.value
    assert err.name == "cut.xml"
    assert err.line is not None and err.line >= 5
    assert str(err).startswith("cut.xml: not well-formed XML at line")
    second = re.search(rb"<PMID[^>]*>(\d+)</PMID>", data[data.index(b"</PubmedArticle>"):]).group(1).decode()
    assert str(err).endswith(f", inside the record of PMID {second}")


def test_a_file_cut_inside_a_start_tag_gives_one_line_number_the_file_s():
    """libxml2 named the line the tag began on, counted from the record's start: "line 5681,
    column 24: Couldn't find end of Start Tag Minute line 184"."""
    data = (XML / "update_with_deletions.xml").read_bytes()
    cut = data.index(b"<ArticleTitle>Second record") + len(b"<ArticleTi")
    with pytest.raises(XMLFileError) as caught:
        list(iter_records(io.BytesIO(data[:cut]), "cut.xml"))
    message = str(caught.value)
    lines = {int(n) for n in re.findall(r"line (\d+)", message)}
    assert "Start Tag" in message and lines == {data[:cut].count(b"\n") + 1}, message


def test_text_that_is_not_xml_raises_with_name_and_line():
    with pytest.raises(XMLFileError, match=r"notes\.txt: not well-formed XML at line 1"):
        list(iter_records(io.BytesIO(b"PMID- 123\nTI  - not xml\n"), "notes.txt"))


def test_xml_that_is_not_pubmed_is_an_error():
    with pytest.raises(XMLFileError, match="eSearchResult"):
        read("esearch_reply.xml")


def many_records(n, prolog=b""):
    record = (XML / "update_with_deletions.xml").read_bytes().split(b"<PubmedArticle>")[1].split(b"</PubmedArticle>")[0]
    body = b"".join(
        b"<PubmedArticle>" + record.replace(b"39990401", str(40000000 + i).encode()) + b"</PubmedArticle>\n"
        for i in range(n)
    )
    return prolog + b"<PubmedArticleSet>" + body + b"</PubmedArticleSet>"


def test_a_document_that_cannot_be_cut_releases_each_record_once_read(monkeypatch):
    """Read with iterparse (here: a namespace declared on the root), each record and the
    siblings before it are cleared once read: the tree never grows."""
    from ingest import pubmed_xml

    sizes = []
    original = pubmed_xml._release

    def spy(elem, parent):
        original(elem, parent)
        sizes.append((len(elem), sum(1 for _ in elem.itersiblings(preceding=True))))

    monkeypatch.setattr(pubmed_xml, "_release", spy)
    doc = read_as_a_tree(many_records(300))
    pmids = [r.pmid for r in iter_records(io.BytesIO(doc), "many.xml")]
    assert len(pmids) == 300 and len(set(pmids)) == 300
    assert sizes == [(0, 0)] * 300


def test_records_cut_as_bytes_hold_no_more_than_a_block_and_a_record(monkeypatch):
    from ingest import slicing

    monkeypatch.setattr(slicing, "BLOCK", 4096)
    held = []
    original = slicing._Cutter._more

    def spy(cutter):
        more = original(cutter)
        held.append(len(cutter.buf))
        return more

    monkeypatch.setattr(slicing._Cutter, "_more", spy)
    doc = many_records(1000)
    pmids = [r.pmid for r in iter_records(io.BytesIO(doc), "many.xml")]
    assert len(set(pmids)) == 1000
    record = len(doc) // 1000
    # the first 64 KiB come with the prolog check; the rest block by block, never all at once
    assert len(held) >= (len(doc) - 65536) // 4096 and max(held) < 4096 + 2 * record


def test_the_raw_bytes_of_a_record_are_the_files_own(tmp_path):
    """Cut out of the file, a record's raw XML is its bytes there, odd spacing and all."""
    doc = many_records(3).replace(b"<PMID Version=\"1\">", b"<PMID  Version='1'>")
    records = list(iter_records(io.BytesIO(doc), "spaced.xml"))
    first = doc[doc.index(b"<PubmedArticle>") : doc.index(b"</PubmedArticle>") + len(b"</PubmedArticle>")]
    assert records[0].raw == first
    assert b"<PMID  Version='1'>" in records[0].raw
    assert [r.pmid for r in records] == ["40000000", "40000001", "40000002"]


def read_as_a_tree(doc: bytes) -> bytes:
    """The document with a namespace declared on its root, which a record cut out alone
    would lose: it is read whole, with iterparse."""
    return doc.replace(b"<PubmedArticleSet>", b'<PubmedArticleSet xmlns:note="urn:example:note">', 1)


def assert_same_articles(read: list, expected: list) -> None:
    """The same records, raw XML aside (it is each reading's own bytes)."""
    assert [type(r) for r in read] == [type(r) for r in expected]
    for one, other in zip(read, expected):
        if isinstance(one, Article):
            assert {**one.to_dict(), "raw": None} == {**other.to_dict(), "raw": None}
            assert _canonical(one.raw) == _canonical(other.raw)
        else:
            assert one == other


def _canonical(raw: bytes) -> bytes:
    """A record's XML as lxml writes it, without namespaces it inherited and never uses."""
    elem = etree.fromstring(raw)
    etree.cleanup_namespaces(elem)
    return etree.tostring(elem)


def test_both_ways_of_reading_give_the_same_articles():
    data = (XML / "update_with_deletions.xml").read_bytes()
    as_bytes = list(iter_records(io.BytesIO(data), "a.xml"))
    as_tree = list(iter_records(io.BytesIO(read_as_a_tree(data)), "b.xml"))
    assert_same_articles(as_tree, as_bytes)


@pytest.mark.parametrize("read", [lambda doc: doc, read_as_a_tree], ids=["cut as bytes", "read as a tree"])
def test_a_record_tag_inside_a_record_is_part_of_it_not_a_record_of_its_own(read):
    """A DeleteCitation nested in an article must not withdraw PMID 1000, nor lose the article."""
    doc = read(b"<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>2005</PMID><Article>"
               b"<ArticleTitle>Nested</ArticleTitle></Article><DeleteCitation><PMID>1000</PMID>"
               b"</DeleteCitation></MedlineCitation></PubmedArticle></PubmedArticleSet>")
    (record,) = list(iter_records(io.BytesIO(doc), "nested.xml"))
    assert isinstance(record, Article) and (record.pmid, record.title) == ("2005", "Nested")


def test_a_problem_is_said_in_one_line_when_the_parser_quotes_text_across_lines():
    """libxml2 quotes the start of an unterminated comment, newlines and all, when it holds
    text outside ASCII: the "Skipped:" line ran on over two."""
    doc = many_records(2).replace(b"</PMID>", "</PMID><!-- caf\u00e9\n au lait".encode(), 1)
    problem, article = list(iter_records(io.BytesIO(doc), "comment.xml"))
    assert problem.where == "PMID 40000000" and "Comment not terminated <!-- caf\u00e9 au lait" in problem.message
    assert "\n" not in str(problem) and article.pmid == "40000001"


@pytest.mark.parametrize("flat", [False, True], ids=["the Python walk", "the compiled walk"])
def test_a_pmid_written_with_leading_zeros_is_that_pmid(flat):
    """As a spreadsheet might save it: read as written, it made a second article of one
    citation, and a deletion that named it so missed the article."""
    doc = many_records(2).replace(b">40000001<", b">040000001<").replace(
        b"</PubmedArticleSet>", b"<DeleteCitation><PMID>0040000000</PMID></DeleteCitation></PubmedArticleSet>")
    first, second, deletion = list(iter_records(io.BytesIO(doc), "zeros.xml", flat=flat))
    pmids = [record[0] if flat else record.pmid for record in (first, second)]
    assert pmids == ["40000000", "40000001"] and deletion == Deletion(["40000000"])


@pytest.mark.parametrize("flat", [False, True], ids=["the Python walk", "the compiled walk"])
def test_a_citation_without_its_article_element_is_a_problem_not_an_empty_article(flat):
    """A stub of a record (PMID and dates, no <Article>) replaced the whole record stored for its PMID."""
    doc = many_records(2)
    start, end = doc.index(b"<Article "), doc.index(b"</Article>") + len(b"</Article>")
    stub, whole = list(iter_records(io.BytesIO(doc[:start] + doc[end:]), "stub.xml", flat=flat))
    assert stub == ParseProblem("stub.xml", "PMID 40000000",
                                "no <Article> element, which PubMed's DTD requires in a MedlineCitation")
    assert (whole[0] if flat else whole.pmid) == "40000001"


@pytest.mark.parametrize("flat", [False, True], ids=["the Python walk", "the compiled walk"])
def test_a_citation_with_two_pmids_is_a_problem_not_read_under_the_last(flat):
    """Read under the last, it overwrote (or merged with) the article of that other PMID."""
    doc = many_records(2).replace(b"40000000</PMID>", b"40000000</PMID><PMID>40000001</PMID>", 1)
    problem, article = list(iter_records(io.BytesIO(doc), "two.xml", flat=flat))
    assert problem == ParseProblem("two.xml", "PMID 40000000", "two PMIDs, 40000000 and 40000001")
    assert (article[0] if flat else article.pmid) == "40000001"


@pytest.mark.parametrize("flat", [False, True], ids=["the Python walk", "the compiled walk"])
def test_a_linked_pmid_written_with_leading_zeros_is_that_pmid(flat):
    links = (b"<CommentsCorrectionsList><CommentsCorrections RefType=\"ErratumIn\"><RefSource>J. 2024</RefSource>"
             b"<PMID Version=\"1\">0039990777</PMID></CommentsCorrections><CommentsCorrections RefType=\"CommentOn\">"
             b"<RefSource>A letter</RefSource><PMID>not-a-pmid</PMID></CommentsCorrections></CommentsCorrectionsList>")
    doc = many_records(1).replace(b"</MedlineCitation>", links + b"</MedlineCitation>", 1)
    (record,) = list(iter_records(io.BytesIO(doc), "links.xml", flat=flat))
    pmids = [link[1] for link in record[20]] if flat else [link.pmid for link in record.links]
    assert pmids == ["39990777", "not-a-pmid"]


def test_comments_and_processing_instructions_after_the_root_are_xml_not_damage():
    doc = many_records(2) + b"\n<!-- written by a tool -->\n<?tool done?>\n"
    assert [r.pmid for r in iter_records(io.BytesIO(doc), "misc.xml")] == ["40000000", "40000001"]


@pytest.mark.parametrize("damage, why", [
    (b"<ArticleTitle>Salt & pepper", "xmlParseEntityRef: no name"),
    (b"<ArticleTitle>" + b"<i>" * 300, "beyond the XML parser's safety limits"),
], ids=["an unescaped ampersand", "markup nested too deep"])
def test_a_record_that_does_not_parse_is_a_problem_and_the_records_after_it_are_read(damage, why):
    doc = many_records(3)
    second = doc.index(b"40000001")
    title = doc.index(b"<ArticleTitle>", second)
    doc = doc[:title] + damage + doc[title + len(b"<ArticleTitle>"):]
    records = list(iter_records(io.BytesIO(doc), "amp.xml"))
    assert [type(r) for r in records] == [Article, ParseProblem, Article]
    assert [records[0].pmid, records[2].pmid] == ["40000000", "40000002"]
    problem = records[1]
    assert problem.where == "PMID 40000001" and problem.source == "amp.xml"
    line = doc[:title].count(b"\n") + 1
    assert f"at line {line}," in problem.message and why in problem.message


def test_a_tag_mismatch_names_the_line_in_the_document_not_in_the_record():
    doc = many_records(3)
    second = doc.index(b"40000001")
    title = doc.index(b"<ArticleTitle>", second) + len(b"<ArticleTitle>")
    doc = doc[:title] + b"<i>\nitalic</b>" + doc[title:]
    problem = list(iter_records(io.BytesIO(doc), "tags.xml"))[1]
    line = doc[:title].count(b"\n") + 1
    assert f"Opening and ending tag mismatch: i line {line} and b" in problem.message


@pytest.mark.parametrize("lost", [b"</PubmedArticl>", b""], ids=["misspelt", "missing"])
def test_a_record_whose_end_tag_is_lost_is_a_problem_and_the_records_after_it_are_read(lost):
    doc = many_records(4).replace(b"</PubmedArticle>\n", b"</PubmedArticle>\n\n", 1)
    second = doc.index(b"<PubmedArticle>", doc.index(b"<PubmedArticle>") + 1)
    end = doc.index(b"</PubmedArticle>", second)
    doc = doc[:end] + lost + doc[end + len(b"</PubmedArticle>"):]
    records = list(iter_records(io.BytesIO(doc), "lost.xml"))
    assert [type(r) for r in records] == [Article, ParseProblem, Article, Article]
    assert [records[0].pmid, records[2].pmid, records[3].pmid] == ["40000000", "40000002", "40000003"]
    assert records[1].where == "PMID 40000001"
    line = doc[:second].count(b"\n") + 1  # where the record begins, as lxml or the cut tells it
    assert re.search(rf"\bline {line}\b", records[1].message), records[1].message
    assert records[2].raw.startswith(b"<PubmedArticle>") and records[2].raw.endswith(b"</PubmedArticle>")


def whole_records(*pmids: int) -> bytes:
    """A PubmedArticleSet of full_record.xml's article under each PMID, each with its
    PubmedData (its own DOI and PMC id, an entrez date)."""
    data = (XML / "full_record.xml").read_bytes()
    record = data[data.index(b"<PubmedArticle>"):data.index(b"</PubmedArticle>") + len(b"</PubmedArticle>")]
    body = b"".join(record.replace(b">39990001<", b">%d<" % pmid).replace(b"PMC11990001", b"PMC%d" % pmid)
                    .replace(b"10.5555/jmio.2023.0417", b"10.5555/jmio.%d" % pmid) + b"\n" for pmid in pmids)
    return data[:data.index(b"<PubmedArticle>")] + body + b"</PubmedArticleSet>\n"


def without_start_tag(doc: bytes, pmid: int, end_tag_too: bool = False) -> bytes:
    """``doc`` with the <PubmedArticle> start tag of ``pmid``'s record lost (and its end tag, if asked)."""
    start = doc.rindex(b"<PubmedArticle>", 0, doc.index(b">%d</PMID>" % pmid))
    end = doc.index(b"</PubmedArticle>", start)
    if end_tag_too:
        doc = doc[:end] + doc[end + len(b"</PubmedArticle>"):]
    return doc[:start] + doc[start + len(b"<PubmedArticle>"):]


def pmid_of(record) -> str:
    return record[0] if isinstance(record, tuple) else record.pmid


@pytest.mark.parametrize("flat", [False, True], ids=["python walk", "compiled walk"])
@pytest.mark.parametrize("end_tag_too", [False, True], ids=["start tag lost", "start and end tags lost"])
def test_an_article_whose_start_tag_is_lost_is_a_problem_by_pmid_and_the_records_after_it_are_read(flat, end_tag_too):
    """Its MedlineCitation, left at the top of a PubmedArticleSet, is no record there (only in
    the old MedlineCitationSet): read, it would be an article without its PubmedData."""
    doc = without_start_tag(whole_records(5301, 5302, 5303, 5304), 5302, end_tag_too)
    records = list(iter_records(io.BytesIO(doc), "lost.xml", flat=flat))
    assert [type(r) for r in records] == [tuple if flat else Article, ParseProblem] + [tuple if flat else Article] * 2
    assert [pmid_of(r) for r in (records[0], *records[2:])] == ["5301", "5303", "5304"]
    line = doc[:doc.index(b">5302</PMID>")].count(b"\n")  # the MedlineCitation's, the line before its PMID
    assert records[1] == ParseProblem("lost.xml", "PMID 5302", f"<MedlineCitation> at line {line} is not inside "
                                                              "a <PubmedArticle> (its start tag lost?); not read")
    after = records[2]
    ids = (after[FLAT_FIELDS.index("doi")], after[FLAT_PMCID]) if flat else (after.doi, after.pmcid)
    assert ids == ("10.5555/jmio.5303", "PMC5303")  # its own PubmedData, none of the damaged record's


@pytest.mark.parametrize("end_tag_too", [False, True], ids=["start tag lost", "start and end tags lost"])
def test_an_article_whose_start_tag_is_lost_is_the_same_problem_when_the_document_is_read_with_iterparse(end_tag_too):
    """Read whole (a namespace on the root), the same problem; with only the start tag lost
    the record's end tag then closes nothing open, and the document is not well-formed
    from there on: an error, as iterparse cannot read past it."""
    doc = without_start_tag(whole_records(5301, 5302, 5303), 5302, end_tag_too)
    cut = list(iter_records(io.BytesIO(doc), "lost.xml"))
    records = iter_records(io.BytesIO(read_as_a_tree(doc)), "lost.xml")
    assert [type(r) for r in cut] == [Article, ParseProblem, Article]
    if end_tag_too:  # well-formed: every record read, as when cut
        assert_same_articles(list(records), cut)
        return
    assert_same_articles([next(records), next(records)], cut[:2])
    with pytest.raises(XMLFileError, match=r"Opening and ending tag mismatch: PubmedArticleSet line 4 and PubmedArticle"):
        next(records)


@pytest.mark.parametrize("flat", [False, True], ids=["python walk", "compiled walk"])
def test_two_articles_run_together_by_a_lost_end_tag_and_start_tag_are_a_problem_not_the_second_alone(flat):
    """One record's end tag and the next one's start tag lost: the document still parses,
    and the PubmedArticle holding both was stored as the second, the first lost unsaid."""
    doc = whole_records(5301, 5302, 5303)
    end = doc.index(b"</PubmedArticle>")
    doc = without_start_tag(doc[:end] + doc[end + len(b"</PubmedArticle>"):], 5302)
    records = list(iter_records(io.BytesIO(doc), "joined.xml", flat=flat))
    assert [type(r) for r in records] == [ParseProblem, tuple if flat else Article]
    assert records[0].where == "PMID 5301" and "holds two records (PMIDs 5301, 5302)" in records[0].message
    assert pmid_of(records[1]) == "5303"


def test_citations_standing_alone_in_a_pubmed_article_set_are_problems_on_either_path_and_the_file_is_read_on():
    """A PubmedArticleSet of MedlineCitations with no PubmedArticle around them (well-formed):
    each one ends where the next record or the set's end begins, and each is reported."""
    doc = whole_records(5301, 5302, 5303)
    for pmid in (5301, 5303):
        doc = without_start_tag(doc, pmid, end_tag_too=True)
    doc = re.sub(rb"\s*<PubmedData>.*?</PubmedData>", b"", doc, flags=re.S)
    cut = list(iter_records(io.BytesIO(doc), "tree.xml"))
    assert [(type(r), r.where if isinstance(r, ParseProblem) else r.pmid) for r in cut] == [
        (ParseProblem, "PMID 5301"), (Article, "5302"), (ParseProblem, "PMID 5303")]
    assert_same_articles(tree_read(doc), cut)


def test_in_the_old_medline_citation_set_a_citation_is_a_record_on_either_path():
    cut = read("medline_citation_set.xml")
    doc = (XML / "medline_citation_set.xml").read_bytes()
    tree = list(iter_records(io.BytesIO(doc.replace(b"<MedlineCitationSet>", b'<MedlineCitationSet xmlns:x="urn:x">', 1)),
                             "tree.xml"))
    assert [type(r) for r in cut] == [Article, Article, Deletion]
    assert_same_articles(tree, cut)


def test_an_import_keeps_the_whole_stored_copy_of_an_article_whose_start_tag_is_lost(tmp_path):
    from kb.importing import import_files
    from kb.store import Store

    good, damaged = tmp_path / "good.xml", tmp_path / "damaged.xml"
    good.write_bytes(whole_records(5301, 5302))
    damaged.write_bytes(without_start_tag(whole_records(5302, 5303), 5302))
    store = Store(tmp_path / "kb.db").ensure_shape()
    import_files(store, [good])
    before = list(store.db.query("select * from articles where pmid = '5302'"))
    [result] = import_files(store, [damaged])
    assert result.error is None and result.counts.problems == 1
    assert list(store.db.query("select * from articles where pmid = '5302'")) == before
    assert [(row["pmid"], row["doi"], row["pmcid"]) for row in store.db.query(
        "select pmid, doi, pmcid from articles where pmid = '5302' or pmid = '5303' order by pmid")] == [
        ("5302", "10.5555/jmio.5302", "PMC5302"), ("5303", "10.5555/jmio.5303", "PMC5303")]


@pytest.mark.parametrize("tail, column, expected", [
    (b"<PubmedArticle><MedlineCitation><PMID>1</PMID>", 47,
     "Premature end of data in tag MedlineCitation line {line}, inside the record of PMID 1"),
    (b"", 1, "the document ends before </PubmedArticleSet>"),
    (b"</PubmedArticleSet>\n<PubmedArticle/>", 20, "content after </PubmedArticleSet>"),
    (b"  stray & text\n</PubmedArticleSet>", 10, "xmlParseEntityRef: no name"),
])
def test_a_damaged_document_is_an_error_that_says_where(tail, column, expected):
    doc = b"<?xml version='1.0'?>\n" + many_records(1).replace(b"</PubmedArticleSet>", b"") + b"\n"
    line = doc.count(b"\n") + 1  # where the tail begins
    records = iter_records(io.BytesIO(doc + tail), "damaged.xml")
    assert next(records).pmid == "40000000"
    with pytest.raises(XMLFileError) as caught:
        list(records)
    assert str(caught.value) == (f"damaged.xml: not well-formed XML at line {line}, column {column}: "
                                 + expected.format(line=line))
    assert (caught.value.line, caught.value.column) == (line, column)


def test_two_documents_joined_into_one_file_are_said_to_be_so():
    """`cat a.xml b.xml` (or two gzip members) reads as one document with content after its end."""
    doc = b"<?xml version='1.0'?>\n" + many_records(2)
    with pytest.raises(XMLFileError) as caught:
        list(iter_records(io.BytesIO(doc + b"\n" + doc), "joined.xml"))
    assert "content after </PubmedArticleSet>; another XML document follows" in str(caught.value)
    with pytest.raises(XMLFileError) as stray:
        list(iter_records(io.BytesIO(doc + b"<p>a note</p>"), "noted.xml"))
    assert str(stray.value).endswith("content after </PubmedArticleSet>")


def test_end_tags_with_space_before_the_bracket_still_end_their_records():
    doc = many_records(3).replace(b"</PubmedArticle>", b"</PubmedArticle\n  >")
    records = list(iter_records(io.BytesIO(doc), "spaced.xml"))
    assert [r.pmid for r in records] == ["40000000", "40000001", "40000002"]
    assert records[1].raw.endswith(b"</PubmedArticle\n  >")


@pytest.mark.parametrize("block", [1, 7, 64, 333])
def test_records_longer_than_a_block_are_cut_where_they_end(monkeypatch, block):
    """Start and end tags split across blocks at every offset: the same records, the same bytes."""
    from ingest import slicing

    doc = many_records(4).replace(b"</PubmedArticle>", b"</PubmedArticle >", 1)
    expected = list(iter_records(io.BytesIO(doc), "whole.xml"))
    monkeypatch.setattr(slicing, "BLOCK", block)
    monkeypatch.setattr(slicing.safexml, "_CHUNK", 50)  # the prolog check reads no further
    cut = list(iter_records(io.BytesIO(doc), "blocks.xml"))
    assert [(r.pmid, r.raw) for r in cut] == [(r.pmid, r.raw) for r in expected]
    assert len(expected) == 4


def test_a_stretch_without_records_longer_than_a_record_may_be_is_an_error_not_a_held_file(monkeypatch):
    """Bytes between records are held until the next record starts: past MAX_RECORD
    the reader stops with an error rather than holding the rest of the file."""
    from ingest import slicing

    monkeypatch.setattr(slicing, "MAX_RECORD", 5000)
    monkeypatch.setattr(slicing, "BLOCK", 1000)
    filler = b"<Note>" + b"padding " * 20000 + b"</Note>\n"  # past the 64 KiB read with the prolog
    doc = many_records(1).replace(b"</PubmedArticleSet>", filler + b"</PubmedArticleSet>")
    records = iter_records(io.BytesIO(doc), "padded.xml")
    assert next(records).pmid == "40000000"
    with pytest.raises(XMLFileError, match=r"padded\.xml: not well-formed XML at line \d+, column \d+: "
                                           r"no record starts within 5,000 bytes"):
        next(records)


@pytest.mark.parametrize("flat", [False, True], ids=["python walk", "compiled walk"])
@pytest.mark.parametrize("version", ["99999999999999999999999", "\u00b2", "-1"])
def test_a_pmid_version_that_is_no_small_number_makes_its_record_a_problem_and_its_neighbours_are_read(flat, version):
    doc = many_records(3).replace(b'<PMID Version="1">40000001', f'<PMID Version="{version}">40000001'.encode())
    records = list(iter_records(io.BytesIO(doc), "v.xml", flat=flat))
    assert isinstance(records[1], ParseProblem)
    assert records[1].where == "PMID 40000001" and "Version" in records[1].message
    assert [r[0] if flat else r.pmid for r in (records[0], records[2])] == ["40000000", "40000002"]


@pytest.mark.parametrize("flat", [False, True], ids=["python walk", "compiled walk"])
def test_space_around_a_pmid_version_is_no_matter(flat):
    doc = many_records(1).replace(b'<PMID Version="1">', b'<PMID Version=" 2 ">')
    (record,) = list(iter_records(io.BytesIO(doc), "v.xml", flat=flat))
    assert (record[1] if flat else record.version) == 2


def test_an_import_stores_the_neighbours_of_a_record_whose_version_sqlite_cannot_hold(tmp_path):
    from kb.importing import import_files
    from kb.store import Store

    path = tmp_path / "v.xml"
    path.write_bytes(many_records(3).replace(b'<PMID Version="1">40000001',
                                             b'<PMID Version="99999999999999999999999">40000001'))
    store = Store(tmp_path / "kb.db").ensure_shape()
    [result] = import_files(store, [path])
    assert result.error is None and result.counts.problems == 1
    assert [row["pmid"] for row in store.db.query("select pmid from articles order by pmid")] == [
        "40000000", "40000002"]


def tree_read(doc: bytes) -> list:
    """The document read with iterparse (a namespace declared on the root stops the cutting)."""
    return list(iter_records(io.BytesIO(doc.replace(b"<PubmedArticleSet>", b'<PubmedArticleSet xmlns:x="urn:x">', 1)),
                             "tree.xml"))


TITLE = b"<ArticleTitle>"


def in_title(text: bytes) -> bytes:
    """``text`` at the start of a record's title."""
    return TITLE + text


HIDING_PLACES = {
    "CDATA in a title": (TITLE, in_title(b"see <![CDATA[ a </PubmedArticle> b ]]> here ")),
    "a comment in a title": (TITLE, in_title(b"x<!-- </PubmedArticle> -->y ")),
    "a PI in a title": (TITLE, in_title(b"x<?note </PubmedArticle>?>y ")),
    "a start tag in a comment": (TITLE, in_title(b"x<!-- <PubmedArticle> -->y ")),
    "a comment between records": (b"\n<PubmedArticle>", b"\n<!-- old: <PubmedArticle> removed --><PubmedArticle>"),
    "a comment naming the root's end": (b"\n<PubmedArticle>", b"\n<!-- </PubmedArticleSet> --><PubmedArticle>"),
    "a PI between records": (b"\n<PubmedArticle>", b"\n<?tool <PubmedArticle> ?><PubmedArticle>"),
    "a '>' in an attribute": (b"<PubmedArticle>", b'<PubmedArticle note="a/>b>c">'),
}


@pytest.mark.parametrize("block", [1 << 20, 13])
@pytest.mark.parametrize("found, hidden", HIDING_PLACES.values(), ids=HIDING_PLACES.keys())
def test_a_tag_inside_a_comment_cdata_pi_or_attribute_value_is_text_not_a_record_boundary(monkeypatch, found, hidden,
                                                                                           block):
    from ingest import slicing

    doc = many_records(3).replace(found, hidden, 2)[:-len(b"</PubmedArticleSet>")]
    assert doc.count(hidden) == 2
    doc += b"<!-- <PubmedArticle> --></PubmedArticleSet>\n<!-- </PubmedArticleSet> -->\n"
    monkeypatch.setattr(slicing, "BLOCK", block)
    monkeypatch.setattr(slicing.safexml, "_CHUNK", 50)
    cut = list(iter_records(io.BytesIO(doc), "hidden.xml"))
    assert [r.to_dict() | {"raw": None} for r in cut] == [r.to_dict() | {"raw": None} for r in tree_read(doc)]
    assert [r.pmid for r in cut] == ["40000000", "40000001", "40000002"]


def test_the_roots_end_tag_may_have_space_before_its_bracket():
    doc = many_records(2).replace(b"</PubmedArticleSet>", b"</PubmedArticleSet\n >")
    assert [r.pmid for r in iter_records(io.BytesIO(doc), "space.xml")] == ["40000000", "40000001"]


def test_a_file_of_one_record_saved_without_its_set_is_read_whole():
    data = (XML / "full_record.xml").read_bytes()
    single = data[:data.index(b"<PubmedArticleSet")] + data[data.index(b"<PubmedArticle>"):
                                                           data.index(b"</PubmedArticle>") + len(b"</PubmedArticle>")]
    (record,) = list(iter_records(io.BytesIO(single), "single.xml"))
    (expected,) = list(iter_records(XML / "full_record.xml"))
    assert {**record.to_dict(), "raw": None} == {**expected.to_dict(), "raw": None}


BROKEN_INSIDE = {
    "a quote that does not close in the start tag": (b"<PubmedArticle>", b'<PubmedArticle note="oops>'),
    "a comment that does not end": (TITLE, in_title(b"a<!-- oops ")),
    "a PI that is not one": (TITLE, in_title(b"a<?b ")),
    "a CDATA section that does not end": (TITLE, in_title(b"a<![CDATA[ oops ")),
}


@pytest.mark.parametrize("block", [1 << 20, 13])
@pytest.mark.parametrize("found, broken", BROKEN_INSIDE.values(), ids=BROKEN_INSIDE.keys())
def test_a_record_broken_by_a_quote_comment_or_pi_that_never_ends_is_a_problem_on_its_own(monkeypatch, found, broken,
                                                                                          block):
    from ingest import slicing

    doc = many_records(4).replace(found, broken, 1)
    assert doc.count(broken) == 1
    monkeypatch.setattr(slicing, "BLOCK", block)
    monkeypatch.setattr(slicing, "HIDDEN_MAX", 3000)  # shorter than the three records after it
    monkeypatch.setattr(slicing.safexml, "_CHUNK", 50)
    records = list(iter_records(io.BytesIO(doc), "broken.xml"))
    assert [type(r) for r in records] == [ParseProblem, Article, Article, Article]
    assert records[0].where == "PMID 40000000"
    assert [r.pmid for r in records[1:]] == ["40000001", "40000002", "40000003"]


def test_a_comment_that_never_ends_between_records_is_an_error_where_it_stands(monkeypatch):
    from ingest import slicing

    doc = many_records(4)
    third = doc.index(b"<PubmedArticle>", doc.index(b"40000001"))
    doc = doc[:third] + b"<!-- dangling\n" + doc[third:]
    monkeypatch.setattr(slicing, "HIDDEN_MAX", 3000)
    records = iter_records(io.BytesIO(doc), "dangling.xml")
    assert [next(records).pmid, next(records).pmid] == ["40000000", "40000001"]
    line = doc[:third].count(b"\n") + 1  # the comment's; lxml names the line after it, where the gap ends
    with pytest.raises(XMLFileError, match=f"dangling.xml: not well-formed XML at line ({line}|{line + 1}), "
                                           "column \\d+: Comment not terminated"):
        list(records)


def test_a_record_whose_end_tag_is_lost_keeps_no_deletion_or_book_that_follows_it():
    book = (XML / "book.xml").read_bytes()
    book = book[book.index(b"<PubmedBookArticle>"):book.index(b"</PubmedBookArticle>") + len(b"</PubmedBookArticle>")]
    doc = many_records(3)
    first_end = doc.index(b"</PubmedArticle>")
    doc = (doc[:first_end] + b"<DeleteCitation><PMID Version=\"1\">123</PMID></DeleteCitation>\n" + book + b"\n"
           + doc[first_end + len(b"</PubmedArticle>"):])
    records = list(iter_records(io.BytesIO(doc), "lost.xml"))
    assert [type(r) for r in records] == [ParseProblem, Deletion, Article, Article, Article]
    assert records[1].pmids == ["123"] and records[2].is_book


@pytest.mark.parametrize("lost", [b"</PubmedBookArticle>", b"</DeleteCitation>"], ids=["a book", "a deletion"])
def test_a_book_or_deletion_whose_end_tag_is_lost_is_a_problem_and_the_articles_after_it_are_read(lost):
    book = (XML / "book.xml").read_bytes()
    book = book[book.index(b"<PubmedBookArticle>"):book.index(b"</PubmedBookArticle>") + len(b"</PubmedBookArticle>")]
    deletion = b"<DeleteCitation><PMID Version=\"1\">123</PMID></DeleteCitation>"
    broken = (book if lost == b"</PubmedBookArticle>" else deletion).replace(lost, b"")
    doc = many_records(3)
    second = doc.index(b"<PubmedArticle>", doc.index(b"40000000"))
    doc = doc[:second] + broken + b"\n" + doc[second:]
    records = list(iter_records(io.BytesIO(doc), "lost.xml"))
    assert [type(r) for r in records] == [Article, ParseProblem, Article, Article]
    assert [records[0].pmid, records[2].pmid, records[3].pmid] == ["40000000", "40000001", "40000002"]


def test_a_broken_record_is_not_split_at_a_start_tag_inside_its_comment():
    doc = many_records(3)
    second = doc.index(b"<ArticleTitle>", doc.index(b"40000001"))
    doc = doc[:second] + b"<ArticleTitle>Salt & ice <!-- <PubmedArticle> --> " + doc[second + len(b"<ArticleTitle>"):]
    records = list(iter_records(io.BytesIO(doc), "amp.xml"))
    assert [type(r) for r in records] == [Article, ParseProblem, Article]
    assert records[1].where == "PMID 40000001"


def test_an_end_tag_between_records_that_closes_nothing_names_the_line_the_set_opens_on():
    doc = whole_records(5301, 5302).replace(b"</PubmedArticle>\n", b"</PubmedArticle>\n</Note>\n", 1)
    assert doc.split(b"\n")[3] == b"<PubmedArticleSet>"
    records = iter_records(io.BytesIO(doc), "closed.xml")
    assert next(records).pmid == "5301"
    with pytest.raises(XMLFileError) as caught:
        list(records)
    line = doc[:doc.index(b"</Note>")].count(b"\n") + 1
    assert str(caught.value) == (f"closed.xml: not well-formed XML at line {line}, column 8: "
                                 "Opening and ending tag mismatch: PubmedArticleSet line 4 and Note")


def test_an_element_left_open_between_records_is_named_against_the_set_not_a_wrapper_of_ours():
    doc = many_records(2).replace(b"</PubmedArticle>\n", b"</PubmedArticle>\n<Note>\n", 1)
    records = iter_records(io.BytesIO(doc), "open.xml")
    assert next(records).pmid == "40000000"
    with pytest.raises(XMLFileError) as caught:
        list(records)
    assert "Note line 2 and PubmedArticleSet" in str(caught.value) and "gap" not in str(caught.value)
