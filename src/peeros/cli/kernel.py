"""``peeros proc``, ``peeros deadlock`` and ``peeros alloc``: the kernel's mechanisms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from peeros.cli.common import client_command, print_json
from peeros.client import Client
from peeros.errors import BadRequest, NotFound
from peeros.kernel import allocator, bankers, waitfor


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BadRequest(f"{path} is not valid JSON: {exc}") from exc


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise BadRequest(f"{what} must be comma-separated integers, got {text!r}") from exc


# --- proc -------------------------------------------------------------------------------


@click.group()
def proc() -> None:
    """Processes: every task is one, in a tree that spans the cluster."""


def _full_pid(client: Client, pid: str) -> str:
    """Accept a unique prefix of a pid, as git and docker do."""
    pids: list[str] = [p["pid"] for p in client.kernel.processes()["processes"]]
    if pid in pids:
        return pid
    matches = [p for p in pids if p.startswith(pid)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFound(f"no process {pid} in the cluster")
    raise BadRequest(f"{pid} is ambiguous: {', '.join(m[:12] for m in matches[:5])} ...")


def _print_tree(nodes: list[dict[str, Any]], depth: int = 0) -> None:
    for n in nodes:
        extra = f" waiting on {n['waiting_on']}" if n.get("waiting_on") else ""
        status = f" ({n['exit_status']})" if n.get("exit_status") else ""
        click.echo(
            f"{'  ' * depth}{n['pid'][:12]}  {n['name']}  {n['state']}{status}{extra}  "
            f"peer {n['peer'][:8]}  group {n['group'][:12]}"
        )
        _print_tree(n["children"], depth + 1)


@proc.command("tree")
@client_command
def proc_tree(client: Client, as_json: bool) -> None:
    """The cluster-wide process tree."""
    view = client.kernel.processes()
    if as_json:
        print_json(view)
        return
    if not view["processes"]:
        click.echo("no processes")
    _print_tree(view["tree"])
    if view["unreachable"]:
        click.echo(f"(unreachable peers: {', '.join(view['unreachable'])})", err=True)


@proc.command("create")
@click.argument("name")
@click.option("--parent", help="Parent pid.")
@click.option("--group", help="Process group (default: the parent's, or its own pid).")
@client_command
def proc_create(
    client: Client, as_json: bool, name: str, parent: str | None, group: str | None
) -> None:
    """Add a plain process (no code) to this peer's table, for teaching."""
    created = client.kernel.create(name, _full_pid(client, parent) if parent else None, group)
    if as_json:
        print_json(created)
    else:
        click.echo(created["pid"])


@proc.command("kill")
@click.argument("pid")
@click.option("--group", "whole_group", is_flag=True, help="Kill the whole process group.")
@client_command
def proc_kill(client: Client, as_json: bool, pid: str, whole_group: bool) -> None:
    """Kill a process and all its descendants, on every peer."""
    result = client.kernel.kill(_full_pid(client, pid), whole_group)
    if as_json:
        print_json(result)
    else:
        click.echo(f"killed {len(result['killed'])} process(es)")


# --- deadlock ---------------------------------------------------------------------------


@click.group()
def deadlock() -> None:
    """Deadlock detection (wait-for graphs) and avoidance (Banker's algorithm)."""


@deadlock.command("check")
@click.option(
    "--graph",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='A graph {"edges": [["P1","P2"], ...]} or matrices; default: the live cluster.',
)
@click.option("--kill", "victim", help="Resolve the live deadlock by killing this process.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--peer", "peer", metavar="URL")
@click.option("--token", "token")
@click.option("--data-dir", "data_dir", type=click.Path(file_okay=False))
def check(
    graph: Path | None,
    victim: str | None,
    as_json: bool,
    peer: str | None,
    token: str | None,
    data_dir: str | None,
) -> None:
    """Find deadlocked processes: in GRAPH, or live across the cluster."""
    if graph is not None:
        report: dict[str, Any] = waitfor.check(_load(graph))
    else:
        with Client(peer, token, data_dir) as client:
            report = client.kernel.deadlock()
            if victim:
                report["resolved"] = client.kernel.resolve(_full_pid(client, victim))
    if as_json:
        print_json(report)
        return
    if report["deadlocked"]:
        click.echo(f"deadlocked: {', '.join(report['deadlocked'])}")
        for cycle in report.get("cycles", []):
            click.echo("  cycle: " + " -> ".join([*cycle, cycle[0]]))
    else:
        click.echo("no deadlock")
    if report.get("resolved"):
        click.echo(f"killed {len(report['resolved']['killed'])} process(es)")


