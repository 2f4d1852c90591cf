"""The few MLS (RFC 9420) structures a DAVE voice gateway writes and reads, in RFC 9420's TLS presentation encoding.

Discord's voice gateway is the MLS delivery service and external sender of each call's group (DAVE whitepaper,
"Delivery Service"): it signs Add and Remove proposals as PublicMessages, computes their proposal references, and
inspects the members' key packages, commits and welcomes without being a member. Nothing on PyPI offers that
without a whole group state (``rfc9420`` builds external proposals only from an ``MLSGroup`` it is a member of), so
this module encodes just those structures by hand, each with the RFC section it follows. Ciphersuite 2 only
(DHKEMP256_AES128GCM_SHA256_P256, DAVE protocol version 1): SHA-256 and ECDSA P-256 with DER signatures.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

MLS_10 = 1
CIPHERSUITE_P256 = 2
# WireFormat (RFC 9420 §6).
WIRE_PUBLIC_MESSAGE = 1
WIRE_KEY_PACKAGE = 5
# SenderType (§6).
SENDER_MEMBER = 1
SENDER_EXTERNAL = 2
# ContentType (§6).
CONTENT_PROPOSAL = 2
CONTENT_COMMIT = 3
# ProposalType (§12.1).
PROPOSAL_ADD = 1
PROPOSAL_REMOVE = 3
# ProposalOrRefType (§12.4).
PROPOSAL_INLINE = 1
PROPOSAL_REFERENCE = 2
CREDENTIAL_BASIC = 1
# LeafNodeSource (§7.2).
SOURCE_KEY_PACKAGE = 1
SOURCE_UPDATE = 2
SOURCE_COMMIT = 3
# The lifetime the voice gateway requires of every key package (whitepaper, "Key Packages / Validation").
LIFETIME_FOREVER = (0, 2**64 - 1)


class MLSDecodeError(ValueError):
    """Bytes that are not the MLS structure they should be."""


# ---------------------------------------------------------------- encoding (§2.1)


def varint(length: int) -> bytes:
    """Encode a vector length as RFC 9420 §2.1.2's variable-size header (1, 2 or 4 bytes, the shortest)."""
    if length < 1 << 6:
        return bytes([length])
    if length < 1 << 14:
        return struct.pack(">H", 0x4000 | length)
    if length < 1 << 30:
        return struct.pack(">I", 0x8000_0000 | length)
    raise ValueError("vector too long for MLS")


def vec(data: bytes) -> bytes:
    """Encode ``opaque data<V>``: the variable-size length, then the bytes."""
    return varint(len(data)) + data


class Reader:
    """Reads TLS-encoded fields from bytes, raising MLSDecodeError on anything short or malformed."""

    def __init__(self, data: bytes, position: int = 0) -> None:
        """Read ``data`` from ``position``."""
        self.data = data
        self.position = position

    def take(self, count: int) -> bytes:
        """The next ``count`` bytes."""
        end = self.position + count
        if count < 0 or end > len(self.data):
            raise MLSDecodeError("truncated MLS structure")
        chunk = self.data[self.position : end]
        self.position = end
        return chunk

    def u8(self) -> int:
        """A uint8."""
        return self.take(1)[0]

    def u16(self) -> int:
        """A uint16, big endian."""
        return int(struct.unpack(">H", self.take(2))[0])

    def u32(self) -> int:
        """A uint32, big endian."""
        return int(struct.unpack(">I", self.take(4))[0])

    def u64(self) -> int:
        """A uint64, big endian."""
        return int(struct.unpack(">Q", self.take(8))[0])

    def length(self) -> int:
        """A variable-size vector length; §2.1.2 requires the shortest encoding and forbids the 0b11 prefix."""
        first = self.u8()
        prefix = first >> 6
        if prefix == 0:
            return first & 0x3F
        if prefix == 1:
            value = ((first & 0x3F) << 8) | self.u8()
            minimum = 1 << 6
        elif prefix == 2:
            value = ((first & 0x3F) << 24) | int.from_bytes(self.take(3), "big")
            minimum = 1 << 14
        else:
            raise MLSDecodeError("invalid vector length prefix")
        if value < minimum:
            raise MLSDecodeError("vector length not minimally encoded")
        return value

    def vec(self) -> bytes:
        """An ``opaque<V>``."""
        return self.take(self.length())

    def items(self) -> Reader:
        """A reader over the contents of a vector of structures."""
        return Reader(self.vec())

    @property
    def done(self) -> bool:
        """Whether every byte was read."""
        return self.position == len(self.data)


# ---------------------------------------------------------------- signatures and references (§5)


def sign_with_label(key: ec.EllipticCurvePrivateKey, label: str, content: bytes) -> bytes:
    """SignWithLabel (§5.1.2): sign ``SignContent{label = "MLS 1.0 " + label, content}``, ECDSA P-256, DER."""
    return key.sign(vec(b"MLS 1.0 " + label.encode()) + vec(content), ec.ECDSA(hashes.SHA256()))


