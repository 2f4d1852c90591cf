"""The voice stand-in's hand-written MLS encoding: what davey (the client side) cannot check for us."""

from __future__ import annotations

import struct

import davey
import pytest

from tests.fakes import mls


@pytest.mark.parametrize(
    ("length", "encoded"),
    [(0, "00"), (63, "3f"), (64, "4040"), (16383, "7fff"), (16384, "80004000"), (2**30 - 1, "bfffffff")],
)
def test_vector_lengths_use_the_shortest_header(length: int, encoded: str) -> None:
    assert mls.varint(length).hex() == encoded
    assert mls.Reader(bytes.fromhex(encoded)).length() == length


@pytest.mark.parametrize("encoded", ["4001", "80000001", "c0000000"])
def test_longer_than_needed_or_reserved_length_headers_are_refused(encoded: str) -> None:
    # RFC 9420 §2.1.2: the length MUST be minimally encoded; the 0b11 prefix is invalid.
    with pytest.raises(mls.MLSDecodeError):
        mls.Reader(bytes.fromhex(encoded)).length()


def test_a_key_package_must_name_its_sender_and_verify() -> None:
    session = davey.DaveSession(1, 1234567890123, 555)
    package = mls.read_key_package(session.get_serialized_key_package())
    assert package.user_id == 1234567890123
    assert package.leaf.lifetime == mls.LIFETIME_FOREVER
    # The same key package wrapped in an MLSMessage (as the whitepaper's opcode 26 names it) reads the same.
    wrapped = struct.pack(">HH", mls.MLS_10, mls.WIRE_KEY_PACKAGE) + package.body
    assert mls.read_key_package(wrapped).ref == package.ref

    tampered = bytearray(package.body)
    tampered[-80] ^= 0x01  # inside the TBS, before the signature
    with pytest.raises(mls.MLSDecodeError):
        mls.read_key_package(bytes(tampered))


def test_external_proposals_verify_with_the_package_key_and_nothing_else() -> None:
    sender = mls.ExternalSender()
    message = sender.remove((555).to_bytes(8, "big"), 3, 1)
    reader = mls.Reader(message)
    reader.take(4)
    start = reader.position
    assert reader.vec() == (555).to_bytes(8, "big") and reader.u64() == 3
    assert (reader.u8(), reader.u32()) == (mls.SENDER_EXTERNAL, 0)
    reader.vec()
    assert reader.u8() == mls.CONTENT_PROPOSAL
    assert (reader.u16(), reader.u32()) == (mls.PROPOSAL_REMOVE, 1)
    tbs = struct.pack(">HH", mls.MLS_10, mls.WIRE_PUBLIC_MESSAGE) + message[start : reader.position]
    signature = reader.vec()
    assert reader.done
    key = mls.Reader(sender.package()).vec()
    assert mls.verify_with_label(key, "FramedContentTBS", tbs, signature)
    assert not mls.verify_with_label(
        mls.Reader(mls.ExternalSender().package()).vec(), "FramedContentTBS", tbs, signature
    )
