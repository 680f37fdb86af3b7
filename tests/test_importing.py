"""kb.importing's plumbing between its reader process and the writer (the import itself: test_cli)."""

import fcntl
import multiprocessing
from pathlib import Path

import pytest

from kb import importing

SAMPLE_XML = Path(__file__).resolve().parents[1] / "data" / "samples" / "demo_pubmed.xml"


@pytest.mark.skipif(not hasattr(fcntl, "F_GETPIPE_SZ"), reason="pipe sizes are a Linux feature")
def test_the_pipe_from_the_reader_holds_a_whole_piece():
    receiver, sender = multiprocessing.get_context("fork").Pipe(duplex=False)
    try:
        importing._widen(sender)
        size = fcntl.fcntl(sender.fileno(), fcntl.F_GETPIPE_SZ)
        with open("/proc/sys/fs/pipe-max-size") as limit:
            allowed = int(limit.read())
        assert size == importing.PIPE_BYTES or (allowed < importing.PIPE_BYTES and size < importing.PIPE_BYTES)
    finally:
        receiver.close()
        sender.close()


def test_a_pipe_that_cannot_be_widened_is_used_as_it_is(monkeypatch, caplog):
    def refuse(fd, command, size):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(importing.fcntl, "fcntl", refuse)
    receiver, sender = multiprocessing.get_context("fork").Pipe(duplex=False)
    try:
        with caplog.at_level("DEBUG", logger="cryokb"):
            importing._widen(sender)
        sender.send_bytes(b"B piece")
        assert receiver.recv_bytes() == b"B piece"
        assert "default size" in caplog.text
    finally:
        receiver.close()
        sender.close()


def test_read_pieces_cross_the_pipe_as_they_were_sent_and_end_a_batch_every_five_records():
    pieces = list(importing.read_pieces(SAMPLE_XML, batch_size=5, piece_size=2))
    assert pieces and all(len(piece.articles) <= 2 for piece, _ in pieces)
    for piece, _ in pieces:
        assert importing._decode_batch(importing._encode_batch(piece)) == piece
    assert [ends for _, ends in pieces].count(True) == -(-sum(p.read for p, _ in pieces) // 5)
