"""MEDLINE text into the same Article as the XML path."""

import io
from pathlib import Path

import pytest

from ingest.medline import (
    iter_records,
    ordered_fields,
    parse_link,
    parse_mesh,
    split_structured_abstract,
)
from ingest.model import Article, ParseProblem
from ingest.pubmed_xml import iter_records as iter_xml_records

HERE = Path(__file__).parent / "data"
MEDLINE = HERE / "medline"


def read(name):
    return list(iter_records(MEDLINE / name))


@pytest.fixture(scope="module")
def full():
    (article,) = read("full_record.nbib")
    return article


def test_full_record_fields(full):
    assert full.pmid == "39990001"
    assert full.source_format == "medline"
    assert full.status == "MEDLINE"
    assert full.title == (
        "Percutaneous CT-guided cryoablation of painful pelvic bone metastases: a two-centre retrospective cohort."
    )
    assert (full.journal.title, full.journal.medline_ta, full.journal.iso_abbreviation) == (
        "Journal of musculoskeletal interventional oncology",
        "J Musculoskelet Interv Oncol",
        None,  # MEDLINE's TA is NLM's abbreviation, not the ISO one
    )
    assert (full.journal.issn, full.journal.issn_linking, full.journal.nlm_unique_id) == (
        "1999-0042",
        "1999-0034",
        "101999042",
    )
    assert (full.volume, full.issue, full.pages) == ("47", "2", "211-219")
    assert (full.pub_date, full.pub_year) == ("2024 Feb 7", 2024)
    assert full.entrez_date == "2023-12-21"  # CRDT (PubStatus "entrez"), not EDAT
    assert (full.revised_date, full.completed_date) == ("2024-11-02", "2024-03-18")
    assert full.languages == ["eng"]
    assert [p.name for p in full.publication_types] == ["Journal Article", "Observational Study"]
    assert all(p.ui is None for p in full.publication_types)
    assert full.keywords == ["cryoablation", "pelvis", "pain palliation"]
    assert (full.doi, full.pmcid) == ("10.5555/jmio.2023.0417", "PMC11990001")


def test_raw_is_the_record_text(full):
    text = full.raw.decode("utf-8")
    assert text.startswith("PMID- 39990001\n")
    assert "SO  - J Musculoskelet Interv Oncol." in text
    assert text == (MEDLINE / "full_record.nbib").read_text(encoding="utf-8")


def test_affiliations_and_orcid_belong_to_the_author_they_follow(full):
    first, second, group = full.authors
    assert (first.last_name, first.fore_name, first.initials) == ("Okonkwo-Lindqvist", "Amara J", "AJ")
    assert first.affiliations == [
        "Department of Interventional Radiology, Northfield University Hospital, Leeds, UK.",
        "Institute of Cancer Imaging, Leeds, UK.",
    ]
    assert first.orcid == "0000-0002-4412-907X"
    # the suffix is dropped, as the XML keeps it apart in <Suffix>
    assert (second.fore_name, second.initials) == ("Thomas", "T")
    assert second.affiliations == ["Department of Radiology, Lakeshore Medical Centre, Toronto, Canada."]
    assert group.collective_name == "Pelvic Ablation Registry Group"


def test_agrees_with_the_xml_version_of_the_same_article(full):
    """The same synthetic article written both ways gives the same Article.

    Differences that come from the format itself: MEDLINE has no UIs, no NlmCategory, no
    ISO journal abbreviation and no PMID version; raw and source_format differ by design.
    """
    (xml,) = list(iter_xml_records(HERE / "xml" / "full_record.xml"))
    a, b = xml.to_dict(), full.to_dict()
    a["journal"]["iso_abbreviation"] = None
    for section in a["abstract_sections"]:
        section["nlm_category"] = None
    for heading in a["mesh_headings"]:
        heading["ui"] = None
        for qualifier in heading["qualifiers"]:
            qualifier["ui"] = None
    for pt in a["publication_types"]:
        pt["ui"] = None
    for d in (a, b):
        d.pop("source_format")
        d.pop("version")
    assert a == b
    assert xml.text == full.text


