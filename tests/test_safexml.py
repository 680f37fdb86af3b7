"""Documents that declare entities are refused before lxml parses them."""

import io
from pathlib import Path

import pytest
from lxml import etree

from ingest import safexml
from ingest.pubmed_xml import iter_records
from ingest.safexml import PrefixedStream, UnsafeXMLError, check_prolog, checked_head, parse_bytes

XML = Path(__file__).parent / "data" / "xml"

NCBI_PROLOG = (
    b'<?xml version="1.0" ?>\n'
    b'<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
    b'"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n'
)
RECORD = b'<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID Version="1">39990900</PMID><Article><ArticleTitle>Ice ball</ArticleTitle></Article></MedlineCitation></PubmedArticle></PubmedArticleSet>'


@pytest.mark.parametrize("fixture", ["billion_laughs.xml", "xxe.xml"])
def test_entity_declaring_documents_are_refused_with_the_file_named(fixture):
    path = XML / fixture
    with pytest.raises(UnsafeXMLError) as caught:
        list(iter_records(path))
    message = str(caught.value)
    assert str(path) in message
    assert f"{path}: its prolog declares XML entities" in message
    assert "billion laughs" in message and "XXE" in message


def test_xxe_never_reads_the_local_file():
    with pytest.raises(UnsafeXMLError) as caught:
        list(iter_records(XML / "xxe.xml"))
    passwd = Path("/etc/passwd")
    if passwd.exists():
        first_line = passwd.read_text(errors="replace").splitlines()[0]
        assert first_line not in str(caught.value)
    assert "root:" not in str(caught.value)


def test_real_ncbi_doctype_with_public_id_and_url_is_accepted():
    check_prolog(NCBI_PROLOG + RECORD, "efetch.xml")
    records = list(iter_records(io.BytesIO(NCBI_PROLOG + RECORD), "efetch.xml"))
    assert [r.pmid for r in records] == ["39990900"]


def test_internal_subset_without_entities_is_accepted():
    doc = b'<?xml version="1.0"?><!DOCTYPE PubmedArticleSet [<!ATTLIST PMID Version CDATA "1">]>' + RECORD
    check_prolog(doc, "attlist.xml")


def test_parameter_entities_are_refused_too():
    doc = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY % remote SYSTEM "http://127.0.0.1/evil.dtd"> %remote;]><x/>'
    with pytest.raises(UnsafeXMLError, match="param.xml"):
        check_prolog(doc, "param.xml")


def test_a_quoted_bracket_does_not_hide_a_later_entity_declaration():
    doc = b'<!DOCTYPE x [<!ATTLIST a b CDATA "]>"> <!ENTITY e SYSTEM "file:///etc/hostname">]><x>&e;</x>'
    with pytest.raises(UnsafeXMLError):
        check_prolog(doc, "trick.xml")


def test_entities_written_in_utf16_are_refused():
    text = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>'
    with pytest.raises(UnsafeXMLError):
        check_prolog(text.encode("utf-16"), "utf16.xml")


@pytest.mark.parametrize("encoding", ["utf-32-le", "utf-32-be", "utf-7"])
def test_entities_written_in_other_encodings_without_a_byte_order_mark_are_refused(encoding):
    name = encoding.upper()
    text = f'<?xml version="1.0" encoding="{name}"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/hostname">]><x>&e;</x>'
    with pytest.raises(UnsafeXMLError):
        check_prolog(text.encode(encoding), f"{encoding}.xml")


def test_comments_before_the_doctype_do_not_hide_it():
    doc = b"<?xml version='1.0'?><!-- a note --><!-- another --><!DOCTYPE x [<!ENTITY e 'x'>]><x/>"
    with pytest.raises(UnsafeXMLError):
        check_prolog(doc, "commented.xml")


def test_prolog_check_reads_past_a_small_first_chunk(monkeypatch):
    monkeypatch.setattr(safexml, "_CHUNK", 16)
    doc = b"<?xml version='1.0'?>" + b"<!--" + b" padding " * 20 + b"-->" + b"<!DOCTYPE x [<!ENTITY e 'x'>]><x/>"
    with pytest.raises(UnsafeXMLError):
        checked_head(io.BytesIO(doc), "chunked.xml")


def test_the_checked_head_and_the_rest_hand_on_every_byte():
    doc = NCBI_PROLOG + RECORD
    source = io.BytesIO(doc)
    stream = PrefixedStream(checked_head(source, "efetch.xml"), source)
    out = b""
    while chunk := stream.read(7):
        out += chunk
    assert out == doc


