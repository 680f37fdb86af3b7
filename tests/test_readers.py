"""read_records: gzip opened transparently, format sniffed from the bytes, not the name."""

import bz2
import gzip
import lzma
import random
import zlib
from pathlib import Path

import pytest

from ingest.model import Article, Deletion
from ingest.pubmed_xml import XMLFileError
from ingest.readers import ReadError, read_records, sniff_format
from ingest.safexml import UnsafeXMLError

DATA = Path(__file__).parent / "data"
XML_FILE = DATA / "xml" / "update_with_deletions.xml"
MEDLINE_FILE = DATA / "medline" / "full_record.nbib"


def copy_as(tmp_path, source, name, compress=False):
    target = tmp_path / name
    data = source.read_bytes()
    target.write_bytes(gzip.compress(data) if compress else data)
    return target


@pytest.mark.parametrize(
    "head, expected",
    [
        (b'<?xml version="1.0"?><PubmedArticleSet>', "xml"),
        (b"\n\n  <PubmedArticleSet>", "xml"),
        (b"\xef\xbb\xbf<?xml version='1.0'?>", "xml"),
        (b"PMID- 39990001\nOWN - NLM\n", "medline"),
        (b"\nPMID- 39990001\n", "medline"),
        (b"\r\nPMID- 39990001\r\n", "medline"),
        (b"%PDF-1.7\n", None),
        (b"TY  - JOUR\nTI  - an RIS file\n", None),
        (b"", None),
    ],
)
def test_sniff_format(head, expected):
    assert sniff_format(head) == expected


@pytest.mark.parametrize("compress", [False, True])
def test_xml_is_read_whatever_the_name(tmp_path, compress):
    path = copy_as(tmp_path, XML_FILE, "download.txt", compress)
    records = list(read_records(path))
    assert [type(r) for r in records] == [Article, Article, Deletion]
    assert records[0].source_format == "xml"


@pytest.mark.parametrize("compress", [False, True])
def test_medline_is_read_whatever_the_name(tmp_path, compress):
    path = copy_as(tmp_path, MEDLINE_FILE, "export.xml.gz" if compress else "export.xml", compress)
    (article,) = list(read_records(path))
    assert article.source_format == "medline"
    assert article.pmid == "39990001"
    assert article.raw == MEDLINE_FILE.read_bytes()


def test_large_medline_file_keeps_records_across_the_sniffed_prefix(tmp_path):
    """Records are read intact across the boundary of the bytes kept for sniffing."""
    record = MEDLINE_FILE.read_text(encoding="utf-8")
    copies = [record.replace("39990001", str(39000000 + i)) for i in range(120)]  # ~350 kB
    path = tmp_path / "many.nbib"
    path.write_bytes(gzip.compress("\n".join(copies).encode("utf-8")))
    articles = list(read_records(path))
    assert [a.pmid for a in articles] == [str(39000000 + i) for i in range(120)]
    assert all(len(a.authors) == 3 and len(a.abstract_sections) == 4 for a in articles)


def test_missing_file_names_it(tmp_path):
    missing = tmp_path / "nope.xml.gz"
    with pytest.raises(ReadError, match="nope.xml.gz: cannot open"):
        list(read_records(missing))


def test_unknown_format_names_the_file(tmp_path):
    path = tmp_path / "paper.xml"
    path.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    with pytest.raises(ReadError, match="paper.xml: neither PubMed XML nor MEDLINE"):
        list(read_records(path))


def _zipped(data: bytes) -> bytes:
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("pubmed.xml", data)
    return out.getvalue()


@pytest.mark.parametrize("pack, said", [
    (bz2.compress, "a bzip2 file"),
    (lzma.compress, "an xz file"),
    (_zipped, "a zip archive"),
], ids=["bzip2", "xz", "zip"])
def test_a_file_packed_another_way_than_gzip_is_said_to_be_so(tmp_path, pack, said):
    """It was "neither PubMed XML nor MEDLINE text (first bytes b'BZh91AY&SY...')"."""
    path = tmp_path / "pubmed.xml.packed"
    path.write_bytes(pack(b"<PubmedArticleSet></PubmedArticleSet>"))
    with pytest.raises(ReadError, match=f"pubmed.xml.packed: {said}: decompress it first"):
        list(read_records(path))


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzipped"])
def test_an_empty_file_is_called_empty(tmp_path, compress):
    path = tmp_path / "empty.xml"
    path.write_bytes(gzip.compress(b"") if compress else b"")
    with pytest.raises(ReadError, match="empty.xml: the file is empty$"):
        list(read_records(path))


