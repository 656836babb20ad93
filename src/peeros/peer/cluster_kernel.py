"""Kernel operations that span the cluster: the process tree, cascading kills, and the
live wait-for graph. Each peer answers for its own processes; the peer a user talks to
gathers the answers and acts on them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from peeros.kernel.processes import kill_set, tree
from peeros.kernel.waitfor import check
from peeros.protocol import PidsRequest

if TYPE_CHECKING:
    from peeros.peer.node import PeerNode


class ClusterKernel:
    def __init__(self, node: PeerNode) -> None:
        self.node = node

    def local_processes(self) -> dict[str, Any]:
        return {"peer_id": self.node.peer_id, "processes": self.node.kernel.table.snapshot()}

    def local_edges(self) -> dict[str, Any]:
        """Who waits for whom on this peer: tasks blocked on children, and IPC waits."""
        edges: list[list[str]] = []
        for job in self.node.scheduler.jobs.values():
            if job.blocked and job.waiting_on and job.waiting_on.startswith("child:"):
                edges.append([job.task_id, job.waiting_on.removeprefix("child:"), "child"])
        ipc = getattr(self.node, "ipc", None)
        if ipc is not None:
            edges.extend([w, h, label] for w, h, label in ipc.wait_edges())
        return {"peer_id": self.node.peer_id, "edges": edges}

    async def processes(self) -> dict[str, Any]:
        answers, unreachable = await self._gather("/v1/proc/local", self.local_processes)
        procs = [p for a in answers for p in a["processes"]]
        return {"processes": procs, "tree": tree(procs), "unreachable": unreachable}

    async def kill(self, pid: str, group: bool = False) -> dict[str, Any]:
        """Kill ``pid`` and its descendants (or its group) wherever they run."""
        view = await self.processes()
        targets = kill_set(view["processes"], pid, group)
        by_peer: dict[str, list[str]] = {}
        for p in view["processes"]:
            if p["pid"] in targets:
                by_peer.setdefault(p["peer"], []).append(p["pid"])
        killed: list[str] = []
        for peer_id, pids in by_peer.items():
            if peer_id == self.node.peer_id:
                killed += self.node.kernel.kill_local(pids, f"killed with {pid}")
            else:
                answer = await self.node.send_to(
                    peer_id, "/v1/proc/kill-local", PidsRequest(pids=pids)
                )
                killed += answer["killed"]
        return {"killed": killed, "unreachable": view["unreachable"]}

    async def deadlock(self) -> dict[str, Any]:
        answers, unreachable = await self._gather("/v1/kernel/edges", self.local_edges)
        edges = [e for a in answers for e in a["edges"]]
        report = (
            check({"edges": [[w, h] for w, h, _label in edges]})
            if edges
            else {"deadlocked": [], "cycles": []}
        )
        return {**report, "edges": edges, "unreachable": unreachable}

    async def _gather(self, path: str, local: Callable[[], Any]) -> tuple[list[Any], list[str]]:
        """``GET path`` on every live peer (this one answers with ``local()``).

        Returns the answers and the peers that could not be reached."""
        answers = [local()]
        unreachable: list[str] = []
        if self.node.membership is None:
            return answers, unreachable
        others = [
            p for p in (await self.node.peers()).peers if p.alive and p.peer_id != self.node.peer_id
        ]
        client = self.node.client
        assert client is not None

        async def one(address: str) -> Any:
            return await client.request(address, "GET", path, timeout=5)

        results = await asyncio.gather(*(one(p.address) for p in others), return_exceptions=True)
        for peer, result in zip(others, results, strict=True):
            if isinstance(result, BaseException):
                unreachable.append(peer.peer_id)
            else:
                answers.append(result)
        return answers, unreachable
