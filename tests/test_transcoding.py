"""PubMed XML saved in Latin-1, Windows-1252 or UTF-16 is read as its UTF-8 copy is, a
record at a time: a malformed record costs only itself, as in a UTF-8 file."""

from __future__ import annotations

import codecs
import io
import sqlite3
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from ingest import slicing, transcoding
from ingest.model import Article, ParseProblem
from ingest.pubmed_xml import iter_records
from ingest.transcoding import EncodingError
from kb.cli import cli

XML = Path(__file__).parent / "data" / "xml"
TITLE = "Cryoablation of a desmo\u00efd tumour of the pied: caf\u00e9-au-lait findings \u2013 a case"

# (the encoding a file is written in, its XML declaration's name for it, its byte order mark)
ENCODINGS = [
    ("latin-1", "ISO-8859-1", b""),
    ("cp1252", "windows-1252", b""),
    ("utf-16-le", "UTF-16", b"\xff\xfe"),
    ("utf-16-be", "UTF-16", b"\xfe\xff"),
]
IDS = ["Latin-1", "Windows-1252", "UTF-16 LE", "UTF-16 BE"]


def document(n: int = 5) -> str:
    """A PubMed document of ``n`` records, as text (no XML declaration), titled with
    characters outside ASCII."""
    data = (XML / "update_with_deletions.xml").read_text(encoding="utf-8")
    record = data.split("<PubmedArticle>")[1].split("</PubmedArticle>")[0]
    title = record[record.index("<ArticleTitle>") : record.index("</ArticleTitle>") + len("</ArticleTitle>")]
    record = record.replace(title, f"<ArticleTitle>{TITLE}</ArticleTitle>")
    body = "".join(f"<PubmedArticle>{record.replace('39990401', str(40000000 + i))}</PubmedArticle>\n"
                   for i in range(n))
    return f"<PubmedArticleSet>\n{body}</PubmedArticleSet>\n"


def encoded(text: str, encoding: str, declared: str, bom: bytes) -> bytes:
    if encoding == "latin-1":
        text = text.replace("\u2013", "-")  # Latin-1 has no en dash
    return bom + f'<?xml version="1.0" encoding="{declared}"?>\n{text}'.encode(encoding)


def read(doc: bytes, name: str = "saved.xml") -> list:
    return list(iter_records(io.BytesIO(doc), name))


@pytest.mark.parametrize("encoding, declared, bom", ENCODINGS, ids=IDS)
def test_a_document_in_another_encoding_gives_the_articles_of_its_utf8_copy(encoding, declared, bom):
    text = document()
    if encoding == "latin-1":
        text = text.replace("\u2013", "-")  # Latin-1 has no en dash
    expected = read(encoded(text, "utf-8", "UTF-8", b""))
    records = read(encoded(text, encoding, declared, bom))
    assert len(records) == 5 and all(isinstance(r, Article) for r in records)
    assert [{**r.to_dict(), "raw": None} for r in records] == [{**r.to_dict(), "raw": None} for r in expected]
    assert records[0].title.startswith("Cryoablation of a desmo\u00efd tumour of the pied: caf\u00e9")
    # the raw XML kept is UTF-8 now, and says the same
    assert [etree.tostring(etree.fromstring(r.raw)) for r in records] == [
        etree.tostring(etree.fromstring(r.raw)) for r in expected]


@pytest.mark.parametrize("encoding, declared, bom", ENCODINGS, ids=IDS)
def test_a_malformed_record_in_another_encoding_costs_only_itself(encoding, declared, bom):
    text = document().replace("<PubmedArticle><MedlineCitation", "<PubmedArticle><MedlineCitation broken", 1)
    text = text.replace("40000002</PMID>", "40000002</PMID><Oops>", 1)
    records = read(encoded(text, encoding, declared, bom))
    problems = [r for r in records if isinstance(r, ParseProblem)]
    assert [r.pmid for r in records if isinstance(r, Article)] == ["40000001", "40000003", "40000004"]
    assert [p.where for p in problems] == ["PMID 40000000", "PMID 40000002"]