def test_corrupt_gzip_names_the_file(tmp_path):
    path = tmp_path / "broken.xml.gz"
    data = gzip.compress(XML_FILE.read_bytes())
    path.write_bytes(data[:10] + b"\x00" * 40 + data[50:])
    with pytest.raises(ReadError, match="broken.xml.gz: cannot decompress"):
        list(read_records(path))


def many_copies(record: bytes, old_pmid: bytes, n: int) -> list[bytes]:
    return [record.replace(old_pmid, str(39000000 + i).encode()) for i in range(n)]


def padded_records(n: int) -> list[bytes]:
    """n records, each with incompressible padding in its title: 3,000 make about 700 KB of
    gzip, more than the decompressor is given at once (gunzip.COMPRESSED_CHUNK)."""
    body = XML_FILE.read_bytes()
    record = body[body.index(b"<PubmedArticle>") : body.index(b"</PubmedArticle>") + len(b"</PubmedArticle>")]
    noise = random.Random(20261129)
    return [r.replace(b"</ArticleTitle>", f" {noise.getrandbits(1600):x}</ArticleTitle>".encode())
            for r in many_copies(record, b"39990401", n)]


def test_gzip_cut_short_yields_earlier_xml_records_then_names_the_file(tmp_path):
    data = gzip.compress(b"<PubmedArticleSet>\n" + b"\n".join(padded_records(3000)) + b"\n</PubmedArticleSet>")
    path = tmp_path / "cut.xml.gz"
    path.write_bytes(data[: len(data) // 2])
    read = []
    with pytest.raises(ReadError, match="cut.xml.gz: cannot decompress"):
        for r in read_records(path):
            read.append(r.pmid)
    assert 100 < len(read) < 3000
    assert read == [str(39000000 + i) for i in range(len(read))]
    # every record whole in what the cut file still decompresses to, not only those of earlier reads
    whole = zlib.decompressobj(31).decompress(data[: len(data) // 2]).count(b"</PubmedArticle>")
    assert len(read) == whole


def decompressed_before_damage(data: bytes) -> bytes:
    """What zlib gives for ``data`` fed a byte at a time, up to its error: the oracle."""
    z, out = zlib.decompressobj(31), []
    for i in range(len(data)):
        try:
            out.append(z.decompress(data[i : i + 1]))
        except zlib.error:
            break
    return b"".join(out)


def articles_until_error(path, error: str = "cannot decompress") -> list[str]:
    read = []
    with pytest.raises((ReadError, XMLFileError), match=f"{path.name}: {error}"):
        for r in read_records(path):
            if isinstance(r, Article):
                read.append(r.pmid)
    return read


def test_a_gzip_whose_checksum_is_wrong_yields_every_record_then_names_the_file(tmp_path):
    records = padded_records(3000)
    data = bytearray(gzip.compress(b"<PubmedArticleSet>\n" + b"\n".join(records) + b"\n</PubmedArticleSet>"))
    data[-6] ^= 0xFF  # the CRC-32 of the trailer, checked once all the data is decompressed
    path = tmp_path / "crc.xml.gz"
    path.write_bytes(bytes(data))
    # damage the checksum finds may lie anywhere: the records read are not vouched for
    damaged = "damaged: its gzip checksum does not match what it decompressed to, so any record read from it may be wrong"
    assert articles_until_error(path, damaged) == [str(39000000 + i) for i in range(3000)]


def test_a_gzip_damaged_midway_yields_every_record_before_the_damage(tmp_path):
    original = b"<PubmedArticleSet>\n" + b"\n".join(padded_records(3000)) + b"\n</PubmedArticleSet>"
    data = bytearray(gzip.compress(original))
    data[len(data) * 2 // 3 :: 997] = bytes(len(data[len(data) * 2 // 3 :: 997]))  # blocks zeroed past two thirds
    path = tmp_path / "damaged.xml.gz"
    path.write_bytes(bytes(data))
    good = decompressed_before_damage(bytes(data))
    intact = next(i for i, (a, b) in enumerate(zip(good + b"\0", original)) if a != b)
    whole = original[:intact].count(b"</PubmedArticle>")
    read = articles_until_error(path, error="")  # the bytes before the zlib error may be garbage, not XML
    assert whole > 1000
    assert read[:whole] == [str(39000000 + i) for i in range(whole)]


@pytest.mark.parametrize("tail, damage", [
    (b"", None),
    (gzip.compress(b"\n\n"), None),
    (b"\x00" * 300, None),
    (b"not gzip at all", "bytes after the end of the gzip data are not gzip"),
], ids=["nothing", "a second member", "zero padding", "junk"])
def test_what_follows_a_gzip_member_reads_as_gzip_reads_it(tmp_path, tail, damage):
    path = tmp_path / "tail.xml.gz"
    path.write_bytes(gzip.compress(XML_FILE.read_bytes()) + tail)
    if damage is None:
        assert [r.pmid for r in read_records(path) if isinstance(r, Article)] == [
            r.pmid for r in read_records(XML_FILE) if isinstance(r, Article)]
    else:
        with pytest.raises(ReadError, match=f"tail.xml.gz: cannot decompress \\({damage}\\)"):
            list(read_records(path))


def test_gzip_cut_short_drops_the_last_medline_record_it_cannot_vouch_for(tmp_path):
    record = MEDLINE_FILE.read_bytes()
    data = gzip.compress(b"\n".join(many_copies(record, b"39990001", 400)))
    path = tmp_path / "cut.nbib.gz"
    path.write_bytes(data[: int(len(data) * 0.6)])
    read = []
    with pytest.raises(ReadError, match="cut.nbib.gz: cannot decompress"):
        for r in read_records(path):
            read.append(r)
    assert read, "records before the damage come out"
    assert all(len(a.abstract_sections) == 4 and a.journal.title for a in read)  # none cut short
    assert [a.pmid for a in read] == [str(39000000 + i) for i in range(len(read))]


@pytest.mark.parametrize("cut", [
    lambda data: data.rindex(b"SO  - ") + 12,
    lambda data: data.rindex(b"doi:\n") + 5,
    lambda data: len(data) - 10,
], ids=["a few bytes into it", "at the end of its first line", "all but its end"])
@pytest.mark.parametrize("alone", [False, True], ids=["after two records", "a single-record download"])
def test_a_medline_file_that_stops_inside_its_last_so_line_does_not_store_that_record(tmp_path, cut, alone):
    """A download cut inside the last record's SO field still has an SO line: only the
    period that ends the field in PubMed's exports is missing."""
    records = many_copies(MEDLINE_FILE.read_bytes(), b"39990001", 1 if alone else 3)
    whole = b"\n".join(records)
    path = tmp_path / "cut.nbib"
    path.write_bytes(whole[: cut(whole)])

    read = list(read_records(path))

    assert [r.pmid for r in read if isinstance(r, Article)] == ([] if alone else ["39000000", "39000001"])
    (problem,) = [r for r in read if not isinstance(r, Article)]
    assert problem.where == f"PMID {39000000 if alone else 39000002}"
    assert "ends inside this record's SO line" in problem.message


@pytest.mark.parametrize("source", ["book.nbib", "without SO"])
def test_a_medline_file_cut_inside_the_last_line_of_a_record_not_ending_in_so_does_not_store_it(tmp_path, source):
    """A book, or a record of a file whose records have no SO, has no period to miss: only
    the missing line end tells."""
    if source == "book.nbib":
        whole = (DATA / "medline" / "book.nbib").read_bytes()
    else:
        whole = b"\n".join(r.replace(b"\nSO  - ", b"\nXX  - ") for r in many_copies(MEDLINE_FILE.read_bytes(),
                                                                                 b"39990001", 2))
        whole = b"\n".join(line for line in whole.split(b"\n") if not line.startswith((b"XX  - ", b"      10.5555")))
    path = tmp_path / "cut.nbib"
    path.write_bytes(whole.rstrip(b"\n")[:-3])
    read = list(read_records(path))
    assert "ends inside this record's last line" in read[-1].message
    assert all(isinstance(r, Article) for r in read[:-1])


def test_a_medline_file_without_a_line_end_after_its_last_line_keeps_its_last_record(tmp_path):
    """As an editor or another program may save it: the record is whole, its SO line too."""
    whole = b"\n".join(many_copies(MEDLINE_FILE.read_bytes(), b"39990001", 2))
    path = tmp_path / "unended.nbib"
    path.write_bytes(whole.rstrip(b"\n"))
    assert [r.pmid for r in read_records(path)] == ["39000000", "39000001"]


def test_unsafe_xml_is_refused_through_the_reader(tmp_path):
    path = copy_as(tmp_path, DATA / "xml" / "billion_laughs.xml", "laughs.gz", compress=True)
    with pytest.raises(UnsafeXMLError, match="laughs.gz"):
        list(read_records(path))


def test_medline_in_utf16_is_refused_by_name_not_called_unknown(tmp_path):
    path = tmp_path / "notepad.txt"
    path.write_bytes(MEDLINE_FILE.read_text(encoding="utf-8").encode("utf-16"))
    with pytest.raises(ReadError, match=r"notepad.txt: MEDLINE text in UTF-16 is not supported; save the file as UTF-8"):
        list(read_records(path))


def test_a_medline_file_cut_inside_its_last_record_does_not_store_the_part(tmp_path):
    """PubMed ends every MEDLINE record with SO; a file that stops in an abstract ends its
    last record with another field, and the part must not be stored as the record."""
    copies = many_copies(MEDLINE_FILE.read_bytes(), b"39990001", 3)
    whole = b"\n".join(copies)
    assert b"\nSO  - " in whole[whole.rindex(b"\nPST - ") :]  # the record's last field, as PubMed writes it
    path = tmp_path / "cut.nbib"
    path.write_bytes(whole[: whole.rindex(b"AB  - ") + 60])
    records = list(read_records(path))
    assert [r.pmid for r in records[:2]] == ["39000000", "39000001"]
    assert records[2].where == "PMID 39000002" and "the file ends inside this record" in records[2].message
    path.write_bytes(whole)
    assert [r.pmid for r in read_records(path)] == ["39000000", "39000001", "39000002"]


def test_a_single_record_download_cut_inside_is_not_stored(tmp_path):
    """PubMed's "Cite" download holds one record: with no record before it to compare
    with, a copy that stopped in its abstract was stored over the whole article."""
    whole = MEDLINE_FILE.read_bytes()
    path = tmp_path / "pubmed-39990001.nbib"
    path.write_bytes(whole[: whole.index(b"\n", whole.index(b"AB  - ")) + 1])  # at a line's end
    (problem,) = read_records(path)
    assert problem.where == "PMID 39990001" and "no SO line" in problem.message and "not stored" in problem.message
    path.write_bytes(whole)
    assert [r.pmid for r in read_records(path)] == ["39990001"]


def test_a_record_cut_inside_in_the_middle_of_a_file_is_not_stored_and_the_rest_are(tmp_path):
    """A download that stopped, then another export put after it (cat a.nbib b.nbib): the
    part was stored as the record, and nothing was said."""
    copies = many_copies(MEDLINE_FILE.read_bytes(), b"39990001", 4)
    for cut in (0, 1):
        pieces = list(copies)
        pieces[cut] = pieces[cut][: pieces[cut].index(b"AB  - ") + 60] + b"\n"
        path = tmp_path / "joined.nbib"
        path.write_bytes(b"\n".join(pieces))
        records = list(read_records(path))
        assert [type(r).__name__ for r in records] == ["ParseProblem" if i == cut else "Article" for i in range(4)]
        assert records[cut].where == f"PMID {39000000 + cut}" and "no SO line" in records[cut].message


@pytest.mark.parametrize("cut_short, unreadable", [
    (False, b"\n"),  # a blank line inside the record: its rest, SO and all, a record without a PMID
    (True, b"PMID- 39000009\nTI  - Caf\xe9 au lait spot.\nSO  - x\n"),
], ids=["a blank line inside the record", "cut short, then a record that is not UTF-8"])
def test_a_part_of_a_record_followed_by_a_record_that_cannot_be_read_is_not_stored(tmp_path, cut_short, unreadable):
    """A record without SO, then one that cannot be read but has SO: the part was stored
    as the article (the record after it told nothing), and its last field then made the
    next whole record one "cut short"."""
    first, second = many_copies(MEDLINE_FILE.read_bytes(), b"39990001", 2)
    part = first[: first.index(b"AB  - ")]
    rest = b"" if cut_short else first[first.index(b"AB  - ") :]
    path = tmp_path / "gap.nbib"
    path.write_bytes(part + b"\n" + unreadable + rest + b"\n" + second)
    records = list(read_records(path))
    assert [type(r).__name__ for r in records] == ["ParseProblem", "ParseProblem", "Article"]
    assert records[0].where == "PMID 39000000" and "no SO line" in records[0].message
    assert records[2].pmid == "39000001"


def test_records_of_a_file_not_written_by_pubmed_need_no_so_line(tmp_path):
    """Where no article of the file has SO, the file was written by another program: taken
    as it is, whatever unreadable record or book stands between its articles."""
    copies = [c.replace(c[c.index(b"SO  - "):], b"") for c in many_copies(MEDLINE_FILE.read_bytes(), b"39990001", 3)]
    unreadable = copies[0].replace(b"PMID- 39000000", b"PMID- draft")
    book = (DATA / "medline" / "book.nbib").read_bytes()
    path = tmp_path / "elsewhere.txt"
    for records in ([copies[0], copies[1], copies[2]], [copies[0], unreadable, copies[1], copies[2]],
                    [copies[0], book]):
        path.write_bytes(b"\n".join(records))
        read = [r for r in read_records(path) if isinstance(r, Article) and not r.is_book]
        assert [r.pmid for r in read] == ["39000000", "39000001", "39000002"][: len(read)] and len(read) >= 1
        assert len(read) == sum(r.startswith(b"PMID- 3900") for r in records)


def test_a_cut_last_record_is_found_after_an_unreadable_one_and_a_book_is_not_held_to_articles_endings(tmp_path):
    copies = many_copies(MEDLINE_FILE.read_bytes(), b"39990001", 3)
    copies[1] = copies[1].replace(b"PMID- 39000001", b"PMID- draft")
    whole = b"\n".join(copies)
    path = tmp_path / "cut.nbib"
    path.write_bytes(whole[: whole.rindex(b"AB  - ") + 60])
    assert [type(r).__name__ for r in read_records(path)] == ["Article", "ParseProblem", "ParseProblem"]
    book = (DATA / "medline" / "book.nbib").read_bytes()
    chapter = book[: book.index(b"\n\nPMID- ", 2)] + b"\n"
    path.write_bytes(whole + b"\n" + chapter)
    assert [r.pmid for r in read_records(path) if isinstance(r, Article)][-1] == "39990301"
    path.write_bytes(chapter + b"\n" + copies[0])  # a book sets no ending for the articles after it
    assert [type(r).__name__ for r in read_records(path)] == ["Article", "Article"]
    path.write_bytes(copies[0] + b"\n" + chapter + b"\n" + copies[2] + b"\n" + copies[0][:copies[0].index(b"\nPST - ")])
    assert type(list(read_records(path))[-1]).__name__ == "ParseProblem"


def test_a_medline_record_in_another_encoding_is_a_problem_and_the_records_around_it_are_read(tmp_path):
    """One byte of Latin-1 (a pasted record) costs its record, not the rest of the file."""
    good = MEDLINE_FILE.read_bytes()
    path = tmp_path / "mixed.nbib"
    path.write_bytes(b"\n".join(many_copies(good, b"39990001", 2))
                     + "\nPMID- 39991602\nTI  - Tumeur osseuse trait\u00e9e\n\n".encode("latin-1")
                     + b"\n".join(many_copies(good, b"39990001", 2)).replace(b"3900000", b"3900010"))
    records = list(read_records(path))
    assert [r.pmid if isinstance(r, Article) else r.where for r in records] == [
        "39000000", "39000001", "PMID 39991602", "39000100", "39000101"]
    assert records[2].message.startswith("line ") and "is not UTF-8 text" in records[2].message


@pytest.mark.parametrize("compress", [False, True])
def test_a_pipe_is_read_like_a_file(tmp_path, compress):
    import os
    import threading

    data = XML_FILE.read_bytes()
    fifo = tmp_path / "records.pipe"
    os.mkfifo(fifo)

    def write():
        with open(fifo, "wb") as pipe:
            pipe.write(gzip.compress(data) if compress else data)

    writer = threading.Thread(target=write)
    writer.start()
    from_pipe = [getattr(r, "pmid", None) or getattr(r, "pmids", None) for r in read_records(fifo)]
    writer.join()
    assert from_pipe == [getattr(r, "pmid", None) or getattr(r, "pmids", None) for r in read_records(XML_FILE)]
    assert len(from_pipe) > 2


def test_a_damaged_gzip_from_a_pipe_names_the_file(tmp_path):
    import os
    import threading

    records = b"\n".join(padded_records(3000))
    data = bytearray(gzip.compress(b"<PubmedArticleSet>\n" + records + b"\n</PubmedArticleSet>"))
    data[-6] ^= 0xFF
    fifo = tmp_path / "damaged.pipe"
    os.mkfifo(fifo)

    def write():
        with open(fifo, "wb") as pipe:
            pipe.write(bytes(data))

    writer = threading.Thread(target=write)
    writer.start()
    read = articles_until_error(fifo, "damaged: its gzip checksum")  # a pipe cannot be read again: what the
    # failing read held is lost
    writer.join()
    assert read == [str(39000000 + i) for i in range(len(read))]
    assert 1000 < len(read) < 3000


@pytest.mark.parametrize("encoding, bom", [("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff")])
def test_xml_in_utf16_of_either_byte_order_is_read(tmp_path, encoding, bom):
    text = XML_FILE.read_text(encoding="utf-8").replace('encoding="UTF-8"', "", 1)
    path = tmp_path / "wide.xml"
    path.write_bytes(bom + text.encode(encoding))
    assert [r.pmid for r in read_records(path) if isinstance(r, Article)] == [
        r.pmid for r in read_records(XML_FILE) if isinstance(r, Article)]


@pytest.mark.parametrize("bom", [b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00"])
def test_utf32_is_refused_with_a_word_on_what_to_do(tmp_path, bom):
    path = tmp_path / "wider.xml"
    path.write_bytes(bom + "<PubmedArticleSet/>".encode("utf-32-be" if bom[0] == 0 else "utf-32-le"))
    with pytest.raises(ReadError, match="wider.xml: UTF-32 text is not supported; save the file as UTF-8"):
        list(read_records(path))


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzipped"])
def test_a_medline_line_of_megabytes_costs_its_record_and_the_next_is_read(tmp_path, monkeypatch, compress):
    """A record's line of hundreds of megabytes (a tiny .gz) was held whole, in several
    copies: gigabytes of memory for one record that is no MEDLINE record anyway."""
    import ingest.medline
    from ingest.model import ParseProblem

    monkeypatch.setattr(ingest.medline, "MAX_LINE", 4096)
    text = (b"PMID- 39991801\nTI  - " + b"x" * 3_000_000 + b"\n\n"
            + MEDLINE_FILE.read_bytes())
    path = tmp_path / ("long.nbib.gz" if compress else "long.nbib")
    path.write_bytes(gzip.compress(text) if compress else text)
    problem, article = list(read_records(path))
    assert isinstance(problem, ParseProblem) and "line 2 is longer than 4096 bytes" in problem.message
    assert article.pmid == "39990001"
