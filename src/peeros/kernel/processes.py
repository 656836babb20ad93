"""The process table: states, parents, groups, zombies. Pure and deterministic.

Source: Silberschatz, Galvin, Gagne, *Operating System Concepts*, 10th ed., §3.1.2
(process states, Fig. 3.2: new → ready → running ⇄ waiting → terminated) and §3.3.2
(process termination: a child that has exited stays a *zombie* until its parent collects
its exit status with ``wait()``; *cascading termination* kills a parent's descendants).

Every PeerOS task is a process here. Teaching processes (``peeros proc create``) are
too; they never run code but take part in trees, groups and kills.

Transitions (anything else raises :class:`InvalidTransition`)::

    NEW ──admit──▶ READY ──dispatch──▶ RUNNING ──exit──▶ ZOMBIE ──collect──▶ (reaped)
                     ▲                   │  ▲
                     └──preempt/wake─────┘  │ (WAITING ──wake──▶ READY)
                                 RUNNING ──block──▶ WAITING
    any live state ──kill──▶ ZOMBIE

A process is identified by its *pid* (for tasks, the task id). Its *group* defaults to
its parent's group, or to its own pid for a process with no parent, so a whole tree
spawned from one root shares a group that ``kill --group`` can target.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from peeros.errors import BadRequest, Conflict, NotFound

State = Literal["NEW", "READY", "RUNNING", "WAITING", "ZOMBIE"]
LIVE: frozenset[str] = frozenset({"NEW", "READY", "RUNNING", "WAITING"})

#: Allowed moves: from-state → to-states.
TRANSITIONS: dict[str, frozenset[str]] = {
    "NEW": frozenset({"READY", "ZOMBIE"}),
    "READY": frozenset({"RUNNING", "ZOMBIE"}),
    "RUNNING": frozenset({"READY", "WAITING", "ZOMBIE"}),
    "WAITING": frozenset({"READY", "ZOMBIE"}),
    "ZOMBIE": frozenset(),
}


class InvalidTransition(Conflict):
    """A state change the process model does not allow."""


@dataclass(slots=True)
class Process:
    """One process. Changed in place by its :class:`ProcessTable` only (a batch moves
    thousands of tasks through four states: copying a frozen record per move cost more
    than the rest of the bookkeeping)."""

    pid: str
    name: str
    parent: str | None
    group: str
    state: State
    peer: str
    created: float
    kind: Literal["task", "plain"] = "task"
    #: Set when the process exits: "DONE", "FAILED", "TIMED_OUT", "CANCELLED", "KILLED".
    exit_status: str | None = None
    #: What a WAITING process waits for (e.g. "sem:forks"), for the wait-for graph.
    waiting_on: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "name": self.name,
            "parent": self.parent,
            "group": self.group,
            "state": self.state,
            "peer": self.peer,
            "created": self.created,
            "kind": self.kind,
            "exit_status": self.exit_status,
            "waiting_on": self.waiting_on,
        }


class ProcessTable:
    """One peer's processes."""

    def __init__(self, peer: str) -> None:
        self.peer = peer
        self._procs: dict[str, Process] = {}

    def __contains__(self, pid: object) -> bool:
        return pid in self._procs

    def __len__(self) -> int:
        return len(self._procs)

    def get(self, pid: str) -> Process:
        try:
            return self._procs[pid]
        except KeyError:
            raise NotFound(f"no process {pid} on peer {self.peer}") from None

    def create(
        self,
        pid: str,
        name: str,
        now: float,
        parent: str | None = None,
        group: str | None = None,
        kind: Literal["task", "plain"] = "task",
        parent_group: str | None = None,
    ) -> Process:
        """Add a NEW process. ``parent_group`` lets a child inherit the group of a parent
        that lives on another peer (whose table this one cannot see)."""
        if pid in self._procs:
            raise Conflict(f"process {pid} already exists")
        if not name or len(name) > 200:
            raise BadRequest("process name must be 1 to 200 characters")
        if group is None:
            if parent is not None and parent in self._procs:
                group = self._procs[parent].group
            else:
                group = parent_group or pid
        proc = Process(pid, name, parent, group, "NEW", self.peer, now, kind)
        self._procs[pid] = proc
        return proc

    def move(self, pid: str, to: State, waiting_on: str | None = None) -> Process:
        proc = self.get(pid)
        if to not in TRANSITIONS[proc.state]:
            raise InvalidTransition(f"process {pid} cannot go from {proc.state} to {to}")
        proc.state = to
        proc.waiting_on = waiting_on if to == "WAITING" else None
        return proc

    def exit(self, pid: str, status: str) -> Process:
        """The process ended (or was killed): it stays as a ZOMBIE until collected."""
        proc = self.get(pid)
        if proc.state == "ZOMBIE":
            return proc
        proc.state, proc.exit_status, proc.waiting_on = "ZOMBIE", status, None
        return proc

    def collect(self, pid: str) -> Process:
        """Reap a zombie (its status was read); it leaves the table."""
        proc = self.get(pid)
        if proc.state != "ZOMBIE":
            raise InvalidTransition(
                f"process {pid} is {proc.state}, not a zombie: nothing to collect"
            )
        del self._procs[pid]
        return proc

    def discard(self, pid: str) -> None:
        self._procs.pop(pid, None)

    def processes(self) -> list[Process]:
        return sorted(self._procs.values(), key=lambda p: (p.created, p.pid))

    def snapshot(self) -> list[dict[str, Any]]:
        return [p.to_dict() for p in self.processes()]


def descendants(processes: Iterable[dict[str, Any]], root: str) -> list[str]:
    """Pids of every descendant of ``root`` (any depth) in a cluster-wide list, BFS order."""
    children: dict[str, list[str]] = {}
    for p in processes:
        if p["parent"] is not None:
            children.setdefault(p["parent"], []).append(p["pid"])
    found: list[str] = []
    frontier = [root]
    seen = {root}
    while frontier:
        nxt = []
        for pid in frontier:
            for child in sorted(children.get(pid, [])):
                if child not in seen:
                    seen.add(child)
                    found.append(child)
                    nxt.append(child)
        frontier = nxt
    return found


def kill_set(processes: list[dict[str, Any]], pid: str, group: bool = False) -> list[str]:
    """Who a kill of ``pid`` reaches: the process and its descendants (cascading
    termination), or with ``group`` every process of its group. Live processes only."""
    by_pid = {p["pid"]: p for p in processes}
    if pid not in by_pid:
        raise NotFound(f"no process {pid} in the cluster")
    if group:
        target = by_pid[pid]["group"]
        chosen = [p["pid"] for p in processes if p["group"] == target]
    else:
        chosen = [pid, *descendants(processes, pid)]
    return [p for p in chosen if by_pid[p]["state"] in LIVE]


def tree(processes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nest a cluster-wide process list: roots are processes whose parent is unknown."""
    nodes = {p["pid"]: {**p, "children": []} for p in processes}
    roots = []
    for p in sorted(processes, key=lambda p: (p["created"], p["pid"])):
        parent = p["parent"]
        if parent is not None and parent in nodes:
            nodes[parent]["children"].append(nodes[p["pid"]])
        else:
            roots.append(nodes[p["pid"]])
    return roots
