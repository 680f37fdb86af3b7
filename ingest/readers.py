"""Open any PubMed file we accept and hand it to the right parser.

Users pass whatever PubMed gave them: ``pubmed21n1298.xml.gz``, an efetch reply saved
without an extension, a ``.nbib`` or ``.txt`` MEDLINE export. File names lie, so the
format is sniffed from the first bytes (after gunzipping when the gzip magic number is
there), never taken from the extension.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from typing import BinaryIO

from ingest import gunzip, medline, pubmed_xml
from ingest.model import Article, Deletion, ParseProblem
from ingest.transcoding import EncodingError

log = logging.getLogger("cryokb")

DECOMPRESSION_ERRORS = gunzip.ERRORS
SNIFF_BYTES = 1 << 16
_UTF32_BOMS = (b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00")
_BOMS = (b"\xef\xbb\xbf", *_UTF32_BOMS, b"\xff\xfe", b"\xfe\xff")  # UTF-32's before UTF-16's, which begin them
# What a file packed some other way begins with: said by name, not as bytes that are not PubMed's.
_OTHER_COMPRESSIONS = (
    (b"BZh", "a bzip2 file"), (b"PK\x03\x04", "a zip archive"), (b"\xfd7zXZ\x00", "an xz file"),
    (b"\x28\xb5\x2f\xfd", "a zstd file"), (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
)


class ReadError(OSError):
    """A file that cannot be opened, decompressed or recognised; names the file."""


def sniff_format(head: bytes) -> str | None:
    """'xml' when the first non-space byte is "<", 'medline' when a line starts "PMID-".

    Returns None when neither holds.
    """
    for bom in _BOMS:
        if head.startswith(bom):
            head = head[len(bom) :]
            break
    stripped = head.lstrip(b" \t\r\n\x00")  # the zero bytes of UTF-16 and UTF-32 around "<"
    if stripped.startswith(b"<"):
        return "xml"
    if stripped.startswith(b"PMID-") or b"\nPMID-" in head:
        return "medline"
    return None


def shown_name(path: str | os.PathLike) -> str:
    """A file's name as text that can be printed and stored. A name that is not UTF-8 (a
    Latin-1 one from an old archive) has its odd bytes written as \\xe9: Python holds them
    as lone surrogates, which SQLite and the terminal refuse (a traceback, nothing imported)."""
    return os.fsdecode(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _utf16_as_ascii(head: bytes) -> bytes:
    """The ASCII of UTF-16 text (BOM first), enough to tell its format; anything else is dropped."""
    return head[2:].decode("utf-16-le" if head[:2] == b"\xff\xfe" else "utf-16-be", "ignore").encode(
        "ascii", "ignore")


def read_records(path: str | os.PathLike, *, flat: bool = False) -> Iterator[Article | Deletion | ParseProblem | tuple]:
    """Yield the records of a PubMed XML or MEDLINE file, gzipped or not.

    ``flat``: articles of an XML file as ingest.pubmed_xml.iter_records gives them with ``flat``.
    """
    name = shown_name(path)
    try:
        raw = open(path, "rb")
    except OSError as err:
        raise ReadError(f"{name}: cannot open ({err.strerror or err})") from err
    with raw:
        stream = _maybe_gunzip(raw, name)
        head = _peek(stream, name)
        kind = sniff_format(head)
        if head[:4] in _UTF32_BOMS:  # libxml2 reads no UTF-32
            raise ReadError(f"{name}: UTF-32 text is not supported; save the file as UTF-8 or UTF-16")
        if kind is None and head[:2] in (b"\xff\xfe", b"\xfe\xff") and sniff_format(_utf16_as_ascii(head)):
            raise ReadError(f"{name}: MEDLINE text in UTF-16 is not supported; save the file as UTF-8")
        if not head:
            raise ReadError(f"{name}: the file is empty")
        if kind is None:
            packed = next((what for magic, what in _OTHER_COMPRESSIONS if head.startswith(magic)), None)
            if packed:
                raise ReadError(f"{name}: {packed}: decompress it first (cryokb reads gzip files itself)")
            raise ReadError(f"{name}: neither PubMed XML nor MEDLINE text (first bytes {head[:20]!r})")
        log.debug("%s: reading as %s", name, kind)
        rest = _Rewound(head, stream, name)
        if kind == "xml":
            yield from _xml_records(rest, name, flat)
        else:
            yield from _medline_records(rest, name)


def _xml_records(rest: _Rewound, name: str, flat: bool) -> Iterator[Article | Deletion | ParseProblem | tuple]:
    try:
        yield from pubmed_xml.iter_records(rest, name, flat=flat)
    except (pubmed_xml.XMLFileError, EncodingError):
        rest.raise_broken()  # a damaged gzip is the real cause of a cut-short document (or character)
        raise
    rest.raise_broken()


def _medline_records(rest: _Rewound, name: str) -> Iterator[Article | ParseProblem]:
    """MEDLINE text has no end marker, so each record is held back until the next one
    starts: when the gzip stream breaks, the last record (likely cut short) is dropped.
    A record the parser could not read does not cost the one held before it, which was
    whole: it ended where the unreadable one began. Each record is checked for a cut
    (medline.unless_cut_short) against the records stored before it and the one after."""
    held = None
    endings: set[str] = set()  # the last field of every record stored before the held one
    sourced: set[bool] = set()  # whether those records have an SO line
    closed: set[bool] = set()  # whether their SO lines end with a period
    for record in medline.iter_records(rest, name):
        if held is not None:
            yield _kept(held, endings, sourced, closed, name, following=record)
        held = record
    rest.raise_broken()
    if held is not None:
        yield _kept(held, endings, sourced, closed, name, following=None)


def _kept(record, endings: set[str], sourced: set[bool], closed: set[bool], name: str,
          following) -> Article | ParseProblem:
    """The record, or the problem of its being cut short; what a stored record ends with noted."""
    checked = medline.unless_cut_short(record, endings, sourced, name, following=following, closed=closed)
    if checked is record:
        endings.update(filter(None, [medline.last_field(record)]))
        sourced.update(filter(lambda has: has is not None, [medline.has_source(record)]))
        closed.update(filter(lambda has: has is not None, [medline.source_closed(record)]))
    return checked


def _maybe_gunzip(raw: io.BufferedReader, name: str) -> BinaryIO:
    """The stream itself, or gunzipped. The magic bytes are peeked, not read: a pipe
    (``cryokb import <(zcat ...)``, /dev/stdin) cannot seek back."""
    magic = raw.peek(2)[:2]
    return gunzip.Gunzip(raw, name) if magic == gunzip.MAGIC else raw


def _peek(stream: BinaryIO, name: str) -> bytes:
    try:
        return stream.read(SNIFF_BYTES)
    except DECOMPRESSION_ERRORS as err:
        raise ReadError(f"{name}: cannot decompress ({err})") from err


# How ISA-L and zlib say that a gzip member's CRC-32 or length does not match its data:
# found only at its end, when every record of it has been read (and stored).
_CHECKSUM_FAILED = ("checksum", "data check", "length check")


class _Rewound:
    """The sniffed bytes followed by the rest of the stream, readable line by line too.

    A decompression error further into the file ends the stream (so the parser yields
    every record before the damage) and is raised afterwards by ``raise_broken`` as a
    ReadError naming the file.
    """

    def __init__(self, head: bytes, stream: BinaryIO, name: str):
        self._head = head
        self._stream = stream
        self.name = name
        self.broken: Exception | None = None

    def raise_broken(self) -> None:
        if self.broken is None:
            return
        if any(words in str(self.broken).lower() for words in _CHECKSUM_FAILED):
            raise ReadError(f"{self.name}: damaged: its gzip checksum does not match what it decompressed to, so "
                            f"any record read from it may be wrong; import a good copy ({self.broken})") \
                from self.broken
        raise ReadError(f"{self.name}: cannot decompress ({self.broken})") from self.broken

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size is None or size < 0:
                data, self._head = self._head + self._read(-1), b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._read(size)

    def _read(self, size: int) -> bytes:
        if self.broken is not None:
            return b""
        try:
            return self._stream.read(size)
        except DECOMPRESSION_ERRORS as err:
            self.broken = err
            return b""

    def readline(self) -> bytes:
        line = b""
        while not line.endswith(b"\n"):
            if self._head:
                cut = self._head.find(b"\n")
                cut = len(self._head) if cut < 0 else cut + 1
                line, self._head = line + self._head[:cut], self._head[cut:]
                continue
            if self.broken is not None:
                break
            try:
                rest = self._stream.readline()
            except DECOMPRESSION_ERRORS as err:
                self.broken = err
                break
            if not rest:
                break
            line += rest
        return line

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line
