"""Refuse XML that declares entities, before lxml ever sees it.

PubMed files never declare entities: NCBI's DOCTYPE names a public DTD by PUBLIC id and
URL and has no internal subset. A document whose DOCTYPE carries an internal subset with
``<!ENTITY ...>`` is therefore not something NCBI produced, and it is exactly the shape of
the two classic attacks on XML readers: entity expansion ("billion laughs") and external
entities (XXE, e.g. ``SYSTEM "file:///etc/passwd"``). We read the prolog ourselves and
refuse such a document with a clear error; the lxml options in ``PARSER_OPTIONS`` (no
entity resolution, no network, no DTD loading, no huge trees) are a second line of
defence for anything the prolog check does not catch.
"""

from __future__ import annotations

import codecs
import re
import logging

from lxml import etree

log = logging.getLogger("cryokb")

PARSER_OPTIONS = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "huge_tree": False,
}

# How far we read looking for the root element. The prolog of a PubMed file is a few
# hundred bytes; a prolog longer than this is not one we are willing to reason about.
PROLOG_LIMIT = 1 << 20
_CHUNK = 1 << 16


class UnsafeXMLError(ValueError):
    """The document declares entities (or hides its prolog); it is not parsed at all."""


# The encoding an XML declaration names (match it at the start of a document's bytes).
DECLARED_ENCODING = re.compile(rb"""\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._\-]+)["']""")


# What a document's first bytes say of its encoding (XML 1.0, appendix F): a byte order
# mark, else "<" or "<?" as written in UTF-32 or UTF-16. UTF-32's marks begin with UTF-16's.
FIRST_BYTES = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
    (b"<\x00\x00\x00", "utf-32-le"), (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00?\x00", "utf-16-le"), (b"\x00<\x00?", "utf-16-be"),
)


def encoding_of_first_bytes(head: bytes) -> str | None:
    """The UTF-16 or UTF-32 codec a document's first bytes show, or None."""
    return next((codec for start, codec in FIRST_BYTES if head.startswith(start)), None)


def _decode_head(head: bytes) -> str:
    """Decode the prolog bytes, honouring a UTF-16/32 byte order mark.

    Without this, ``<!ENTITY`` written in UTF-16 would slip past a byte search.
    """
    wide = encoding_of_first_bytes(head)
    if wide:
        return head.decode(wide, errors="replace")
    declared = DECLARED_ENCODING.match(head)
    if declared:  # in an encoding that is not ASCII's superset (UTF-7: "+ADw-!ENTITY"), the bytes lie
        try:
            return head.decode(declared.group(1).decode("ascii"), errors="replace")
        except (LookupError, UnicodeError):
            pass  # an encoding Python does not know (or, as idna, cannot decode with): libxml2 decides
    return head.decode("latin-1")


def _refuse(name: str, why: str) -> UnsafeXMLError:
    return UnsafeXMLError(
        f"{name}: {why}; refused to protect against entity expansion (billion laughs) "
        "and external entities (XXE)"
    )


def root_start(text: str) -> int:
    """Index of the root element's "<", or -1 if the prolog has not ended yet."""
    return _walk_prolog(text)[0]


def _walk_prolog(text: str) -> tuple[int, int]:
    """(index of the root element's "<", index of a DOCTYPE that does not end in ``text``),
    each -1 if there is none: the prolog read construct by construct, as the parser reads it,
    so that "<!DOCTYPE" in a comment is a comment."""
    i = 0
    while True:
        i = text.find("<", i)
        if i < 0 or i + 1 >= len(text):
            return -1, -1
        past = _past_comment_or_pi(text, i)  # the XML declaration is a PI here
        if past is None and text[i + 1] == "!":  # DOCTYPE: skip past its internal subset if any
            end = _doctype_end(text, i)
            if end < 0:
                return -1, i
            past = end + 1
        elif past is None:
            return i, -1
        if past < 0:
            return -1, -1
        i = past


