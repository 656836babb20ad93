"""``peeros sched set|show|simulate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from peeros.cli.common import client_command, print_json
from peeros.client import Client
from peeros.errors import BadRequest
from peeros.kernel.scheduling import SchedulingError
from peeros.kernel.scheduling_sim import simulate as run_simulation


@click.group()
def sched() -> None:
    """The peer's CPU scheduler: policy, queue, Gantt chart, simulator."""


@sched.command("set")
@click.argument("policy")
@click.option("--quantum", "quantum_ms", type=float, default=None, help="RR quantum in ms.")
@click.option("--aging", type=float, default=None, help="Priority gained per second waiting.")
@client_command
def set_policy(
    client: Client, as_json: bool, policy: str, quantum_ms: float | None, aging: float | None
) -> None:
    """Switch the scheduling policy (fcfs, sjf, srtf, priority, priority-preemptive, rr)."""
    state = client.set_sched(policy, quantum_ms, aging)
    if as_json:
        print_json(state)
    else:
        click.echo(
            f"policy {state.policy} (quantum {state.quantum_ms:g} ms, aging {state.aging:g})"
        )


@sched.command("show")
@client_command
def show(client: Client, as_json: bool) -> None:
    """Policy, queue, running tasks, averages and the recent Gantt chart."""
    st = client.sched()
    if as_json:
        print_json(st)
        return
    click.echo(f"policy        {st.policy} (quantum {st.quantum_ms:g} ms, aging {st.aging:g})")
    click.echo(
        f"slots         {st.slots}   pipeline {st.pipeline}   "
        f"sandboxed {'yes' if st.sandboxed else 'NO'}"
    )
    click.echo(f"running       {', '.join(r['task_id'][:8] for r in st.running) or '-'}")
    click.echo(f"queue         {len(st.queue)}")
    click.echo(
        f"completed     {st.completed}   avg waiting {st.avg_waiting:.4f}s   "
        f"avg turnaround {st.avg_turnaround:.4f}s   throughput {st.throughput:.2f}/s"
    )
    if st.gantt:
        t0 = st.gantt[0][1]
        click.echo("gantt (task, start, end, slot; seconds from the first entry):")
        for task, start, end, slot in st.gantt[-20:]:
            click.echo(f"  {task[:8]}  {start - t0:9.3f}  {end - t0:9.3f}  {slot}")


@sched.command("simulate")
@click.argument("jobs_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def simulate(jobs_file: Path, as_json: bool) -> None:
    """Run a policy on (arrival, burst, priority) jobs deterministically, like a textbook."""
    try:
        spec = json.loads(jobs_file.read_text())
        result: dict[str, Any] = run_simulation(spec).to_dict()
    except json.JSONDecodeError as exc:
        raise BadRequest(f"{jobs_file} is not valid JSON: {exc}") from exc
    except SchedulingError as exc:
        raise BadRequest(str(exc)) from exc
    if as_json:
        print_json(result)
        return
    click.echo(
        f"{'job':8} {'arrival':>8} {'burst':>6} {'start':>6} {'finish':>7} {'wait':>6} {'tat':>6}"
    )
    for j in result["jobs"]:
        click.echo(
            f"{j['name']:8} {j['arrival']:>8} {j['burst']:>6} {j['start']:>6} "
            f"{j['finish']:>7} {j['waiting']:>6} {j['turnaround']:>6}"
        )
    click.echo(
        f"average waiting {result['avg_waiting']}, turnaround {result['avg_turnaround']}, "
        f"throughput {result['throughput']}"
    )
    click.echo("gantt: " + " | ".join(f"{n or 'idle'} {s}-{e}" for n, s, e in result["gantt"]))
