"""DAVE (Discord's end-to-end encryption for voice, protocol version 1) for the voice stand-in.

Two halves, both as Discord documents them (``voice-connections.mdx``, "End-to-End Encryption (DAVE Protocol)",
and the protocol whitepaper, whose section names the comments below quote):

- ``DaveCall``, the voice gateway's side of one call's MLS group: it is the delivery service and the external
  sender, proposes Add and Remove for members who connect and disconnect, relays the first valid commit of each
  epoch (opcode 29) to the members and its welcome (opcode 30) to the joiners, and runs the transitions
  (21, 22, 23, 24). It never holds group secrets.
- ``Listener``, a simulated member of the call: its own ``davey.DaveSession`` (the same MLS/DAVE implementation
  discord.py uses, but driven by this client logic, not discord.py's) that commits, is welcomed, and decrypts every
  frame the call carries. A frame counts as heard only when every listener present decrypts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import davey

from tests.fakes import mls

_log = logging.getLogger(__name__)

DAVE_PROTOCOL_VERSION = 1

# Voice gateway opcodes of the DAVE protocol (opcodes-and-status-codes.mdx, "Voice Opcodes").
CLIENTS_CONNECT = 11
CLIENT_DISCONNECT = 13
PREPARE_TRANSITION = 21
EXECUTE_TRANSITION = 22
TRANSITION_READY = 23
PREPARE_EPOCH = 24
EXTERNAL_SENDER_PACKAGE = 25
KEY_PACKAGE = 26
PROPOSALS = 27
COMMIT_WELCOME = 28
ANNOUNCE_COMMIT_TRANSITION = 29
WELCOME = 30
INVALID_COMMIT_WELCOME = 31
BINARY_OPCODES = frozenset({EXTERNAL_SENDER_PACKAGE, KEY_PACKAGE, PROPOSALS, COMMIT_WELCOME, 29, WELCOME})

# "After all clients are ready (or after a timeout)": removed members can decrypt for "roughly two seconds (due to
# the voice gateway transition timeout ...)" (whitepaper, "Member Remove").
TRANSITION_TIMEOUT = 2.0


class Member(Protocol):
    """A connection the call sends DAVE messages to: the bot's voice websocket or a simulated listener."""

    user_id: int

    async def deliver_json(self, op: int, data: dict[str, Any]) -> None:
        """Send a JSON opcode."""

    async def deliver_binary(self, op: int, payload: bytes) -> None:
        """Send a binary opcode (the call's payload after the opcode byte)."""


@dataclass
class _Proposal:
    message: bytes
    kind: int  # mls.PROPOSAL_ADD or mls.PROPOSAL_REMOVE
    user_id: int
    key_package: mls.KeyPackage | None = None
    leaf: int | None = None
    sent_to: set[int] = field(default_factory=set)


@dataclass
class _Transition:
    transition_id: int
    epoch: int
    participants: set[int]
    awaiting: set[int]
    timer: asyncio.Task[None] | None = None


@dataclass(frozen=True)
class RelayedCommit:
    """A commit the call announced: who made it, for which epoch, and who it added and removed."""

    transition_id: int
    epoch: int
    committer: int
    added: tuple[int, ...]
    removed: tuple[int, ...]