def test_bytes_that_are_not_the_declared_encoding_stop_the_file_at_that_byte():
    doc = encoded(document(), "cp1252", "windows-1252", b"")
    third = doc.index(b"40000002")
    doc = doc[:third] + b"\x81" + doc[third:]  # no character in Windows-1252
    records = []
    with pytest.raises(EncodingError, match=rf"^saved.xml: byte {third + 1:,} is not windows-1252 text, "
                                            r"as the document's encoding says"):
        for record in iter_records(io.BytesIO(doc), "saved.xml"):
            records.append(record)
    assert [r.pmid for r in records] == ["40000000", "40000001"]


def test_a_split_character_at_a_read_boundary_is_decoded_whole(monkeypatch):
    """UTF-16 read in blocks of an odd size: each block ends inside a character."""
    monkeypatch.setattr(slicing, "BLOCK", 4097)
    doc = encoded(document(40), "utf-16-le", "UTF-16", b"\xff\xfe")
    records = read(doc)
    assert len(records) == 40 and {r.title for r in records} == {TITLE}


def test_a_recoded_document_is_read_a_block_at_a_time(monkeypatch):
    monkeypatch.setattr(slicing, "BLOCK", 4096)
    asked = []
    original = transcoding.Utf8Stream.read

    def spy(stream, size=-1):
        data = original(stream, size)
        asked.append((size, len(stream._pending)))
        return data

    monkeypatch.setattr(transcoding.Utf8Stream, "read", spy)
    doc = encoded(document(300), "latin-1", "ISO-8859-1", b"")
    assert len(read(doc)) == 300
    assert len(asked) >= (len(doc) - 65536) // 4096 and all(size == 4096 for size, _ in asked)
    assert max(held for _, held in asked) <= transcoding.READ_SIZE  # what one read of the file brings, no more


@pytest.mark.parametrize("head", [
    b'<?xml version="1.0" encoding="idna"?>\n<PubmedArticleSet>',
    b'<?xml version="1.0" encoding="unicode_escape"?>\n<PubmedArticleSet>',
    b'<?xml version="1.0" encoding="raw_unicode_escape"?>\n<PubmedArticleSet>',  # "\\u003c" would read "<"
    b'<?xml version="1.0" encoding="charmap"?>\n<PubmedArticleSet>',
    b'<?xml version="1.0" encoding="base64"?>\n<PubmedArticleSet>',  # a codec, but not for text
    b'<?xml version="1.0" encoding="no-such-encoding"?>\n<PubmedArticleSet>',
    b'<?xml version="1.0" encoding="UTF-16"?>\n<PubmedArticleSet>',  # says UTF-16, written in ASCII
    b'\xef\xbb\xbf<?xml version="1.0" encoding="ISO-8859-1"?>\n<PubmedArticleSet>',  # says Latin-1, marked UTF-8
    "<PubmedArticleSet>".encode("utf-32"),
], ids=["idna", "unicode_escape", "raw_unicode_escape", "charmap", "base64", "unknown", "UTF-16 in ASCII", "UTF-8 mark", "UTF-32"])
def test_what_is_not_plainly_a_character_encoding_to_recode_is_left_to_the_parser(head):
    assert transcoding.codec_of(head) is None


def test_an_import_of_a_latin1_file_stores_its_text_and_skips_its_broken_record(tmp_path):
    path = tmp_path / "saved.xml"
    text = document().replace("40000002</PMID>", "40000002</PMID><Oops>", 1)
    path.write_bytes(encoded(text, "latin-1", "ISO-8859-1", b""))
    result = CliRunner().invoke(cli, ["import", "--db", str(tmp_path / "kb.db"), str(path)])
    assert result.exit_code == 0, result.output
    assert "PMID 40000002" in result.output
    with sqlite3.connect(tmp_path / "kb.db") as conn:
        rows = conn.execute("select pmid, title from articles order by pmid").fetchall()
    assert [pmid for pmid, _ in rows] == ["40000000", "40000001", "40000003", "40000004"]
    assert {title for _, title in rows} == {TITLE.replace("\u2013", "-")}


