"""The client cuts a stream of ciphertext pieces into upload chunks of one size."""

from hypothesis import given
from hypothesis import strategies as st

from sealbox.client.messages import _rechunk


@given(
    pieces=st.lists(st.binary(min_size=0, max_size=300), max_size=30),
    size=st.integers(min_value=1, max_value=257),
)
def test_chunks_are_the_stream_cut_at_the_size(pieces, size):
    chunks = list(_rechunk(iter(pieces), size))
    assert b"".join(chunks) == b"".join(pieces)
    assert all(len(chunk) == size for chunk in chunks[:-1])
    assert all(0 < len(chunk) <= size for chunk in chunks)
    assert all(type(chunk) is bytes for chunk in chunks)


def test_a_chunk_does_not_change_when_the_pieces_are_reused():
    # A chunk is a copy: what it was cut from may be dropped or reused afterwards.
    piece = bytearray(b"abcdef")
    chunks = _rechunk(iter([piece, b"gh"]), 4)
    first = next(chunks)
    piece[:] = b"xxxxxx"
    assert first == b"abcd"