def test_structured_abstract_is_split_on_inlined_labels():
    structured, plain = read("structured_abstract.txt")
    assert [s.label for s in structured.abstract_sections] == [
        "OBJECTIVE",
        "MATERIALS AND METHODS",
        "PATIENTS/METHODS (ADULTS)",
        "RESULTS",
        "CONCLUSIONS",
        "LEVEL OF EVIDENCE",  # wrapped over a line end in the file
    ]
    assert structured.abstract_sections[1].text == "Sixty-one patients were matched on nidus size and age."
    assert structured.abstract_sections[-1].text == "III."
    assert "OBJECTIVE" not in structured.abstract  # labels left out of the text
    (section,) = plain.abstract_sections
    assert section.label is None
    assert "Lesions seen on MRI: all showed" in section.text


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", []),
        ("No labels at all.", [(None, "No labels at all.")]),
        ("AIMS: One. METHODS: Two.", [("AIMS", "One."), ("METHODS", "Two.")]),
        ("Intro on MRI: text. RESULTS: x.", [(None, "Intro on MRI: text. RESULTS: x.")]),
        ("BACKGROUND: Ratio 3:1 held. CONCLUSION: Fine.", [("BACKGROUND", "Ratio 3:1 held."), ("CONCLUSION", "Fine.")]),
        ("PURPOSE: Seen on CT: yes. RESULTS: ok.", [("PURPOSE", "Seen on CT: yes."), ("RESULTS", "ok.")]),
        (
            "Objective: Pain. Materials and Methods: Ten knees. Results: Less pain.",
            [("Objective", "Pain."), ("Materials and Methods", "Ten knees."), ("Results", "Less pain.")],
        ),
        # one style per abstract: capitals after a title-case start are text, and back
        ("Background: Seen on MRI: x. NOTE: y.", [("Background", "Seen on MRI: x. NOTE: y.")]),
        ("AIMS: One. Results: two.", [("AIMS", "One. Results: two.")]),
    ],
)
def test_split_structured_abstract(text, expected):
    assert [(s.label, s.text) for s in split_structured_abstract(text)] == expected


@pytest.mark.parametrize(
    "value, descriptor, major, qualifiers",
    [
        ("Humans", "Humans", False, []),
        ("*Cryosurgery", "Cryosurgery", True, []),
        ("Neoplasms/*therapy", "Neoplasms", False, [("therapy", True)]),
        (
            "*Bone Neoplasms/diagnostic imaging/secondary",
            "Bone Neoplasms",
            True,
            [("diagnostic imaging", False), ("secondary", False)],
        ),
        ("Spine/*surgery/*pathology", "Spine", False, [("surgery", True), ("pathology", True)]),
    ],
)
def test_parse_mesh(value, descriptor, major, qualifiers):
    heading = parse_mesh(value)
    assert (heading.descriptor, heading.major, heading.ui) == (descriptor, major, None)
    assert [(q.name, q.major) for q in heading.qualifiers] == qualifiers


@pytest.mark.parametrize("lines, authors", [
    # a suffix after the initials is dropped; "II" with no suffix after it is initials
    (["Quillfeather AB Jr", "de la Cruz II", "Okafor CN III"], [("Quillfeather", "AB"), ("de la Cruz", "II"),
                                                                ("Okafor", "CN")]),
    # no initials: "van Gogh" was read as the surname "van" with the initials "Gogh"
    (["van Gogh", "Ostrander K"], [("van Gogh", None), ("Ostrander", "K")]),
    # initials with small letters, as NLM transliterates them
    (["Lazarevskii IuSh", "Skodra Ch", "Vorontsova AIa"], [("Lazarevskii", "IuSh"), ("Skodra", "Ch"),
                                                           ("Vorontsova", "AIa")]),
], ids=["suffixes", "no initials", "initials with small letters"])
def test_an_author_line_with_no_full_name_splits_surname_and_initials(lines, authors):
    text = "PMID- 39990777\nTI  - A synthetic record of an older export.\n" + "".join(f"AU  - {line}\n" for line in lines)
    (record,) = list(iter_records(io.BytesIO(text.encode()), "older.txt"))
    assert [(a.last_name, a.initials) for a in record.authors] == authors


def test_a_publication_type_or_language_written_empty_is_none():
    text = b"PMID- 39990782\nTI  - A synthetic title.\nLA  - \nLA  - eng\nPT  - \nPT  - Journal Article\n"
    (record,) = list(iter_records(io.BytesIO(text), "empty.nbib"))
    assert (record.languages, [pt.name for pt in record.publication_types]) == (["eng"], ["Journal Article"])


