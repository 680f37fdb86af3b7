"""PubMed XML written in another encoding than UTF-8, re-encoded as UTF-8 as it is read.

Why: records are cut out of a document as bytes and parsed one at a time
(ingest.slicing), so that a malformed record costs only itself. Cutting needs UTF-8:
in UTF-16 a tag is not the bytes searched for, and a Latin-1 record cut out of its
document would be parsed as UTF-8. Such a document used to be read whole with
iterparse, where one malformed record stopped the file. Re-encoded here block by block
(memory stays flat), its XML declaration rewritten to say UTF-8, it is cut like any
other. NCBI writes UTF-8 only; this is for files a user saved again from an editor.

Character encodings whose markup is ASCII's (Latin-1, Windows-1252, Shift_JIS, ...) and
UTF-16 (told by its byte order mark or its first bytes) are re-encoded. Names Python
does not know, and codecs that are not character encodings (idna, unicode_escape), are
left to libxml2 on the iterparse path, as before.
"""

from __future__ import annotations

import codecs
import re
from typing import BinaryIO

from ingest import safexml

_NOT_RECODED = frozenset({"utf-8", "ascii"})
# Codecs that take bytes to text by rules of their own, not a character set: "\\u003c"
# would become "<" (they write ASCII's markup as ASCII does, so the probe below passes them).
_NOT_CHARACTER_SETS = frozenset({"unicode-escape", "raw-unicode-escape", "charmap", "idna", "punycode"})
# What must be the same bytes as in ASCII for markup to be found in the bytes.
_MARKUP = "<?xml version='1.0'?>\n\t <!-- --> </&;#x> =\"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_.-[]"
# Bytes read from the file at a time, at least: a reader asking for less is served from them.
READ_SIZE = 1 << 16
_DECLARED = re.compile(safexml.DECLARED_ENCODING.pattern.decode("ascii"))  # the same, over the decoded text


class EncodingError(ValueError):
    """The document's bytes are not text in the encoding it declares."""


def codec_of(head: bytes) -> str | None:
    """The codec to re-encode a document from, given its first bytes (its prolog); None
    for a document in UTF-8 or ASCII, and for an encoding left to libxml2."""
    wide = safexml.encoding_of_first_bytes(head)
    if wide:
        return wide if wide.startswith("utf-16") else None  # UTF-32 is refused (ingest.readers)
    if head.startswith(codecs.BOM_UTF8):
        return None  # a UTF-8 mark outweighs a declaration
    declared = safexml.DECLARED_ENCODING.match(head)
    if not declared:
        return None
    codec = python_codec(declared.group(1).decode("ascii"))
    if codec is None or codec in _NOT_RECODED or codec in _NOT_CHARACTER_SETS:
        return None
    try:
        if _MARKUP.encode(codec) != _MARKUP.encode("ascii"):
            return None
    except (LookupError, UnicodeError, ValueError):  # not for text (base64, rot13), or cannot write markup
        return None
    return codec


def python_codec(name: str) -> str | None:
    """Python's name for the encoding a declaration names ("UTF8", "utf_8", "u8": "utf-8"),
    or None where Python knows none of that name."""
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def is_utf8(name: str) -> bool:
    """Whether a declared encoding is UTF-8 (or ASCII, a part of it), however it is spelled."""
    return python_codec(name) in _NOT_RECODED


def as_utf8(head: bytes, stream: BinaryIO, codec: str, name: str) -> tuple[bytes, "Utf8Stream"]:
    """The prolog re-encoded (its declaration saying UTF-8) and the rest of the document as a
    stream of UTF-8."""
    declared = safexml.DECLARED_ENCODING.match(head)
    label = declared.group(1).decode("ascii") if declared else codec.upper()  # UTF-16's is not ASCII
    recoded = Utf8Stream(stream, codec, name, label)
    text = recoded.decode(head)
    found = _DECLARED.match(text)
    if found:
        text = text[: found.start(1)] + "UTF-8" + text[found.end(1) :]
    return text.encode("utf-8"), recoded


class Utf8Stream:
    """A read()-able stream of UTF-8 from a binary stream in ``codec``.

    Bytes that are not text in ``codec`` end it: what came before them is read, so the
    records before them are read too, and the next read raises EncodingError.
    """

    def __init__(self, stream: BinaryIO, codec: str, name: str, label: str | None = None):
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder(codec)("strict")
        self._label = label or codec  # the encoding as the document names it
        self._name = name
        self._offset = 0  # bytes decoded so far, for an error's position
        self._pending = b""
        self._ended = False
        self._error: EncodingError | None = None

    def decode(self, data: bytes, final: bool = False) -> str:
        """The text of ``data``, up to any bytes that are not text (kept as the error to raise next)."""
        state = self._decoder.getstate()
        held = len(state[0])  # bytes of a character begun in the last call
        try:
            text = self._decoder.decode(data, final)
        except UnicodeError as err:
            self._decoder.setstate(state)  # the CJK decoders drop a character begun in the last call
            if isinstance(err, UnicodeDecodeError):
                good = err.start - held
            else:  # ISO-2022-JP's decoder raises a bare one ("pending buffer overflow"), saying no byte
                good = self._decodable(data, state)
            self._error = EncodingError(
                f"{self._name}: byte {self._offset + good + 1:,} is not {self._label} text, "
                f"as the document's encoding says ({getattr(err, 'reason', err)})")
            text = self._decoder.decode(data[:good]) if good > 0 else ""
        self._offset += len(data)
        return text

    def _decodable(self, data: bytes, state) -> int:
        """How many of ``data``'s first bytes decode, found by halving (the decoder left at ``state``)."""
        low, high = 0, len(data)
        while low < high:
            middle = (low + high + 1) // 2
            try:
                self._decoder.decode(data[:middle])
                low = middle
            except UnicodeError:
                high = middle - 1
            self._decoder.setstate(state)
        return low

    def read(self, size: int = -1) -> bytes:
        whole = size is None or size < 0
        while not (self._ended or self._error) and (whole or len(self._pending) < size):
            data = self._stream.read(-1 if whole else max(size, READ_SIZE))
            self._ended = not data
            self._pending += self.decode(data, final=self._ended).encode("utf-8")
        if not self._pending and self._error is not None:
            raise self._error
        data, self._pending = (self._pending, b"") if whole else (self._pending[:size], self._pending[size:])
        return data
