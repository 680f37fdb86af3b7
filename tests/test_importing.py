"""kb.importing's plumbing between its reader process and the writer (the import itself: test_cli)."""

from pathlib import Path

from kb import importing

SAMPLE_XML = Path(__file__).resolve().parents[1] / "data" / "samples" / "demo_pubmed.xml"


def test_read_pieces_cross_the_pipe_as_they_were_sent_and_end_a_batch_every_five_records():
    pieces = list(importing.read_pieces(SAMPLE_XML, batch_size=5, piece_size=2))
    assert pieces and all(len(piece.articles) <= 2 for piece, _ in pieces)
    for piece, _ in pieces:
        assert importing._decode_batch(importing._encode_batch(piece)) == piece
    assert [ends for _, ends in pieces].count(True) == -(-sum(p.read for p, _ in pieces) // 5)