@pytest.mark.parametrize("codec, declared", [("shift_jis", "Shift_JIS"), ("euc_jp", "EUC-JP")])
def test_a_character_begun_in_one_read_survives_a_bad_byte_in_the_next(codec, declared):
    """The CJK decoders drop a character begun in the last read when a later byte fails:
    decoded again up to the bad byte, a title came out as mojibake (or a traceback)."""
    title = "\u51cd\u7d50\u7642\u6cd5\u306e\u7814\u7a76"
    text = document(400).replace(TITLE, title)
    unpadded = encoded(text, codec, declared, b"")
    first_read = 65536  # what the prolog check reads
    pad = first_read - 1 - unpadded.index(title.encode(codec), first_read - 1000)  # to end it inside a character
    doc = encoded(text.replace("<PubmedArticleSet>", "<PubmedArticleSet>" + " " * pad), codec, declared, b"")
    decoder = codecs.getincrementaldecoder(codec)()
    decoder.decode(doc[:first_read])
    assert decoder.getstate()[0]
    at = doc.index(b"40000300")
    records = []
    with pytest.raises(EncodingError, match=rf"byte {at + 1:,} is not {declared} text"):
        for record in iter_records(io.BytesIO(doc[:at] + b"\x81\x20" + doc[at:]), "saved.xml"):
            records.append(record)
    assert len(records) == 300 and {r.title for r in records} == {title}


@pytest.mark.parametrize("declared", ["UTF8", "u8", "utf_8", "US-ASCII"])
def test_utf8_however_its_declaration_spells_it_is_cut_a_record_at_a_time(declared):
    text = document().replace("40000002</PMID>", "40000002</PMID><Oops>", 1)
    records = read(f'<?xml version="1.0" encoding="{declared}"?>\n{text}'.replace(TITLE, "Plain").encode("ascii"))
    assert [r.pmid if isinstance(r, Article) else r.where for r in records] == [
        "40000000", "40000001", "PMID 40000002", "40000003", "40000004"]


def test_a_gzip_cut_short_inside_a_utf16_character_is_said_to_be_cut_short(tmp_path):
    from ingest.readers import ReadError, read_records

    data = encoded(document(2000), "utf-16-le", "UTF-16", b"\xff\xfe")
    packer = zlib.compressobj(wbits=31)  # gzip
    half = len(data) // 2 | 1  # an odd count of bytes: the file ends inside a character
    path = tmp_path / "saved.xml.gz"
    path.write_bytes(packer.compress(data[:half]) + packer.flush(zlib.Z_SYNC_FLUSH))  # and there it stops
    with pytest.raises(ReadError, match="saved.xml.gz: cannot decompress"):
        list(read_records(path))


def test_a_broken_escape_the_decoder_gives_no_position_for_still_keeps_the_records_before_it():
    """ISO-2022-JP's decoder raises a bare UnicodeError ("pending buffer overflow") for an
    escape cut off by a read: it was a traceback, and said no byte."""
    head = '<?xml version="1.0" encoding="ISO-2022-JP"?>\n<PubmedArticleSet>\n'
    first = document(1).split("<PubmedArticle>", 1)[1].split("</PubmedArticle>")[0]
    record = "<PubmedArticle>" + first.replace(TITLE, "\u6c37\u306e\u7814\u7a76") + "</PubmedArticle>\n"
    body = (head + record).encode("iso2022_jp")
    broken = b"\x1b$BI9\x1b(\x1b  \xd8a...\x1b$B?e\x1b(B."  # "ESC (" followed by neither B nor J
    filler = b"<!--" + b"f" * (transcoding.READ_SIZE - len(body) - 25) + b"-->"
    doc = body + filler + b"<!--" + broken + b"-->" + record.replace("40000000", "40000001").encode() + \
        b"</PubmedArticleSet>\n"
    records = []
    with pytest.raises(EncodingError, match=r"saved.xml: byte [\d,]+ is not ISO-2022-JP text"):
        for record_read in iter_records(io.BytesIO(doc), "saved.xml"):
            records.append(record_read)
    assert [r.pmid for r in records] == ["40000000"]
