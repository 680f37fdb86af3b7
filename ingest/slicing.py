"""Cut a PubMed XML document into the bytes of its records, without parsing it whole.

Why: an import keeps every record's raw XML, and re-serialising a parsed record cost
a third as much as parsing it. Cut out of the file, the raw bytes come for free, and
each record parsed on its own (``etree.fromstring``) costs less than ``iterparse``
over the document, which also builds the tree around the records and must free it.
For NCBI's files the bytes are exactly what lxml would have written back (checked on
the real baseline files), so stored records keep their hashes.

Only documents whose records stand alone are cut: UTF-8 (or ASCII; ingest.transcoding
re-encodes others), no namespace
declared on the root and no attribute defaults declared in the DOCTYPE for the records
to inherit. ``record_start`` says whether a
document qualifies; :mod:`ingest.pubmed_xml` reads any other with ``iterparse``.
Between records only whitespace is expected; anything else is handed on as a gap
for the parser to check, so that text which is not XML is still an error.

Tags are found by searching the bytes, which would also find them where they are not
tags: inside a comment, a CDATA section or a processing instruction (``<!-- old
</PubmedArticle> -->``). NCBI writes none of these, so the search is checked, not
replaced: only where the bytes it passed over hold ``<!`` or ``<?`` are they read again
construct by construct (``_Cutter._outside_markup``). A record's start tag is read up to
its ``>`` past any ``>`` inside a quoted attribute value.
"""

from __future__ import annotations

import re
from typing import BinaryIO, Iterator, NamedTuple

from ingest import safexml, transcoding

RECORD_TAGS = (b"PubmedArticle", b"PubmedBookArticle", b"MedlineCitation", b"DeleteCitation")
_RECORD_START = re.compile(rb"<(" + b"|".join(RECORD_TAGS) + rb")(?=[\s/>])")
# A start tag up to its ">", past any ">" inside a quoted attribute value.
_START_TAG = re.compile(rb"""<[^\s/>]*(?:[^>"']|"[^"]*"|'[^']*')*>""")
# What can hold text that looks like a tag, and what ends each.
_HIDERS = {b"<!--": b"-->", b"<![CDATA[": b"]]>", b"<?": b"?>"}
_HIDER = b"(" + b"|".join(map(re.escape, _HIDERS)) + b")"
# A whole comment, CDATA section or PI (a pattern for re.DOTALL).
HIDDEN = b"|".join(re.escape(opening) + b".*?" + re.escape(closing) for opening, closing in _HIDERS.items())
_ROOT_TAG = re.compile(rb"<([A-Za-z_][\w.\-]*)")
# What XML allows after the root element besides whitespace: comments and processing instructions.
_MISC = re.compile(rb"<!--.*?-->|<\?.*?\?>", re.DOTALL)

BLOCK = 1 << 20
# A record whose end tag has not come within this many bytes is broken (an unclosed
# element): it is parsed as far as it goes, for lxml to say where, rather than held.
MAX_RECORD = 64 << 20
# A comment, CDATA section, PI or quoted attribute value in a record that runs on longer
# than this is taken for a broken one (unclosed), not for one hiding tags: PubMed's are
# short, and the record around it is then reported broken on its own.
HIDDEN_MAX = 1 << 20


class Piece(NamedTuple):
    """A record's bytes (``tag`` its element name), or a gap that is not whitespace (``tag`` None)."""

    tag: str | None
    data: bytes
    line: int  # where ``data`` starts in the document, for error messages
    column: int


class Unfinished(NamedTuple):
    """The document ended inside a record or before its root element's end tag (or, with
    ``why``, went on for more than MAX_RECORD bytes without a record)."""

    data: bytes  # the record so far (empty if it ended between records)
    line: int
    column: int
    root: str
    why: str = ""