def verify_with_label(public_key: bytes, label: str, content: bytes, signature: bytes) -> bool:
    """VerifyWithLabel (§5.1.2) for an uncompressed SEC1 P-256 public key."""
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_key)
        key.verify(signature, vec(b"MLS 1.0 " + label.encode()) + vec(content), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def ref_hash(label: str, value: bytes) -> bytes:
    """RefHash (§5.2): SHA-256 of ``RefHashInput{label, value}``."""
    return hashlib.sha256(vec(label.encode()) + vec(value)).digest()


def public_key_bytes(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The uncompressed SEC1 point MLS uses as a P-256 SignaturePublicKey."""
    return key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


# ---------------------------------------------------------------- the external sender (§12.1.8)


@dataclass
class ExternalSender:
    """The voice gateway's signing key and basic credential (whitepaper, "External Sender")."""

    identity: bytes = b"voice-gateway"
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    def package(self) -> bytes:
        """``ExternalSender{signature_key, Credential{basic, identity}}``, the body of opcode 25."""
        return vec(public_key_bytes(self.key)) + struct.pack(">H", CREDENTIAL_BASIC) + vec(self.identity)

    def proposal(self, group_id: bytes, epoch: int, proposal: bytes) -> bytes:
        """Frame and sign a proposal as a PublicMessage MLSMessage from external sender 0 (§6.1, §6.2)."""
        content = (
            vec(group_id)
            + struct.pack(">QBI", epoch, SENDER_EXTERNAL, 0)
            + vec(b"")  # authenticated_data
            + bytes([CONTENT_PROPOSAL])
            + proposal
        )
        # FramedContentTBS: version, wire_format, content; no GroupContext for an external sender.
        to_sign = struct.pack(">HH", MLS_10, WIRE_PUBLIC_MESSAGE) + content
        signature = sign_with_label(self.key, "FramedContentTBS", to_sign)
        # PublicMessage: content, auth (signature only for a proposal), no membership_tag for an external sender.
        return struct.pack(">HH", MLS_10, WIRE_PUBLIC_MESSAGE) + content + vec(signature)

    def add(self, group_id: bytes, epoch: int, key_package: bytes) -> bytes:
        """An external Add proposal (§12.1.1) for a bare KeyPackage."""
        return self.proposal(group_id, epoch, struct.pack(">H", PROPOSAL_ADD) + key_package)

    def remove(self, group_id: bytes, epoch: int, leaf_index: int) -> bytes:
        """An external Remove proposal (§12.1.3) for a leaf index."""
        return self.proposal(group_id, epoch, struct.pack(">HI", PROPOSAL_REMOVE, leaf_index))


def proposal_ref(message: bytes) -> bytes:
    """The ProposalRef (§5.2) of a PublicMessage proposal: RefHash over its AuthenticatedContent.

    AuthenticatedContent is ``wire_format || content || auth``: the MLSMessage without its version, and without a
    membership tag, which an external sender's message has none of.
    """
    return ref_hash("MLS 1.0 Proposal Reference", message[2:])


def proposals_append(messages: list[bytes]) -> bytes:
    """Opcode 27's body for ``append``: the operation type, then ``MLSMessage proposal_messages<V>``."""
    return b"\x00" + vec(b"".join(messages))


def proposals_revoke(refs: list[bytes]) -> bytes:
    """Opcode 27's body for ``revoke``: the operation type, then ``ProposalRef proposal_refs<V>``."""
    return b"\x01" + vec(b"".join(vec(ref) for ref in refs))


# ---------------------------------------------------------------- key packages and leaf nodes (§7.2, §10)


@dataclass(frozen=True)
class LeafNode:
    """The parts of a LeafNode the voice gateway checks."""

    signature_key: bytes
    credential_type: int
    identity: bytes
    source: int
    lifetime: tuple[int, int] | None


def read_leaf_node(reader: Reader) -> LeafNode:
    """Read a LeafNode (§7.2)."""
    reader.vec()  # encryption_key
    signature_key = reader.vec()
    credential_type = reader.u16()
    if credential_type != CREDENTIAL_BASIC:
        raise MLSDecodeError("only basic credentials are allowed in DAVE")
    identity = reader.vec()
    for _ in range(5):  # capabilities: versions, cipher_suites, extensions, proposals, credentials
        reader.vec()
    source = reader.u8()
    lifetime: tuple[int, int] | None = None
    if source == SOURCE_KEY_PACKAGE:
        lifetime = (reader.u64(), reader.u64())
    elif source == SOURCE_COMMIT:
        reader.vec()  # parent_hash
    elif source != SOURCE_UPDATE:
        raise MLSDecodeError("unknown leaf node source")
    reader.vec()  # extensions
    reader.vec()  # signature
    return LeafNode(signature_key, credential_type, identity, source, lifetime)


@dataclass(frozen=True)
class KeyPackage:
    """A member's key package as sent in opcode 26, checked as the whitepaper's "Key Packages / Validation" says."""

    body: bytes  # the bare KeyPackage, as an Add proposal carries it
    ref: bytes  # its KeyPackageRef (§5.2), which a Welcome names it by
    leaf: LeafNode

    @property
    def user_id(self) -> int:
        """The Discord user id in the basic credential (big-endian 64-bit snowflake)."""
        return int.from_bytes(self.leaf.identity, "big")


def read_key_package(message: bytes) -> KeyPackage:
    """Read and validate opcode 26's key package; MLSDecodeError if it is unacceptable.

    The whitepaper's opcode 26 names an ``MLSMessage``, but libdave and davey both send the bare KeyPackage
    (``tls::marshal(keyPackage)``), so either is accepted: a bare one starts with version 1 then ciphersuite 2,
    an MLSMessage with version 1 then wire format 5.
    """
    reader = Reader(message)
    if message[2:4] == struct.pack(">H", WIRE_KEY_PACKAGE):
        reader.take(4)  # the MLSMessage header: version, wire_format
    start = reader.position
    if reader.u16() != MLS_10 or reader.u16() != CIPHERSUITE_P256:
        raise MLSDecodeError("key package is not MLS 1.0 with ciphersuite 2")
    reader.vec()  # init_key
    leaf = read_leaf_node(reader)
    reader.vec()  # extensions
    to_sign_end = reader.position
    signature = reader.vec()
    if not reader.done:
        raise MLSDecodeError("trailing bytes after the key package")
    if leaf.source != SOURCE_KEY_PACKAGE or leaf.lifetime != LIFETIME_FOREVER:
        raise MLSDecodeError("key package lifetime must be not_before=0, not_after=2^64-1")
    if len(leaf.identity) != 8:
        raise MLSDecodeError("credential identity must be a big-endian 64-bit user id")
    if not verify_with_label(leaf.signature_key, "KeyPackageTBS", message[start:to_sign_end], signature):
        raise MLSDecodeError("key package signature does not verify")
    body = message[start:]
    return KeyPackage(body, ref_hash("MLS 1.0 KeyPackage Reference", body), leaf)


# ---------------------------------------------------------------- commits and welcomes (§6, §12.4)


@dataclass(frozen=True)
class Commit:
    """The public parts of a member's commit."""

    message: bytes  # the whole MLSMessage, as opcode 29 relays it
    group_id: bytes
    epoch: int
    sender_leaf: int
    proposal_refs: list[bytes]
    inline_proposals: int
    path_leaf: LeafNode | None


def read_commit(reader: Reader) -> Commit:
    """Read a PublicMessage commit (§6.2, §12.4) from a member; the reader stops right after it."""
    start = reader.position
    if reader.u16() != MLS_10 or reader.u16() != WIRE_PUBLIC_MESSAGE:
        raise MLSDecodeError("a commit must be an MLS 1.0 PublicMessage")
    group_id = reader.vec()
    epoch = reader.u64()
    if reader.u8() != SENDER_MEMBER:
        raise MLSDecodeError("a commit must come from a member")
    sender_leaf = reader.u32()
    reader.vec()  # authenticated_data
    if reader.u8() != CONTENT_COMMIT:
        raise MLSDecodeError("not a commit")
    refs: list[bytes] = []
    inline = 0
    proposals = reader.items()
    while not proposals.done:
        kind = proposals.u8()
        if kind == PROPOSAL_REFERENCE:
            refs.append(proposals.vec())
        elif kind == PROPOSAL_INLINE:
            inline += 1
            break  # an inline proposal cannot be skipped without parsing every proposal type; it is refused anyway
        else:
            raise MLSDecodeError("unknown ProposalOrRef type")
    path_leaf: LeafNode | None = None
    present = reader.u8()
    if present == 1:
        path_leaf = read_leaf_node(reader)
        reader.vec()  # nodes<V>
    elif present != 0:
        raise MLSDecodeError("bad optional<UpdatePath>")
    reader.vec()  # signature
    reader.vec()  # confirmation_tag
    reader.vec()  # membership_tag (a member's PublicMessage)
    return Commit(reader.data[start : reader.position], group_id, epoch, sender_leaf, refs, inline, path_leaf)


@dataclass(frozen=True)
class Welcome:
    """A Welcome (§12.4.3.1) split into the secrets for each new member."""

    cipher_suite: int
    secrets: dict[bytes, bytes]  # KeyPackageRef -> the encoded EncryptedGroupSecrets entry
    encrypted_group_info: bytes

    def for_member(self, key_package_ref: bytes) -> bytes | None:
        """The Welcome holding only the secrets encrypted for one key package (opcode 30's targeted subset)."""
        entry = self.secrets.get(key_package_ref)
        if entry is None:
            return None
        return struct.pack(">H", self.cipher_suite) + vec(entry) + vec(self.encrypted_group_info)


def read_welcome(data: bytes) -> Welcome:
    """Read a bare Welcome, as opcode 28 appends it after the commit."""
    reader = Reader(data)
    cipher_suite = reader.u16()
    secrets: dict[bytes, bytes] = {}
    entries = reader.items()
    while not entries.done:
        start = entries.position
        new_member = entries.vec()
        entries.vec()  # kem_output
        entries.vec()  # ciphertext
        secrets[new_member] = entries.data[start : entries.position]
    encrypted_group_info = reader.vec()
    if not reader.done:
        raise MLSDecodeError("trailing bytes after the welcome")
    return Welcome(cipher_suite, secrets, encrypted_group_info)