def _past_comment_or_pi(text: str, i: int) -> int | None:
    """The index just past the comment or processing instruction at ``i`` (-1 if it does
    not end in ``text``), or None if there is none at ``i``."""
    for opening, closing in (("<!--", "-->"), ("<?", "?>")):
        if text.startswith(opening, i):
            ends = text.find(closing, i + len(opening))  # "<!-->" opens a comment, it does not close one
            return ends + len(closing) if ends >= 0 else -1
    return None


def _doctype_end(text: str, start: int) -> int:
    """Index of the ">" closing the DOCTYPE at ``start`` (-1 if not in ``text`` yet).

    Quote-aware, so a ">" or "]" inside a quoted literal does not end it early, and
    comments and PIs in the internal subset are passed over whole: an apostrophe in
    "<!-- the subset's comment -->" opens no literal. (Entity declarations are looked
    for in all of the prolog, not only inside what this delimits: check_prolog.)
    """
    quote = None
    depth = 0
    j = start + 2
    while j < len(text):
        ch = text[j]
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "<" and (past := _past_comment_or_pi(text, j)) is not None:
            if past < 0:
                return -1
            j = past
            continue
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == ">" and depth <= 0:
            return j
        j += 1
    return -1


def check_prolog(head: bytes, name: str) -> None:
    """Raise UnsafeXMLError if the prolog in ``head`` declares entities.

    ``head`` must hold the document up to its root element (``read_head`` makes sure);
    a DOCTYPE whose internal subset is still open at the end of ``head`` is refused too.
    Erring on the side of refusal, "<!ENTITY" anywhere in the prolog counts, in a
    comment too. A reading of the prolog that differs from the parser's could still hide
    a declaration; whatever gets past this meets ``refuse_declared_entities`` (the
    parser's own view of the DTD) wherever a document is parsed whole, and records cut
    out as bytes are parsed without the DTD, where an entity is undefined.
    """
    text = _decode_head(head)
    root, open_doctype = _walk_prolog(text)
    if "<!ENTITY" in (text if root < 0 else text[:root]):
        raise _refuse(name, "its prolog declares XML entities")
    if open_doctype >= 0:
        raise _refuse(name, "its DOCTYPE does not end within its first bytes")


def refuse_declared_entities(elem: etree._Element, name: str) -> None:
    """Raise UnsafeXMLError if the document ``elem`` belongs to declares entities, as
    libxml2 read its DTD: the last word, once the prolog is parsed and before anything
    of the document is used (lxml expands declared entities in attribute values even
    with resolve_entities off)."""
    dtd = elem.getroottree().docinfo.internalDTD
    if dtd is not None and next(iter(dtd.iterentities()), None) is not None:
        raise _refuse(name, "its prolog declares XML entities")


def read_head(stream, name: str) -> bytes:
    """Read from ``stream`` until the root element has started (or the stream ends)."""
    head = b""
    while len(head) < PROLOG_LIMIT:
        chunk = stream.read(_CHUNK)
        if not chunk:
            return head
        head += chunk
        if root_start(_decode_head(head)) >= 0:
            return head
    raise _refuse(name, f"its prolog is longer than {PROLOG_LIMIT} bytes")


class PrefixedStream:
    """A read()-able stream that first returns bytes already read, then the rest.

    Lets us inspect the prolog of a non-seekable stream (a gzip member, a socket)
    and still hand lxml the whole document.
    """

    def __init__(self, head: bytes, rest):
        self._head = head
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size is None or size < 0:
                data, self._head = self._head + self._rest.read(), b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._rest.read(size)


def checked_head(stream, name: str) -> bytes:
    """Read the prolog of binary ``stream`` (up to the root's start) and check it; the
    bytes read, for ``PrefixedStream`` to hand on with the rest."""
    head = read_head(stream, name)
    check_prolog(head, name)
    return head


def parse_bytes(data: bytes, name: str = "<bytes>") -> etree._Element:
    """Parse a small XML document held in memory (an E-utilities reply, one record).

    Raises UnsafeXMLError for entity declarations and lxml.etree.XMLSyntaxError for
    text that is not XML.
    """
    check_prolog(data[:PROLOG_LIMIT], name)
    parser = etree.XMLParser(**PARSER_OPTIONS)
    root = etree.fromstring(data, parser=parser)
    refuse_declared_entities(root, name)
    return root