@pytest.mark.parametrize("auid, orcid", [
    ("ORCID: 0000-0002-1825-009", "0000-0002-1825-009"),  # one digit short: kept as written, less MEDLINE's prefix
    ("ORCID: ", None),
    ("ORCID: https://orcid.org/0000-0002-1825-0097", "0000-0002-1825-0097"),
])
def test_an_orcid_is_stored_without_the_prefix_medline_writes(auid, orcid):
    text = (f"PMID- 39990779\nTI  - A synthetic title.\nFAU - Ashdown, Maren\nAU  - Ashdown M\nAUID- {auid}\n"
            "SO  - Synthetic J. 2020.\n").encode()
    (record,) = list(iter_records(io.BytesIO(text), "orcid.nbib"))
    assert record.authors[0].orcid == orcid


def test_a_publication_date_without_a_year_takes_the_year_of_the_electronic_one():
    text = b"PMID- 39990780\nTI  - A synthetic title.\nDP  - Winter\nDEP - 20231220\nSO  - Synthetic J. 2023.\n"
    (record,) = list(iter_records(io.BytesIO(text), "dep.nbib"))
    assert (record.pub_date, record.pub_year) == ("Winter", 2023)


def test_authors_of_an_old_record_and_tricky_names():
    modern, old = read("authors.txt")
    assert [(a.last_name, a.fore_name, a.initials) for a in modern.authors[:4]] == [
        ("Achterberg", "Willemijn", "W"),
        ("Sandoval", "Diego A", "DA"),
        ("Whitfield", "Harold", "H"),  # suffix III dropped
        ("Ng", "Ivy Ivana", "II"),  # initials II kept: not a suffix here
    ]
    assert modern.authors[0].orcid == "0000-0001-5550-7712"
    assert len(modern.authors[0].affiliations) == 2
    assert modern.authors[1].affiliations == []
    assert modern.authors[2].affiliations == ["Sarcoma Unit, Harbourview Hospital, Sydney, Australia."]
    assert modern.authors[4].collective_name == "Nordic Cryotherapy Consortium"
    assert [(a.last_name, a.initials) for a in old.authors] == [("Kowalczyk", "JM"), ("van der Berg", "H")]
    # an AD before any author: the article's one affiliation, given to the first author
    assert old.authors[0].affiliations == ["Orthopaedic Oncology Service, Lakeside General Hospital, Denver, CO 80204, USA."]
    assert old.authors[1].affiliations == []


def test_fields_written_empty_make_no_heading_author_or_issn():
    text = (b"PMID- 39000308\nTI  - A synthetic record with empty IS, MH and FAU values.\nIS  - \n"
            b"IS  - 1234-5678 (Linking)\nMH  - /\nMH  - Cryosurgery\nFAU - \nAU  - \nFAU - Ashdown, Maren\n"
            b"AU  - Ashdown M\nSO  - Synthetic J. 2020.\n")
    (record,) = list(iter_records(io.BytesIO(text), "empty.nbib"))
    assert [h.descriptor for h in record.mesh_headings] == ["Cryosurgery"]
    assert [(a.last_name, a.fore_name, a.initials) for a in record.authors] == [("Ashdown", "Maren", "M")]
    assert (record.journal.issn, record.journal.issn_linking) == (None, "1234-5678")


def test_links_and_identifiers():
    (article,) = read("links_and_ids.txt")
    assert [(l.ref_type, l.pmid) for l in article.links] == [
        ("CommentIn", "39991290"),
        ("CommentIn", "39991291"),  # PMID on a continuation line
        ("ErratumIn", None),
        ("RetractionIn", "39991292"),
        ("RetractionOf", "39991293"),
        ("UpdateOf", "39991294"),
    ]
    assert article.links[1].source == "Skeletal Radiol. 2021 Feb;50(2):301; author reply 302-303"
    assert article.links[2].source.endswith("[corrected to Ahmadi, Sarah]")
    assert article.retracted is True
    assert article.doi == "10.5555/lid.only.doi"  # LID when no AID carries a DOI
    assert article.pmcid == "PMC7770001"


def test_parse_link_without_pmid_keeps_the_whole_source():
    link = parse_link("ROF", "Spine J. 2010;10(2):1-2")
    assert (link.ref_type, link.pmid, link.source) == ("RetractionOf", None, "Spine J. 2010;10(2):1-2")


def test_unreadable_records_become_problems_and_parsing_goes_on():
    records = read("malformed.txt")
    assert [type(r) for r in records] == [Article, ParseProblem, ParseProblem, ParseProblem, Article]
    assert (records[0].pmid, records[4].pmid) == ("39991301", "39991305")
    assert records[1].where == "record 2" and "no PMID" in records[1].message
    assert records[2].where == "record 3" and "3999I303" in records[2].message
    assert records[3].where == "PMID 39991304" and "LR" in records[3].message