def record_start(head: bytes) -> tuple[str, int] | None:
    """The root element's name and the offset just past its start tag, when the records
    of the document in ``head`` (its prolog and root start tag, at least) can be cut out
    as bytes; None when they cannot (or when ``head`` is not XML at all)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00", b"<\x00")):
        return None  # UTF-16 or UTF-32
    declared = safexml.DECLARED_ENCODING.match(head.removeprefix(b"\xef\xbb\xbf"))
    if declared and not transcoding.is_utf8(declared.group(1).decode("ascii")):
        return None
    start = safexml.root_start(head.decode("latin-1"))
    if start < 0 or b"<!ATTLIST" in head[:start]:
        return None  # attribute defaults declared in the DOCTYPE: a record cut out would lose them
    tag = _ROOT_TAG.match(head, start)
    whole = _START_TAG.match(head, start)  # past any ">" inside a quoted attribute value
    end = whole.end() if whole else -1
    if tag is None or end < 0 or head[end - 2 : end] == b"/>" or b"xmlns" in head[start:end]:
        return None
    return tag.group(1).decode("ascii"), end


def root_tag_unfinished(head: bytes) -> bool:
    """Whether ``head`` stops inside the root element's start tag, which record_start needs
    whole: a prolog that ends near the block the head was read in (safexml.read_head stops
    at the root's "<") sent the file to iterparse, where one malformed record ends it."""
    start = safexml.root_start(head.decode("latin-1"))
    return start >= 0 and _START_TAG.match(head, start) is None


def iter_pieces(head: bytes, stream: BinaryIO, root: str, offset: int) -> Iterator[Piece | Unfinished]:
    """The records after ``offset`` in ``head`` and the rest of ``stream``, in order.

    Non-whitespace between records comes as a gap (``tag`` None), anything after the
    root's end tag as a piece with ``tag`` "" (an error), and a document that stops
    before ``</root>`` ends with an ``Unfinished``.
    """
    cutter = _Cutter(head, stream, offset)
    boundary = re.compile(_RECORD_START.pattern + rb"|</" + re.escape(root.encode("ascii")) + rb"\s*>")
    siblings = sibling_starts(root)
    # a stray MedlineCitation (is_stray) ends with its lost record's end tag, else where the
    # next record (or stray) or the root's end tag begins
    stray_end = re.compile(rb"(</PubmedArticle\s*>)|" + boundary.pattern)
    while True:
        found = cutter.next_start(boundary)
        line, column = cutter.position()
        if found is None and not cutter.eof:
            yield Unfinished(b"", line, column, root, f"no record starts within {MAX_RECORD:,} bytes")
            return
        gap = cutter.take_gap(found.start() if found else None)
        if gap.strip():
            yield Piece(None, gap, line, column)
        if found is None:
            yield Unfinished(b"", *cutter.position(), root)
            return
        if found.group(1) is None:  # the root's end tag: only comments and PIs may follow
            cutter.take_gap(found.end())
            rest = cutter.rest()
            if _MISC.sub(b"", rest).strip():
                yield Piece("", rest, *cutter.position())
            return
        if is_stray(found.group(1).decode("ascii"), root):
            record = cutter.take_stray(found.start(), stray_end)
        else:
            record = cutter.take_record(found.start(), found.group(1), siblings)
        if record is None:
            yield Unfinished(cutter.rest(), *cutter.position(), root)
            return
        yield record


def is_stray(tag: str | None, root: str) -> bool:
    """Whether a piece cut with ``tag`` at the top level of a set named ``root`` is a
    MedlineCitation out of its PubmedArticle (whose start tag is lost), not a record: a
    MedlineCitation is a record of its own only in a MedlineCitationSet."""
    return tag == "MedlineCitation" and root != "MedlineCitationSet"


def sibling_starts(root: str) -> re.Pattern:
    """The start tags of the records a set named ``root`` holds side by side (a
    PubmedArticle's MedlineCitation is inside it, not beside it)."""
    tags = [tag for tag in RECORD_TAGS if tag != b"MedlineCitation" or root == "MedlineCitationSet"]
    return re.compile(rb"<(" + b"|".join(tags) + rb")(?=[\s/>])")


def moved(line: int, column: int, text: bytes) -> tuple[int, int]:
    """The position just after ``text``, which starts at (line, column)."""
    newlines = text.count(b"\n")
    if not newlines:
        return line, column + len(text)
    return line + newlines, len(text) - text.rfind(b"\n")


class _Cutter:
    """A window on the stream: blocks are appended as needed and consumed bytes dropped."""

    def __init__(self, head: bytes, stream: BinaryIO, offset: int):
        self.stream = stream
        self.buf = head
        self.pos = offset
        self.line = 1 + head.count(b"\n", 0, offset)  # the line ``pos`` is on
        self.column = offset - head.rfind(b"\n", 0, offset)  # ``pos``'s, 1-based
        self.eof = False

    def _more(self) -> bool:
        if self.eof:
            return False
        block = self.stream.read(BLOCK)
        if not block:
            self.eof = True
            return False
        self.buf = self.buf[self.pos :] + block
        self.pos = 0
        return True

    def next_start(self, boundary: re.Pattern) -> re.Match | None:
        """The next match of ``boundary`` (a record's start tag, the root's end tag) that
        is not inside a comment, CDATA section or processing instruction."""
        while True:
            # the pattern looks at the byte after the name, so a start tag cut at the
            # buffer's end only matches once the next block is in
            found = boundary.search(self.buf, self.pos)
            if found is not None or len(self.buf) - self.pos > MAX_RECORD or not self._more():
                break
        if self._hides(self.pos, found.start() if found else len(self.buf)):
            careful = self._outside_markup(boundary, self.pos)
            # None: a comment or PI that does not end; the gap up to the record found goes
            # to the parser, which says where
            return careful if careful is not None else boundary.search(self.buf, self.pos)
        return found

    def take_gap(self, end: int | None) -> bytes:
        return self._take(len(self.buf) if end is None else end)

    def take_stray(self, start: int, ends: re.Pattern) -> Piece | None:
        """A MedlineCitation out of its PubmedArticle (is_stray) from ``start``: up to the end
        of the first match of ``ends`` that is its group 1 (the record's end tag), else to the
        start of the match (the next record, the root's end tag); None if none comes."""
        line, column = self.line, self.column
        gt = self._start_tag_end(start)
        if gt is None:
            return None
        if self.buf[gt - 1] == 0x2F:  # "/>"
            end = gt + 1
        else:
            found = self._outside_markup(ends, gt + 1)
            if found is None:
                return None
            end = found.end() if found.group(1) else found.start()
        return Piece("MedlineCitation", self._take(end), line, column)

    def take_record(self, start: int, tag: bytes, siblings: re.Pattern) -> Piece | None:
        """The record starting at ``start``; None if the document ends (or it grows too long)
        first. ``siblings``: the start tags of the records beside it (sibling_starts)."""
        line, column = self.line, self.column
        gt = self._start_tag_end(start)
        if gt is None:
            return None
        if self.buf[gt - 1] == 0x2F:  # "/>": an empty record
            end = gt + 1
        else:
            end = self._end_tag(b"</" + tag, gt, siblings)
            if end is None:
                return None
            if self._hides(self.pos, end):  # the end tag found may be inside a comment or CDATA
                base = self.pos
                closing = self._outside_markup(re.compile(b"</" + tag + rb"\s*>"), gt + 1)
                # None: a comment or CDATA that does not end; the record is cut where
                # the search found its end, and the parser says what is wrong with it
                end = closing.end() if closing is not None else end - base + self.pos
        return Piece(tag.decode("ascii"), self._take(end), line, column)

    def _start_tag_end(self, start: int) -> int | None:
        """The offset of the ">" that ends the start tag at ``start`` (the record's start,
        ``pos``): past any ">" in a quoted attribute value, but a quote that does not close
        within HIDDEN_MAX bytes is a broken tag, ended at its first ">"."""
        while True:
            opening = _START_TAG.match(self.buf, start, start + HIDDEN_MAX)
            if opening is not None:
                return opening.end() - 1
            gt = self.buf.find(b">", start)
            if len(self.buf) - start > HIDDEN_MAX and gt >= 0:
                return gt
            if len(self.buf) - self.pos > MAX_RECORD or not self._more():
                return gt if gt >= 0 else None
            start = self.pos  # the record now starts the buffer

    def _end_tag(self, closing: bytes, searched: int, siblings: re.Pattern) -> int | None:
        """The offset just past the end tag that starts with ``closing`` ("</Tag", then
        optional whitespace and ">"), reading on as needed; None if it never comes.

        Where the buffer holds no such end tag but the start of a record beside this one,
        the end tag is lost: the record ends there, broken, and the records after it are
        read (a book's lost end tag would otherwise have the search read on to MAX_RECORD).
        """
        inside = searched - self.pos  # the record's own bytes begin after its start tag
        looked = searched  # where the search for a record beside it goes on from
        while True:
            found = self.buf.find(closing, searched)
            if found >= 0:
                after = found + len(closing)
                gt = self.buf.find(b">", after)
                if gt >= 0:
                    if not self.buf[after:gt].strip():
                        return gt + 1
                    searched = after  # a longer name ("</PubmedArticleSet"): not ours
                    continue
            beside = siblings.search(self.buf, looked)
            if beside is not None:
                return beside.start()
            so_far = len(self.buf) - self.pos
            if so_far > MAX_RECORD or not self._more():
                return None
            searched = max(so_far - len(closing) - 64, 0)  # the buffer now starts with the record
            looked = max(so_far - 64, inside)

    def rest(self) -> bytes:
        while self._more():
            if len(self.buf) - self.pos > MAX_RECORD:
                break
        return self.buf[self.pos :]

    def _hides(self, start: int, end: int) -> bool:
        """Whether the bytes from ``start`` to ``end`` hold a comment, CDATA section or PI,
        inside which a tag found by search may be only text."""
        buf = self.buf
        for mark in (b"!", b"?"):  # one byte each: found by memchr, far faster than b"<!" among tags
            at = buf.find(mark, start, end)
            while at >= 0:
                if buf[at - 1] == 0x3C:  # "<"
                    return True
                at = buf.find(mark, at + 1, end)
        return False

    def _outside_markup(self, target: re.Pattern, at: int) -> re.Match | None:
        """The first match of ``target`` from ``at`` that is not inside a comment, CDATA
        section or processing instruction, reading on as needed; None if none comes, or
        if one of those does not end within HIDDEN_MAX bytes (broken, not hiding)."""
        pattern = re.compile(_HIDER + b"|" + target.pattern)
        while True:
            found = pattern.search(self.buf, at)
            if found is not None and found.group(1) is None:
                return target.match(self.buf, found.start())
            if found is not None:
                closer = _HIDERS[found.group(1)]
                ends = self.buf.find(closer, found.end(), found.end() + HIDDEN_MAX)
                if ends >= 0:
                    at = ends + len(closer)
                    continue
                if len(self.buf) - found.end() >= HIDDEN_MAX:
                    return None
            before = self.pos  # nothing (whole) found: read on, the buffer then starts at pos
            if len(self.buf) - self.pos > MAX_RECORD or not self._more():
                return None
            at -= before

    def position(self) -> tuple[int, int]:
        return self.line, self.column

    def _take(self, end: int) -> bytes:
        """The bytes up to ``end``, consumed: the position moves past them."""
        taken = self.buf[self.pos : end]
        self.line, self.column = moved(self.line, self.column, taken)
        self.pos = end
        return taken