@deadlock.command("bankers")
@click.argument("state_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--request", "req", metavar="P:1,0,2", help="Would this request be granted?")
@click.option("--json", "as_json", is_flag=True)
def bankers_cmd(state_file: Path, req: str | None, as_json: bool) -> None:
    """Is STATE safe (Banker's algorithm), and would a request be granted?"""
    state = _load(state_file)
    if req is None:
        report = bankers.to_report(state)
    else:
        process, sep, vector = req.partition(":")
        if not sep or not process:
            raise BadRequest(f"--request must look like P1:1,0,2, got {req!r}")
        report = bankers.to_report(state, process, _ints(vector, "--request"))
    if as_json:
        print_json(report)
    else:
        click.echo(("SAFE" if report["safe"] else "UNSAFE") + f": {report['reason']}")
    if req is not None and not report["granted"]:
        raise SystemExit(1)


# --- alloc ------------------------------------------------------------------------------


@click.group()
def alloc() -> None:
    """The contiguous task-memory pool: first, best, worst or next fit."""


def _print_map(view: dict[str, Any]) -> None:
    st = view["stats"]
    click.echo(
        f"policy {view['policy']}, {st['used']}/{st['total']} MB used, "
        f"{st['hole_count']} hole(s), largest free {st['largest_free']} MB, "
        f"external fragmentation {st['external_fragmentation_pct']:.1f}%"
    )
    for seg in view["segments"]:
        label = seg.get("name") or "free"
        click.echo(
            f"  [{seg['start']:>6} .. {seg['start'] + seg['size']:>6})  {seg['kind']:5}  {label}"
        )


@alloc.command("show")
@client_command
def alloc_show(client: Client, as_json: bool) -> None:
    """The memory map: blocks, holes and fragmentation."""
    view = client.kernel.alloc("show")
    print_json(view) if as_json else _print_map(view)


@alloc.command("policy")
@click.argument("policy")
@client_command
def alloc_policy(client: Client, as_json: bool, policy: str) -> None:
    """Switch the placement policy (first, best, worst, next)."""
    view = client.kernel.alloc("policy", policy=policy)
    print_json(view) if as_json else click.echo(f"policy {view['policy']}")


@alloc.command("alloc")
@click.argument("size", type=int)
@click.option("--name", required=True)
@client_command
def alloc_alloc(client: Client, as_json: bool, size: int, name: str) -> None:
    """Reserve SIZE MB under NAME."""
    view = client.kernel.alloc("alloc", name=name, size=size)
    print_json(view) if as_json else _print_map(view)


@alloc.command("free")
@click.argument("name")
@client_command
def alloc_free(client: Client, as_json: bool, name: str) -> None:
    """Free the block NAME (holes around it coalesce)."""
    view = client.kernel.alloc("free", name=name)
    print_json(view) if as_json else _print_map(view)


@alloc.command("simulate")
@click.option("--policy", required=True)
@click.option("--holes", required=True, help="Hole sizes, e.g. 100,500,200,300,600.")
@click.option("--requests", "reqs", required=True, help="Request sizes, e.g. 212,417,112,426.")
@click.option("--json", "as_json", is_flag=True)
def alloc_simulate(policy: str, holes: str, reqs: str, as_json: bool) -> None:
    """Place requests into holes like the textbook exercise (no peer needed)."""
    result = allocator.simulate(policy, _ints(holes, "--holes"), _ints(reqs, "--requests"))
    if as_json:
        print_json(result)
        return
    for p in result["placements"]:
        click.echo(
            "waits" if p is None else f"{p['request']} -> hole {p['hole_index']} at {p['start']}"
        )
    click.echo(f"final holes: {result['final_holes']}")