def test_ordered_fields_join_continuations_and_reject_garbage():
    fields = ordered_fields(["PMID- 1\n", "TI  - a long\n", "      title\n", "AD  - x\n"])
    assert fields == [("PMID", "1"), ("TI", "a long title"), ("AD", "x")]
    with pytest.raises(ValueError, match="neither a field"):
        ordered_fields(["PMID- 1\n", "garbage here\n"])


@pytest.mark.parametrize("garbage", ["------------------------------", "Page-2 of 9", "2019-2020 annual report"])
def test_a_line_with_a_dash_where_a_tag_ends_is_not_a_field_unless_a_tag_comes_before(garbage):
    text = f"PMID- 39991403\nTI  - Cryoablation of a synthetic tumour.\n{garbage}\nDP  - 2020\n"
    (problem,) = list(iter_records(io.BytesIO(text.encode()), "noisy.nbib"))
    assert isinstance(problem, ParseProblem) and "neither a field" in problem.message


def test_a_field_without_the_space_after_its_dash_keeps_its_first_character():
    text = "PMID-39991402\nTI  -Cryoablation of a synthetic tumour.\nAB  -Twelve patients.\n"
    (article,) = list(iter_records(io.BytesIO(text.encode()), "tight.nbib"))
    assert (article.pmid, article.title, article.abstract) == (
        "39991402", "Cryoablation of a synthetic tumour.", "Twelve patients.")


def test_a_pmid_of_digits_other_than_ascii_is_a_problem():
    text = "PMID- ١٢٣\nTI  - Arabic-Indic digits.\n"
    (problem,) = list(iter_records(io.BytesIO(text.encode()), "digits.nbib"))
    assert isinstance(problem, ParseProblem) and "is not a number" in problem.message


def test_a_label_of_many_and_or_reads_at_once():
    """A label pattern that could read "and/or" two ways took minutes on this (each
    repeat doubling the time); a record must read in milliseconds."""
    import time

    started = time.perf_counter()
    sections = split_structured_abstract("Results" + " and/or" * 40 + " none.")
    assert time.perf_counter() - started < 1.0
    assert [s.label for s in sections] == [None]
    assert [s.label for s in split_structured_abstract("Methods and/or Results: x.")] == ["Methods and/or Results"]


def test_a_blank_line_inside_a_field_does_not_end_the_record():
    text = ("PMID- 39991403\nTI  - A synthetic title.\nAB  - First paragraph.\n\n      Second paragraph.\n"
            "LA  - eng\nPT  - Journal Article\n\nPMID- 39991404\nTI  - The next record.\n")
    first, second = list(iter_records(io.BytesIO(text.encode()), "gap.nbib"))
    assert (first.abstract, first.languages) == ("First paragraph. Second paragraph.", ["eng"])
    assert [pt.name for pt in first.publication_types] == ["Journal Article"]
    assert second.title == "The next record."


def test_a_line_of_a_continuation_s_indent_alone_does_not_end_the_record():
    """The record was cut in two there: its first part a problem without SO, the rest one without a PMID."""
    text = ("PMID- 39991405\nTI  - A synthetic title.\nAB  - First paragraph.\n      \n"
            "LA  - eng\nSO  - Synthetic J. 2020.\n\nPMID- 39991406\nTI  - The next record.\nSO  - Synthetic J. 2021.\n")
    first, second = list(iter_records(io.BytesIO(text.encode()), "indent.nbib"))
    assert (first.pmid, first.abstract, first.languages) == ("39991405", "First paragraph.", ["eng"])
    assert second.title == "The next record."


def test_book_records_read_as_the_xml_of_the_same_books_reads():
    xml = list(iter_xml_records(HERE / "xml" / "book.xml"))
    medline = read("book.nbib")
    assert len(xml) == len(medline) == 2
    for from_xml, from_medline in zip(xml, medline):
        assert from_medline.is_book and from_xml.is_book
        assert (from_medline.pmid, from_medline.title, from_medline.pub_year) == (
            from_xml.pmid, from_xml.title, from_xml.pub_year)
        assert [a.display_name for a in from_medline.authors] == [a.display_name for a in from_xml.authors]
        assert [a.affiliations for a in from_medline.authors] == [a.affiliations for a in from_xml.authors]
        assert from_medline.abstract == from_xml.abstract