def test_parse_bytes_refuses_entities_and_parses_clean_replies():
    with pytest.raises(UnsafeXMLError):
        parse_bytes((XML / "billion_laughs.xml").read_bytes(), "reply")
    root = parse_bytes(NCBI_PROLOG + RECORD, "reply")
    assert root.findtext(".//PMID") == "39990900"


def test_lxml_options_alone_do_not_resolve_external_entities(tmp_path):
    """Second line of defence: even without the prolog check, no file is read."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    doc = f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY s SYSTEM "{secret.as_uri()}">]><x>&s;</x>'.encode()
    parser = etree.XMLParser(**safexml.PARSER_OPTIONS)
    root = etree.fromstring(doc, parser=parser)
    assert "TOP-SECRET-CONTENT" not in etree.tostring(root, encoding="unicode")
    assert "TOP-SECRET-CONTENT" not in "".join(root.itertext())


def test_an_apostrophe_in_a_comment_of_the_internal_subset_opens_no_literal():
    doc = (b"<?xml version=\"1.0\"?>\n<!DOCTYPE PubmedArticleSet [ <!-- the subset's comment --> "
           b"<!ELEMENT Extra ANY> <?tool it's fine?> ]>\n" + RECORD)
    assert [r.pmid for r in iter_records(io.BytesIO(doc), "subset.xml")] == ["39990900"]
    hidden = doc.replace(b"<!ELEMENT Extra ANY>", b'<!ENTITY lol "lol">')
    with pytest.raises(UnsafeXMLError, match="subset.xml: its prolog declares XML entities"):
        list(iter_records(io.BytesIO(hidden), "subset.xml"))


SMUGGLED = (b'<?xml version="1.0" encoding="ISO-8859-1"?>\n<!-- an old <!DOCTYPE -->\n'
            b'<!DOCTYPE PubmedArticleSet [<!ENTITY v "7">]>\n'
            + RECORD.replace(b'Version="1"', b'Version="&v;"'))


def test_a_doctype_written_in_a_comment_does_not_hide_the_real_one():
    with pytest.raises(UnsafeXMLError, match="smuggled.xml: its prolog declares XML entities"):
        list(iter_records(io.BytesIO(SMUGGLED), "smuggled.xml"))
    with pytest.raises(UnsafeXMLError, match="efetch reply: its prolog declares XML entities"):
        parse_bytes(SMUGGLED, "efetch reply")


def test_what_gets_past_the_prolog_check_meets_the_parsers_own_reading_of_the_dtd(monkeypatch):
    """lxml expands declared entities in attribute values even with resolve_entities off,
    so a document parsed whole is refused on what libxml2 declared, before anything is read."""
    monkeypatch.setattr(safexml, "check_prolog", lambda head, name: None)
    whole = SMUGGLED.replace(b"<PubmedArticleSet>", b'<PubmedArticleSet xmlns:note="urn:example:note">', 1)
    with pytest.raises(UnsafeXMLError, match="smuggled.xml: its prolog declares XML entities"):
        list(iter_records(io.BytesIO(whole), "smuggled.xml"))  # a namespace on the root: read whole
    with pytest.raises(UnsafeXMLError, match="efetch reply: its prolog declares XML entities"):
        parse_bytes(SMUGGLED, "efetch reply")


def test_a_record_cut_out_of_a_recoded_document_meets_no_declaration(monkeypatch):
    """Re-encoded from Latin-1 and cut out, the record is parsed without the DOCTYPE: its
    entity is undefined, the record reported, nothing expanded."""
    monkeypatch.setattr(safexml, "check_prolog", lambda head, name: None)
    (record,) = list(iter_records(io.BytesIO(SMUGGLED), "smuggled.xml"))
    assert record.where == "PMID 39990900" and "Entity 'v' not defined" in record.message


def test_an_encoding_python_cannot_decode_with_is_left_to_the_parser_not_a_traceback():
    from ingest.pubmed_xml import XMLFileError

    doc = b'<?xml version="1.0" encoding="idna"?>\n' + RECORD
    with pytest.raises(XMLFileError, match="idna.xml: not well-formed XML at line 1, .*Unsupported encoding"):
        list(iter_records(io.BytesIO(doc), "idna.xml"))


def test_a_comment_opened_with_an_arrow_does_not_end_where_it_begins():
    """"<!-->" opens a comment: what follows it is inside it until "-->", as for the parser."""
    doc = (b'<?xml version="1.0"?>\n<!--><x>-->\n<!DOCTYPE PubmedArticleSet [<!ENTITY e "EXPANDED">]>\n'
           + RECORD.replace(b"Ice ball", b"&e;"))
    with pytest.raises(UnsafeXMLError, match="arrow.xml: its prolog declares XML entities"):
        check_prolog(doc, "arrow.xml")
