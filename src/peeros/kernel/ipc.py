"""Semaphores and bounded message queues: the decisions of PeerOS IPC, with no I/O.

Sources: E. W. Dijkstra, "Cooperating sequential processes" (EWD 123, 1965): P and V,
binary and general semaphores. A. Silberschatz, P. B. Galvin, G. Gagne, *Operating System
Concepts*, 10th ed., §6.6 "Semaphores" (the blocking implementation: a semaphore owns a
list of waiting processes, ``signal`` wakes one) and §7.1.1 "The Bounded-Buffer Problem";
§3.6 "IPC in Message-Passing Systems" (§3.6.3 buffering with bounded capacity: a sender
blocks while the queue is full, a receiver while it is empty). System V ``semop(2)``
``SEM_UNDO``: units a process took are given back when it ends.

Nothing here blocks. An operation that would block *queues* the party and says so; a later
operation that unblocks it returns its name, and the caller (the peer's async layer) wakes
it. Parties are plain strings chosen by callers (task ids, ``client:<random>``).

Contract and invariants:

* Wake order is FIFO and there is no barging: ``wait`` succeeds at once only when a unit
  is free *and* nobody is queued, so a newcomer never overtakes a waiter. Hence
  ``value > 0`` implies an empty queue. Likewise a queue with blocked senders is full.
* Units are conserved: ``value == initial + signals + units_undone - acquisitions`` and
  ``value >= 0``; a binary semaphore has at most one unit (free or held) in existence.
* Holders: a semaphore records which party holds each unit it handed out. Semaphores
  are unowned (anyone may signal), so ``signal(by)`` returns a unit ``by`` holds if it
  holds one, else the *oldest* outstanding unit, and creates a new unit only when none is
  outstanding. So ``value + sum(holders) == initial + created``. Signalling a *free* binary
  semaphore is an error (:class:`IpcConflict`), not a no-op: it is almost always a bug.
* ``undo(party)`` (SEM_UNDO) drops the party from the wait queue and gives back every
  unit it holds, waking waiters. As with SysV, it suits semaphores used as locks: a
  consumer holds the "full" units it took until some signal returns them.
* Every refused call raises an :class:`IpcError` subclass (an HTTP-mapped PeerOS error)
  and changes nothing. A party may wait at most once at a time on one object.
"""

from __future__ import annotations

import copy
import re
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

from peeros.errors import BadRequest, Conflict, NotFound, PeerOSError

__all__ = [
    "BROADCAST",
    "MAX_VALUE",
    "DuplicateIpc",
    "InvalidIpc",
    "IpcConflict",
    "IpcError",
    "IpcRegistry",
    "MessageQueue",
    "RecvResult",
    "Semaphore",
    "SendResult",
    "UnknownIpc",
]

#: The queue name that means "every queue on this peer".
BROADCAST = "*"
MAX_VALUE = 2**31 - 1
NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")


class IpcError(PeerOSError):
    """Base class of every IPC refusal (each subclass maps to an HTTP status)."""


class InvalidIpc(IpcError, BadRequest, ValueError):
    """A bad name, a negative value, a capacity below 1."""


class UnknownIpc(IpcError, NotFound):
    """No semaphore or queue of that name (or the name is the other kind)."""


class DuplicateIpc(IpcError, Conflict):
    """An object with that name already exists (semaphores and queues share names)."""


class IpcConflict(IpcError, Conflict):
    """The operation contradicts the state: a free binary semaphore, a double wait, a
    broadcast that would have to wait on a full queue."""