def test_crlf_line_ends_and_byte_order_mark():
    text = "\ufeffPMID- 39991401\r\nTI  - Windows line ends\r\n      survive.\r\nDP  - 2020\r\n"
    (article,) = list(iter_records(io.BytesIO(text.encode("utf-8")), "win.nbib"))
    assert article.pmid == "39991401"
    assert article.title == "Windows line ends survive."
    (unix,) = list(iter_records(io.BytesIO(text.lstrip("\ufeff").replace("\r\n", "\n").encode()), "unix.nbib"))
    assert article.raw == unix.raw  # the same record, whatever the line ends: not "revised" on import


@pytest.mark.parametrize("line, why", [
    (b"AB  - \xff\xfe broken\n", "line 3 is not UTF-8 text (invalid start byte)"),
    (b"AB  - Cryoablation\x00 of a synthetic lipoma.\n", "line 3 holds a NUL character, which text has no use for"),
], ids=["bytes that are not UTF-8", "a NUL character, which SQLite would cut the text short at"])
def test_a_line_that_is_not_text_makes_its_record_a_problem_naming_it_and_the_next_is_read(line, why):
    data = (b"PMID- 39991501\nTI  - ok\n" + line + b"\n"
            b"PMID- 39991502\nTI  - Cryoablation of a sacral chordoma: a synthetic note.\n")
    problem, article = list(iter_records(io.BytesIO(data), "bad.nbib"))
    assert problem == ParseProblem("bad.nbib", "PMID 39991501", why)
    assert article.pmid == "39991502" and article.title.startswith("Cryoablation of a sacral chordoma")


def test_a_pmid_written_with_leading_zeros_is_that_pmid():
    """As a spreadsheet might save it: stored as written, it made a second article of one citation."""
    text = "PMID- 0039991402\nTI  - Cryoablation of a synthetic tumour.\n\nPMID- 000\nTI  - Zeros only.\n"
    article, problem = list(iter_records(io.BytesIO(text.encode()), "zeros.nbib"))
    assert article.pmid == "39991402"
    assert isinstance(problem, ParseProblem) and "'000' is not a number" in problem.message


def test_a_linked_pmid_written_with_leading_zeros_is_that_pmid():
    text = "PMID- 39991402\nTI  - Cryoablation of a synthetic tumour.\nEIN - J Synth Radiol. 2024;3:1. PMID: 0039990777\n"
    (article,) = list(iter_records(io.BytesIO(text.encode()), "links.nbib"))
    assert [(link.ref_type, link.pmid) for link in article.links] == [("ErratumIn", "39990777")]


# -- line ends and lines that are not MEDLINE's -----------------------------------------


@pytest.mark.parametrize("block", [None, 100], ids=["one read", "read 100 bytes at a time"])
def test_a_file_saved_with_old_mac_line_ends_reads_as_the_same_records(block, monkeypatch):
    """Lines ended by a carriage return alone were one line of a whole file: nothing
    stored, and a "problem" quoting all of it."""
    import ingest.medline

    if block:  # line ends that fall between two reads
        monkeypatch.setattr(ingest.medline, "BLOCK", block)
    text = b"".join((MEDLINE / name).read_bytes() + b"\n" for name in ("authors.txt", "structured_abstract.txt"))
    as_written = list(iter_records(io.BytesIO(text), "export.nbib"))
    old_mac = list(iter_records(io.BytesIO(text.replace(b"\n", b"\r")), "export.nbib"))
    assert len(as_written) > 2 and not [r for r in as_written if isinstance(r, ParseProblem)]
    assert old_mac == as_written  # their raw text included: line ends as LF


@pytest.mark.parametrize("block", [None, 100], ids=["one read", "read 100 bytes at a time"])
@pytest.mark.parametrize("end", [b"\n", b"\r\n"], ids=["LF", "CRLF"])
def test_a_line_longer_than_any_field_costs_its_record_and_is_not_held(monkeypatch, block, end):
    import ingest.medline

    monkeypatch.setattr(ingest.medline, "MAX_LINE", 256)
    if block:
        monkeypatch.setattr(ingest.medline, "BLOCK", block)
    text = (b"PMID- 39991601\nTI  - " + b"x" * 5000 + b"\nAB  - Its abstract.\n\n"
            b"PMID- 39991602\nTI  - Cryoablation of a synthetic desmoid tumour.\n").replace(b"\n", end)
    problem, article = list(iter_records(io.BytesIO(text), "long.nbib"))
    assert problem == ParseProblem("long.nbib", "PMID 39991601",
                                   "line 2 is longer than 256 bytes, which no MEDLINE field is")
    assert (article.pmid, article.title) == ("39991602", "Cryoablation of a synthetic desmoid tumour.")