class DaveCall:
    """The voice gateway's view of one call's MLS group (whitepaper, "Delivery Service")."""

    def __init__(self, guild_id: int, channel_id: int, *, transition_timeout: float = TRANSITION_TIMEOUT) -> None:
        """An unestablished group whose id is the channel id, big-endian (libdave ``BigEndianBytesFrom``)."""
        self.guild_id = guild_id
        self.channel_id = channel_id
        self.group_id = channel_id.to_bytes(8, "big")
        self.external_sender = mls.ExternalSender()
        self.transition_timeout = transition_timeout
        self.members: dict[int, Member] = {}
        # The simulated listeners connected to this call (the voice stand-in keeps this up to date).
        self.listeners: dict[int, Listener] = {}
        # "retains basic MLS group context (group ID, epoch ...) and associates each member with their leaf index".
        self.epoch = 0  # 0: no established group
        self.leaves: list[int | None] = []
        self.signature_keys: dict[int, bytes] = {}
        self.key_packages: dict[int, mls.KeyPackage] = {}
        self.proposals: dict[bytes, _Proposal] = {}
        # Members that reported an invalid commit or welcome: reset, waiting to be re-added.
        self.stale: set[int] = set()
        self.transition: _Transition | None = None
        self._next_transition_id = 1
        self.commits: list[RelayedCommit] = []
        self.rejected_commits: list[str] = []
        self.rejected_key_packages: list[str] = []
        self.invalid_reports: list[tuple[int, int]] = []
        self.executed: list[tuple[float, int]] = []
        self.corrupt_welcomes_for: set[int] = set()
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()

    # ---------------------------------------------------------------- who is where

    @property
    def established(self) -> bool:
        """Whether a commit has created the group (epoch 1 or later)."""
        return self.epoch > 0

    def leaf_of(self, user_id: int) -> int | None:
        """The leaf index the gateway holds for a user, if they are in the group."""
        with contextlib.suppress(ValueError):
            return self.leaves.index(user_id)
        return None

    def group_members(self) -> list[int]:
        """Connected users in the established group in good standing: those proposals are sent to."""
        return [u for u in self.leaves if u is not None and u in self.members and u not in self.stale]

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds after some change of the call."""
        async with asyncio.timeout(timeout):
            while not predicate():
                event = self._changed
                await event.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # ---------------------------------------------------------------- connections

    async def join(self, member: Member) -> None:
        """A member connected with DAVE: tell the others (op 11), send it the external sender (op 25)."""
        async with self._lock:
            others = [user_id for user_id in self.members if user_id != member.user_id]
            self.members[member.user_id] = member
            self.stale.discard(member.user_id)
            for user_id in others:
                await self.members[user_id].deliver_json(CLIENTS_CONNECT, {"user_ids": [str(member.user_id)]})
            if others:
                await member.deliver_json(CLIENTS_CONNECT, {"user_ids": [str(u) for u in others]})
            await member.deliver_binary(EXTERNAL_SENDER_PACKAGE, self.external_sender.package())
            if not self.established:
                # "A client that joins when there is not an established group receives any already sent in-flight
                # add proposals for existing pending members."
                await self._send_proposals(member.user_id, [p for p in self.proposals.values()])
            self._notify()

    async def leave(self, member: Member) -> None:
        """A member disconnected: revoke its add, propose its removal, or reset a sole remaining member."""
        async with self._lock:
            if self.members.get(member.user_id) is not member:
                return
            user_id = member.user_id
            del self.members[user_id]
            self.key_packages.pop(user_id, None)
            self.stale.discard(user_id)
            for other in self.members.values():
                await other.deliver_json(CLIENT_DISCONNECT, {"user_id": str(user_id)})
            await self._revoke_adds_of(user_id)
            if self.transition is not None:
                self.transition.awaiting.discard(user_id)
                self.transition.participants.discard(user_id)
            if not self.established:
                self._notify()
                return
            remaining = [u for u in self.leaves if u is not None and u != user_id and u in self.members]
            if len(remaining) <= 1 and len(self.members) <= 1:
                await self._sole_member_reset()
            elif self.leaf_of(user_id) is not None:
                await self._propose_remove(user_id)
            await self._maybe_execute()
            self._notify()

    async def _sole_member_reset(self) -> None:
        """Whitepaper "Sole member reset": op 24 (epoch 1), then op 21 (transition 0); a new, unestablished group."""
        self._cancel_transition()
        self.epoch = 0
        self.leaves = []
        self.signature_keys = {}
        self.key_packages = {}
        self.proposals = {}
        self.stale = set()
        for member in self.members.values():
            await member.deliver_json(PREPARE_EPOCH, {"protocol_version": DAVE_PROTOCOL_VERSION, "epoch": 1})
            await member.deliver_json(
                PREPARE_TRANSITION, {"protocol_version": DAVE_PROTOCOL_VERSION, "transition_id": 0}
            )

    # ---------------------------------------------------------------- proposals

    async def key_package(self, member: Member, data: bytes) -> None:
        """Opcode 26: validate the key package (whitepaper "Key Packages / Validation") and propose the add."""
        async with self._lock:
            if self.members.get(member.user_id) is not member:
                return
            try:
                package = mls.read_key_package(data)
            except mls.MLSDecodeError as error:
                self.rejected_key_packages.append(str(error))
                return
            if package.user_id != member.user_id:
                # "The voice gateway validates that the user ID in the credential matches the authenticated user".
                self.rejected_key_packages.append("credential is not the authenticated user")
                return
            # "A pending group member can replace their key package but cannot simultaneously use multiple."
            await self._revoke_adds_of(member.user_id)
            self.key_packages[member.user_id] = package
            if self.established and self.leaf_of(member.user_id) is not None:
                # "They are about to be re-added with a different key package": its old leaf goes first.
                await self._propose_remove(member.user_id)
            await self._propose_add(member.user_id, package)
            self._notify()

    async def _propose_add(self, user_id: int, package: mls.KeyPackage) -> None:
        message = self.external_sender.add(self.group_id, self.epoch, package.body)
        proposal = _Proposal(message, mls.PROPOSAL_ADD, user_id, key_package=package)
        self.proposals[mls.proposal_ref(message)] = proposal
        if self.established:
            recipients = self.group_members()
        else:
            # "receiving a key package will broadcast the add proposal to all other pending group members".
            recipients = [u for u in self.members if u != user_id]
        for recipient in recipients:
            await self._send_proposals(recipient, [proposal])

    async def _propose_remove(self, user_id: int) -> None:
        leaf = self.leaf_of(user_id)
        if leaf is None or any(p.kind == mls.PROPOSAL_REMOVE and p.leaf == leaf for p in self.proposals.values()):
            return
        message = self.external_sender.remove(self.group_id, self.epoch, leaf)
        proposal = _Proposal(message, mls.PROPOSAL_REMOVE, user_id, leaf=leaf)
        self.proposals[mls.proposal_ref(message)] = proposal
        for recipient in self.group_members():
            if recipient != user_id:
                await self._send_proposals(recipient, [proposal])

    async def _revoke_adds_of(self, user_id: int) -> None:
        """Revoke a user's in-flight adds ("when a pending member no longer needs to be added", whitepaper)."""
        refs = [ref for ref, p in self.proposals.items() if p.kind == mls.PROPOSAL_ADD and p.user_id == user_id]
        for ref in refs:
            proposal = self.proposals.pop(ref)
            for recipient in proposal.sent_to:
                if recipient in self.members and recipient != user_id:
                    await self.members[recipient].deliver_binary(PROPOSALS, mls.proposals_revoke([ref]))

    async def _send_proposals(self, recipient: int, proposals: list[_Proposal]) -> None:
        proposals = [p for p in proposals if p.user_id != recipient or p.kind == mls.PROPOSAL_REMOVE]
        if not proposals:
            return
        for proposal in proposals:
            proposal.sent_to.add(recipient)
        await self.members[recipient].deliver_binary(PROPOSALS, mls.proposals_append([p.message for p in proposals]))

    # ---------------------------------------------------------------- commits

    async def commit_welcome(self, member: Member, data: bytes) -> None:
        """Opcode 28: relay the first valid commit of the epoch (29) and its welcomes (30), or drop it."""
        async with self._lock:
            if self.members.get(member.user_id) is not member:
                return
            try:
                reader = mls.Reader(data)
                commit = mls.read_commit(reader)
                welcome = mls.read_welcome(data[reader.position :]) if not reader.done else None
            except mls.MLSDecodeError as error:
                self.rejected_commits.append(f"undecodable: {error}")
                return
            problem = self._commit_problem(member.user_id, commit, welcome)
            if problem is not None:
                self.rejected_commits.append(problem)
                _log.debug("voice stand-in: dropped a commit from %s: %s", member.user_id, problem)
                return
            await self._apply_commit(member.user_id, commit, welcome)
            self._notify()

    def _commit_problem(self, user_id: int, commit: mls.Commit, welcome: mls.Welcome | None) -> str | None:
        """Whitepaper "Voice Gateway Commit Validity" and "Commit Ordering"; None when the commit is valid."""
        if commit.group_id != self.group_id:
            return "wrong group"
        if commit.epoch != self.epoch:
            return f"epoch {commit.epoch}, the group is at {self.epoch}"
        if commit.inline_proposals:
            return "inline proposals"
        if user_id in self.stale:
            return "committer reported an invalid commit or welcome"
        refs = set(commit.proposal_refs)
        if not refs or len(refs) != len(commit.proposal_refs):
            return "no proposals, or one referenced twice"
        if self.established:
            if commit.sender_leaf != self.leaf_of(user_id):
                return "sender leaf is not the committer's"
            expected = set(self.proposals)
            signature_key = self.signature_keys.get(user_id)
        else:
            if commit.sender_leaf != 0 or user_id not in self.key_packages:
                return "an initial commit comes from leaf 0 of a pending member"
            # The initial group's creator commits the adds of the other pending members it was sent.
            expected = {ref for ref, p in self.proposals.items() if user_id in p.sent_to}
            signature_key = self.key_packages[user_id].leaf.signature_key
        if refs != expected:
            return "does not reference exactly the unrevoked proposals of the epoch"
        if commit.path_leaf is not None and commit.path_leaf.signature_key != signature_key:
            return "the commit changes its leaf's signature key"
        added = [self.proposals[ref].key_package for ref in commit.proposal_refs]
        joiners = [package for package in added if package is not None]
        if joiners and (welcome is None or any(welcome.for_member(p.ref) is None for p in joiners)):
            # "All members added in the epoch must be welcomed for the welcome to be valid."
            return "a welcome is missing for an added member"
        return None

    async def _apply_commit(self, committer: int, commit: mls.Commit, welcome: mls.Welcome | None) -> None:
        previous = [committer] if not self.established else self.group_members()
        if not self.established:
            self.leaves = [committer]
            self.signature_keys = {committer: self.key_packages.pop(committer).leaf.signature_key}
        # RFC 9420 §12.3: removes apply before adds; an add takes the leftmost blank leaf.
        proposals = [self.proposals[ref] for ref in commit.proposal_refs]
        removed: list[int] = []
        for proposal in proposals:
            if proposal.kind == mls.PROPOSAL_REMOVE and proposal.leaf is not None:
                gone = self.leaves[proposal.leaf]
                self.leaves[proposal.leaf] = None
                if gone is not None and gone not in self.leaves:
                    removed.append(gone)
                    self.signature_keys.pop(gone, None)
        added: list[tuple[int, mls.KeyPackage]] = []
        for proposal in proposals:
            if proposal.kind == mls.PROPOSAL_ADD and proposal.key_package is not None:
                package = proposal.key_package
                if None in self.leaves:
                    self.leaves[self.leaves.index(None)] = proposal.user_id
                else:
                    self.leaves.append(proposal.user_id)
                self.signature_keys[proposal.user_id] = package.leaf.signature_key
                if self.key_packages.get(proposal.user_id) is package:
                    del self.key_packages[proposal.user_id]
                self.stale.discard(proposal.user_id)
                added.append((proposal.user_id, package))
        while self.leaves and self.leaves[-1] is None:
            self.leaves.pop()
        self.epoch += 1
        self.proposals = {}
        transition_id = self._next_transition_id
        self._next_transition_id = self._next_transition_id % 0xFFFF + 1
        self.commits.append(
            RelayedCommit(transition_id, self.epoch, committer, tuple(u for u, _ in added), tuple(removed))
        )
        self._cancel_transition()
        announced = [u for u in previous if u in self.members and u not in removed and u in self.leaves]
        participants = set(announced) | {u for u, _ in added if u in self.members}
        self.transition = _Transition(transition_id, self.epoch, participants, set(participants))
        self.transition.timer = asyncio.get_running_loop().create_task(self._timeout(transition_id))
        prefix = struct.pack(">H", transition_id)
        for user_id in announced:
            await self.members[user_id].deliver_binary(ANNOUNCE_COMMIT_TRANSITION, prefix + commit.message)
        for user_id, package in added:
            if user_id not in self.members or welcome is None:
                continue
            targeted = welcome.for_member(package.ref) or b""
            if user_id in self.corrupt_welcomes_for:
                self.corrupt_welcomes_for.discard(user_id)
                targeted = targeted[:-1] + bytes([targeted[-1] ^ 0xFF])
            await self.members[user_id].deliver_binary(WELCOME, prefix + targeted)
        # Pending members this commit did not add are proposed again in the new epoch.
        for user_id, package in list(self.key_packages.items()):
            if user_id in self.members:
                await self._propose_add(user_id, package)

    # ---------------------------------------------------------------- transitions

    async def transition_ready(self, member: Member, transition_id: int) -> None:
        """Opcode 23: once every participant of the transition is ready, execute it (22)."""
        async with self._lock:
            transition = self.transition
            if transition is None or transition.transition_id != transition_id:
                return
            transition.awaiting.discard(member.user_id)
            await self._maybe_execute()
            self._notify()

    async def invalid_commit_welcome(self, member: Member, transition_id: int) -> None:
        """Opcode 31: remove the flagging member; it comes back with a new key package (whitepaper "Recovery")."""
        async with self._lock:
            user_id = member.user_id
            self.invalid_reports.append((user_id, transition_id))
            if self.transition is not None:
                self.transition.awaiting.discard(user_id)
                self.transition.participants.discard(user_id)
            self.stale.add(user_id)
            await self._revoke_adds_of(user_id)
            self.key_packages.pop(user_id, None)
            if self.established:
                await self._propose_remove(user_id)
            await self._maybe_execute()
            self._notify()

    async def _maybe_execute(self) -> None:
        transition = self.transition
        if transition is not None and not transition.awaiting:
            await self._execute(transition)

    async def _timeout(self, transition_id: int) -> None:
        await asyncio.sleep(self.transition_timeout)
        async with self._lock:
            if self.transition is not None and self.transition.transition_id == transition_id:
                await self._execute(self.transition)
                self._notify()

    async def _execute(self, transition: _Transition) -> None:
        self._cancel_transition()
        self.executed.append((time.monotonic(), transition.transition_id))
        for user_id in sorted(transition.participants):
            if user_id in self.members:
                await self.members[user_id].deliver_json(
                    EXECUTE_TRANSITION, {"transition_id": transition.transition_id}
                )

    def _cancel_transition(self) -> None:
        timer = self.transition.timer if self.transition is not None else None
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
        self.transition = None

    def close(self) -> None:
        """Stop the transition timer."""
        self._cancel_transition()