def _name(name: object, what: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidIpc(f"{what} name must be 1-128 of A-Z a-z 0-9 _ . -, got {name!r}")
    return name


def _party(party: object) -> str:
    if not isinstance(party, str) or not party:
        raise InvalidIpc(f"a party must be a non-empty string, got {party!r}")
    return party


class Semaphore:
    """A counting or binary semaphore with a FIFO waiting list (OSC §6.6.2)."""

    def __init__(self, name: str, value: int, binary: bool = False) -> None:
        self.name = _name(name, "semaphore")
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_VALUE:
            raise InvalidIpc(f"semaphore {name!r}: value must be an integer >= 0, got {value!r}")
        if binary and value > 1:
            raise InvalidIpc(
                f"semaphore {name!r}: a binary semaphore starts at 0 or 1, not {value}"
            )
        self.binary = binary
        self.initial = value
        self.value = value
        self._waiting: deque[str] = deque()
        #: one entry per outstanding unit, oldest first
        self._units: deque[str] = deque()

    def wait(self, waiter: str) -> bool:
        """P: True when ``waiter`` took a unit now; False when it is queued (FIFO)."""
        _party(waiter)
        if waiter in self._waiting:
            raise IpcConflict(f"{waiter} is already waiting on semaphore {self.name!r}")
        if self.value > 0 and not self._waiting:
            self.value -= 1
            self._units.append(waiter)
            return True
        self._waiting.append(waiter)
        return False

    def signal(self, by: str) -> list[str]:
        """V: return a unit; the waiters granted (at most one) are returned."""
        _party(by)
        if self._units:
            self._units.remove(by if by in self._units else self._units[0])
        elif self.binary and self.value >= 1:
            raise IpcConflict(
                f"binary semaphore {self.name!r} is already free (value 1); "
                "signalling it would exceed 1"
            )
        elif self.value >= MAX_VALUE:
            raise IpcConflict(f"semaphore {self.name!r} is at its maximum value {MAX_VALUE}")
        return self._release(1)

    def _release(self, units: int) -> list[str]:
        granted: list[str] = []
        for _ in range(units):
            if self._waiting:
                waiter = self._waiting.popleft()
                self._units.append(waiter)
                granted.append(waiter)
            else:
                self.value += 1
        return granted

    def cancel(self, waiter: str) -> bool:
        """``waiter`` stops waiting (its timeout): True when it was queued."""
        if waiter in self._waiting:
            self._waiting.remove(waiter)
            return True
        return False

    def undo(self, holder: str) -> list[str]:
        """SEM_UNDO: ``holder`` leaves the queue and gives back all it holds; who got units."""
        self.cancel(holder)
        held = self._units.count(holder)
        self._units = deque(u for u in self._units if u != holder)
        return self._release(held)

    def holders(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for party in self._units:
            out[party] = out.get(party, 0) + 1
        return out

    def waiters(self) -> list[str]:
        return list(self._waiting)

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "binary": self.binary,
            "initial": self.initial,
            "value": self.value,
            "holders": self.holders(),
            "waiters": self.waiters(),
        }


@dataclass(frozen=True)
class SendResult:
    """``delivered``: handed to ``receiver`` (who was waiting); ``queued``: in the queue;
    ``wait``: the queue is full and the sender is queued until a receive makes room."""

    status: Literal["delivered", "queued", "wait"]
    receiver: str | None = None


@dataclass(frozen=True)
class RecvResult:
    """``received``: ``message`` from ``sender``; ``released`` is the blocked sender whose
    message took the freed slot (wake it). ``wait``: the queue is empty, receiver queued."""

    status: Literal["received", "wait"]
    message: Any = None
    sender: str | None = None
    released: str | None = None


class MessageQueue:
    """A bounded FIFO mailbox (OSC §3.6.3): blocking send when full, receive when empty."""

    def __init__(self, name: str, capacity: int) -> None:
        self.name = _name(name, "queue")
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise InvalidIpc(f"queue {name!r}: capacity must be an integer >= 1, got {capacity!r}")
        self.capacity = capacity
        self._items: deque[tuple[str, Any]] = deque()
        self._receivers: deque[str] = deque()
        self._senders: deque[tuple[str, Any]] = deque()

    def _check_not_waiting(self, party: str) -> None:
        if party in self._receivers or any(s == party for s, _ in self._senders):
            raise IpcConflict(f"{party} is already waiting on queue {self.name!r}")

    def can_accept(self) -> bool:
        """A send would not wait."""
        return bool(self._receivers) or len(self._items) < self.capacity

    def send(self, sender: str, message: Any) -> SendResult:
        self._check_not_waiting(_party(sender))
        if self._receivers:  # the queue is empty: hand it straight over, FIFO
            return SendResult("delivered", self._receivers.popleft())
        if len(self._items) < self.capacity:  # room left implies no blocked sender
            self._items.append((sender, message))
            return SendResult("queued")
        self._senders.append((sender, message))
        return SendResult("wait")

    def receive(self, receiver: str) -> RecvResult:
        self._check_not_waiting(_party(receiver))
        if not self._items:  # empty implies no blocked sender (capacity >= 1)
            self._receivers.append(receiver)
            return RecvResult("wait")
        sender, message = self._items.popleft()
        released = None
        if self._senders:
            released, pending = self._senders.popleft()
            self._items.append((released, pending))
        return RecvResult("received", message, sender, released)

    def cancel(self, party: str) -> bool:
        """``party`` stops waiting; a blocked sender's message is withdrawn. True if it was."""
        if party in self._receivers:
            self._receivers.remove(party)
            return True
        for entry in self._senders:
            if entry[0] == party:
                self._senders.remove(entry)
                return True
        return False

    def waiters(self) -> list[str]:
        return [*self._receivers, *(s for s, _ in self._senders)]

    def __len__(self) -> int:
        return len(self._items)

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "capacity": self.capacity,
            "length": len(self._items),
            "receivers": list(self._receivers),
            "senders": [s for s, _ in self._senders],
        }