def test_a_record_longer_than_any_record_is_a_problem_read_past_without_being_held(monkeypatch):
    """Each line short, the record endless: held whole, it took 17 times its size in memory."""
    import ingest.medline

    monkeypatch.setattr(ingest.medline, "MAX_RECORD", 4096)
    held = []
    split = ingest.medline.split_records
    monkeypatch.setattr(ingest.medline, "split_records", lambda lines: (held.append(len(r)) or (s, r)
                                                                        for s, r in split(lines)))
    text = (b"PMID- 39991611\nTI  - Cryoablation of a synthetic chondroma.\nSO  - x\n\n"
            b"PMID- 39991612\nTI  - An endless record.\nAB  - Words\n" + b"      and more words\n" * 20000 +
            b"SO  - x\n\nPMID- 39991613\nTI  - Cryoablation of a synthetic osteoid osteoma.\nSO  - x\n")
    first, problem, last = list(iter_records(io.BytesIO(text), "endless.nbib"))
    assert (first.pmid, last.pmid) == ("39991611", "39991613")
    assert problem == ParseProblem("endless.nbib", "PMID 39991612",
                                   "the record from line 5 is longer than 4,096 characters, which no MEDLINE record is")
    assert max(held) < 4096 // 10  # lines held of the endless record: those under the limit, and the note


def test_a_stray_carriage_return_in_a_file_of_lf_lines_stays_in_its_line():
    text = b"PMID- 39991751\nTI  - Cryoablation of a synthetic\r enchondroma.\nSO  - x\n"
    (article,) = list(iter_records(io.BytesIO(text), "stray.nbib"))
    assert article.title == "Cryoablation of a synthetic enchondroma."


def test_what_a_problem_quotes_of_its_record_is_cut_short():
    written = ("3999 " + "OWN - NLM " * 10_000).strip()
    text = f"PMID- {written}\nTI  - A title.\n".encode()
    (problem,) = list(iter_records(io.BytesIO(text), "joined.nbib"))
    assert isinstance(problem, ParseProblem) and len(problem.message) < 200
    assert problem.message.startswith("PMID '3999 OWN - NLM") and f"({len(written)} characters)" in problem.message


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_lines_come_out_whole_wherever_the_blocks_they_are_read_in_end(end, monkeypatch):
    """Random lines, blocks and limits against the plain split: every line as written, a
    line over the limit as None (read past), nothing else lost or joined."""
    import random

    import ingest.medline

    rng = random.Random(20261129)
    for _ in range(300):
        longest, block = rng.randint(5, 40), rng.randint(1, 50)
        monkeypatch.setattr(ingest.medline, "MAX_LINE", longest)
        monkeypatch.setattr(ingest.medline, "BLOCK", block)
        lines = [bytes(rng.choice(b"ab \t-") for _ in range(rng.choice([0, 3, 10, 30, 60]))) + end
                 for _ in range(rng.randint(1, 12))]
        if rng.random() < 0.3:
            lines[-1] = lines[-1][:-len(end)] or b"x"  # a last line without its end
        expected = [line if len(line) <= longest else None for line in lines]
        assert list(ingest.medline._raw_lines(io.BytesIO(b"".join(lines)))) == expected, (longest, block, lines)


def test_exports_saved_with_a_byte_order_mark_and_joined_lose_no_record():
    """`cat a.nbib b.nbib | cryokb import -` where an editor saved each file with a mark:
    the second file's mark stands before its first PMID line."""
    def export(*pmids):
        return "\ufeff" + "".join(f"PMID- {pmid}\nTI  - Cryoablation of a desmoid tumour, case {pmid}.\n"
                                  f"DP  - 2021 Mar\nSO  - J Invent Stud. 2021 Mar;3(4):10-20.\n\n" for pmid in pmids)

    joined = (export("39990501", "39990502") + export("39990503", "39990504")).encode()
    read = list(iter_records(io.BytesIO(joined), "joined.nbib"))
    assert [r.pmid for r in read] == ["39990501", "39990502", "39990503", "39990504"]
    assert all(isinstance(r, Article) and not r.raw.startswith("\ufeff".encode()) for r in read)