# ---------------------------------------------------------------- simulated listeners


@dataclass(frozen=True)
class HeardFrame:
    """One media frame as a listener received it: decrypted, or ``None`` when it could not be."""

    sender: int
    received_at: float
    plaintext: bytes | None
    error: str = ""


class Listener:
    """A simulated call member: an independent ``davey.DaveSession`` driven as a DAVE client does.

    Its client logic follows the protocol, not discord.py: key package on connect and on a new group (op 24 with
    epoch 1) and after reporting an invalid message; proposals from the external sender only, for users announced
    by op 11 (``expected_user_ids``); commit on proposals; process commits and welcomes, then report ready (23);
    reset and report (31) what it cannot process. ``ignores_prepare_epoch`` and ``encrypts=False`` make the broken
    clients the negative controls need.
    """

    def __init__(
        self,
        call: DaveCall,
        user_id: int,
        send: Callable[[Listener, int, Any], Awaitable[None]],
        relay: Callable[[Listener, bytes], None],
        *,
        encrypts: bool = True,
        ignores_prepare_epoch: bool = False,
    ) -> None:
        """A listener of ``call`` that answers through ``send(listener, op, data)`` and speaks through ``relay``."""
        self.call = call
        self.user_id = user_id
        self.encrypts = encrypts
        self.ignores_prepare_epoch = ignores_prepare_epoch
        self.session = davey.DaveSession(DAVE_PROTOCOL_VERSION, user_id, call.channel_id)
        self.protocol_version = DAVE_PROTOCOL_VERSION
        self.pending_transitions: dict[int, int] = {}
        self.executed_transitions: list[int] = []
        self.expected_users: set[int] = {user_id}
        self.frames: list[HeardFrame] = []
        self.errors: list[str] = []
        self.joined_at = time.monotonic()
        self.connected = True
        self._send = send
        self._relay = relay
        self._inbox: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def __repr__(self) -> str:
        """Describe the listener."""
        return f"Listener(user_id={self.user_id}, epoch={self.session.epoch}, ready={self.session.ready})"

    async def deliver_json(self, op: int, data: dict[str, Any]) -> None:
        """Receive a JSON opcode from the gateway."""
        self._inbox.put_nowait((op, data))

    async def deliver_binary(self, op: int, payload: bytes) -> None:
        """Receive a binary opcode from the gateway."""
        self._inbox.put_nowait((op, payload))

    async def connect(self) -> None:
        """What a client does on select_protocol_ack with protocol version 1: send its key package."""
        await self._send(self, KEY_PACKAGE, self.session.get_serialized_key_package())

    async def close(self) -> None:
        """Stop processing gateway messages."""
        self.connected = False
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def settled(self, timeout: float = 5.0) -> None:
        """Wait until every gateway message delivered so far has been processed."""
        async with asyncio.timeout(timeout):
            while not self._inbox.empty() or self._busy:
                await asyncio.sleep(0.005)

    _busy = False

    async def _run(self) -> None:
        while True:
            op, data = await self._inbox.get()
            self._busy = True
            try:
                await self._handle(op, data)
            except Exception as error:  # a client bug must show in the test, not kill the listener
                _log.exception("voice stand-in listener %s failed on op %s", self.user_id, op)
                self.errors.append(f"op {op}: {error}")
            finally:
                self._busy = False

    async def _handle(self, op: int, data: Any) -> None:
        session = self.session
        if op == CLIENTS_CONNECT:
            self.expected_users.update(int(u) for u in data["user_ids"])
        elif op == CLIENT_DISCONNECT:
            self.expected_users.discard(int(data["user_id"]))
        elif op == EXTERNAL_SENDER_PACKAGE:
            session.set_external_sender(data)
        elif op == PROPOSALS:
            append = data[0] == 0
            result = session.process_proposals(
                davey.ProposalsOperationType.append if append else davey.ProposalsOperationType.revoke,
                data[1:],
                sorted(self.expected_users) if append else None,
            )
            if isinstance(result, davey.CommitWelcome):
                await self._send(self, COMMIT_WELCOME, result.commit + (result.welcome or b""))
        elif op in (ANNOUNCE_COMMIT_TRANSITION, WELCOME):
            transition_id = struct.unpack_from(">H", data, 0)[0]
            try:
                if op == WELCOME:
                    session.process_welcome(data[2:])
                else:
                    session.process_commit(data[2:])
            except ValueError as error:
                self.errors.append(f"op {op}: {error}")
                await self._send(self, INVALID_COMMIT_WELCOME, {"transition_id": transition_id})
                self._reset()
                await self.connect()
                return
            if transition_id != 0:
                self.pending_transitions[transition_id] = DAVE_PROTOCOL_VERSION
                await self._send(self, TRANSITION_READY, {"transition_id": transition_id})
        elif op == PREPARE_TRANSITION:
            self.pending_transitions[data["transition_id"]] = data["protocol_version"]
            if data["transition_id"] == 0:
                self._execute(0)
            else:
                await self._send(self, TRANSITION_READY, {"transition_id": data["transition_id"]})
        elif op == EXECUTE_TRANSITION:
            self._execute(data["transition_id"])
        elif op == PREPARE_EPOCH:
            if self.ignores_prepare_epoch:
                return
            if data["epoch"] == 1:
                self.protocol_version = data["protocol_version"]
                self._reset()
                await self.connect()

    def _reset(self) -> None:
        # reinit keeps the external sender, which the gateway does not send again.
        self.session.reinit(DAVE_PROTOCOL_VERSION, self.user_id, self.call.channel_id)

    def _execute(self, transition_id: int) -> None:
        if transition_id in self.pending_transitions:
            self.protocol_version = self.pending_transitions.pop(transition_id)
            self.executed_transitions.append(transition_id)

    # ---------------------------------------------------------------- media

    def receive(self, sender: int, payload: bytes, received_at: float) -> bytes | None:
        """Decrypt one frame from ``sender`` as it arrives; record and return the plaintext, or None."""
        try:
            plaintext = self.session.decrypt(sender, davey.MediaType.audio, payload)
        except ValueError as error:
            self.frames.append(HeardFrame(sender, received_at, None, str(error)))
            return None
        self.frames.append(HeardFrame(sender, received_at, plaintext))
        return plaintext

    def speak(self, opus: bytes) -> bytes:
        """Send one Opus frame to the call: end-to-end encrypted once the group is ready (unless told not to)."""
        frame = self.session.encrypt_opus(opus) if self.encrypts and self.session.ready else opus
        self._relay(self, frame)
        return frame

    def decrypted_from(self, sender: int) -> list[HeardFrame]:
        """Frames from ``sender`` this listener decrypted."""
        return [f for f in self.frames if f.sender == sender and f.plaintext is not None]

    def undecrypted_from(self, sender: int) -> list[HeardFrame]:
        """Frames from ``sender`` this listener could not decrypt."""
        return [f for f in self.frames if f.sender == sender and f.plaintext is None]