class IpcRegistry:
    """The named semaphores and queues of one peer (one namespace for both kinds).

    ``where`` is appended to error messages (``" on peer abc..."``).
    """

    def __init__(self, where: str = "") -> None:
        self._where = where
        self._objects: dict[str, Semaphore | MessageQueue] = {}

    def _check_free(self, name: str) -> None:
        if name in self._objects:
            kind = "semaphore" if isinstance(self._objects[name], Semaphore) else "queue"
            raise DuplicateIpc(f"a {kind} named {name!r} already exists{self._where}")

    def create_semaphore(self, name: str, value: int, binary: bool = False) -> Semaphore:
        sem = Semaphore(name, value, binary)  # validates before anything changes
        self._check_free(name)
        self._objects[name] = sem
        return sem

    def create_queue(self, name: str, capacity: int) -> MessageQueue:
        queue = MessageQueue(name, capacity)
        self._check_free(name)
        self._objects[name] = queue
        return queue

    def semaphore(self, name: str) -> Semaphore:
        obj = self._objects.get(name)
        if not isinstance(obj, Semaphore):
            extra = " (it is a queue)" if obj is not None else ""
            raise UnknownIpc(f"no semaphore {name!r}{self._where}{extra}")
        return obj

    def queue(self, name: str) -> MessageQueue:
        obj = self._objects.get(name)
        if not isinstance(obj, MessageQueue):
            extra = " (it is a semaphore)" if obj is not None else ""
            raise UnknownIpc(f"no queue {name!r}{self._where}{extra}")
        return obj

    def delete(self, name: str) -> tuple[Literal["semaphore", "queue"], list[str]]:
        """Remove an object; returns its kind and the parties that were waiting on it."""
        obj = self._objects.get(name)
        if obj is None:
            raise UnknownIpc(f"no semaphore or queue {name!r}{self._where}")
        del self._objects[name]
        return ("semaphore" if isinstance(obj, Semaphore) else "queue"), obj.waiters()

    def semaphores(self) -> list[Semaphore]:
        return sorted(
            (o for o in self._objects.values() if isinstance(o, Semaphore)), key=lambda o: o.name
        )

    def queues(self) -> list[MessageQueue]:
        return sorted(
            (o for o in self._objects.values() if isinstance(o, MessageQueue)),
            key=lambda o: o.name,
        )

    def broadcast(self, sender: str, message: Any) -> dict[str, SendResult]:
        """Send a copy of ``message`` to every queue, all or nothing, never waiting.

        If any queue is full (no waiting receiver, no room) nothing is sent and
        :class:`IpcConflict` names the full queues: a broadcast that blocked on one
        slow queue would hold up every other.
        """
        _party(sender)
        queues = self.queues()
        full = [q.name for q in queues if not q.can_accept()]
        if full:
            raise IpcConflict(f"broadcast refused: queue(s) {full} are full{self._where}")
        for q in queues:
            q._check_not_waiting(sender)
        return {q.name: q.send(sender, copy.deepcopy(message)) for q in queues}

    def cancel(self, name: str, party: str) -> bool:
        obj = self._objects.get(name)
        return obj.cancel(party) if obj is not None else False

    def undo(self, party: str) -> list[tuple[str, str]]:
        """``party`` is gone: leave every queue, give back every unit; ``(semaphore, waiter)``
        for each waiter that got a unit as a result."""
        granted: list[tuple[str, str]] = []
        for obj in list(self._objects.values()):
            if isinstance(obj, Semaphore):
                granted += [(obj.name, w) for w in obj.undo(party)]
            else:
                obj.cancel(party)
        return granted

    def wait_edges(self) -> list[tuple[str, str, str]]:
        """``(waiter, holder, "sem:NAME")`` for each party queued on a semaphore and each
        party holding one of its units, for the wait-for graph (OSC §8.7.1).

        Left out, to avoid reporting deadlocks that are not: a holder that is itself
        queued on the same semaphore (it waits for a signal just as the waiter does;
        producers holding "empty" units while waiting for more are the usual case), and so
        also self-edges. Queues give no edges: a receiver on an empty queue waits for *any*
        sender and a sender on a full queue for *any* receiver, not for a known party.
        """
        edges: set[tuple[str, str, str]] = set()
        for sem in self.semaphores():
            waiting = set(sem.waiters())
            for waiter in waiting:
                for holder in sem.holders():
                    if holder not in waiting:
                        edges.add((waiter, holder, f"sem:{sem.name}"))
        return sorted(edges)

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        return {
            "semaphores": [s.snapshot() for s in self.semaphores()],
            "queues": [q.snapshot() for q in self.queues()],
        }
