"""``peeros cpu``, ``batch``, ``cancel`` and ``history``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from peeros.cli.common import client_command, print_json
from peeros.client import Client
from peeros.compute.program import parse_args_text
from peeros.errors import BadRequest
from peeros.net.server import describe_validation
from peeros.protocol import TaskRequest, TaskResult


def _positive_float(_c: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and value <= 0:
        raise click.BadParameter(f"{param.name} must be > 0, got {value}")
    return value


def _report(result: TaskResult, as_json: bool) -> None:
    if as_json:
        print_json(result)
    elif result.status == "DONE":
        click.echo(
            json.dumps(result.result) if not isinstance(result.result, str) else result.result
        )
    else:
        click.echo(f"task {result.task_id} {result.status}: {result.error}", err=True)
        if result.traceback:
            click.echo(result.traceback.rstrip(), err=True)
    if result.status != "DONE":
        sys.exit(1)


@click.command()
@click.option("--program", help="Python source defining the function.")
@click.option(
    "--file",
    "file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the program from a file instead.",
)
@click.option("--function", required=True, help="Name of the function to call.")
@click.option(
    "--args", "args_text", default="[]", show_default=True, help="JSON list of arguments."
)
@click.option(
    "--confidential", is_flag=True, help="Run on this peer only; never contact the tracker."
)
@click.option(
    "--elsewhere", is_flag=True, help="Run on another peer, never on this one (tracker placed)."
)
@click.option("--priority", type=click.IntRange(-1000, 1000), default=0, show_default=True)
@click.option("--retries", type=click.IntRange(0, 10), default=0, show_default=True)
@click.option("--timeout", type=float, default=60.0, show_default=True, callback=_positive_float)
@click.option("--cache", is_flag=True, help="Reuse the result of an identical earlier task.")
@click.option("--memory-mb", type=click.IntRange(1, 1 << 20), default=None)
@click.option(
    "--expected-time",
    type=float,
    default=None,
    callback=_positive_float,
    help="Declared run time in seconds (for SJF).",
)
@client_command
def cpu(
    client: Client,
    as_json: bool,
    program: str | None,
    file: Path | None,
    function: str,
    args_text: str,
    confidential: bool,
    elsewhere: bool,
    priority: int,
    retries: int,
    timeout: float,
    cache: bool,
    memory_mb: int | None,
    expected_time: float | None,
) -> None:
    """Run a Python function on the least-loaded peer (here only with --confidential,
    never here with --elsewhere)."""
    if (program is None) == (file is None):
        raise BadRequest("give exactly one of --program and --file")
    source = program if program is not None else file.read_text()  # type: ignore[union-attr]
    result = client.run_program(
        source,
        function,
        parse_args_text(args_text),
        confidential=confidential,
        elsewhere=elsewhere,
        priority=priority,
        max_retries=retries,
        timeout=timeout,
        cache=cache,
        memory_mb=memory_mb,
        expected_time=expected_time,
    )
    _report(result, as_json)


def load_batch(path: Path) -> list[TaskRequest]:
    """A JSON list of task objects, or ``{"tasks": [...]}``; fields as in ``peeros cpu``."""
    try:
        data: Any = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BadRequest(f"{path} is not valid JSON: {exc}") from exc
    if isinstance(data, dict) and "tasks" in data:
        data = data["tasks"]
    if not isinstance(data, list) or not data:
        raise BadRequest(f'{path} must hold a non-empty JSON list of tasks (or {{"tasks": [...]}})')
    tasks = []
    for i, item in enumerate(data):
        if isinstance(item, dict) and "retries" in item:
            item = {**item, "max_retries": item.pop("retries")}
        try:
            tasks.append(TaskRequest.model_validate(item))
        except ValidationError as exc:
            raise BadRequest(f"task {i}: {describe_validation(exc)}") from exc
    return tasks


@click.command()
@click.argument("tasks_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@client_command
def batch(client: Client, as_json: bool, tasks_file: Path) -> None:
    """Submit every task of TASKS_FILE in one request and print each result."""
    ids = client.submit_requests(load_batch(tasks_file))
    results: dict[str, TaskResult] = {}
    show = not as_json and sys.stderr.isatty()
    with Progress(disable=not show, transient=True) as progress:
        bar = progress.add_task("tasks", total=len(ids))
        pending = ids
        while pending:
            got = client.wait(pending, timeout=5.0)
            results.update((r.task_id, r) for r in got.done)
            pending = got.pending
            progress.update(bar, completed=len(results))
    ordered = [results[i] for i in ids]
    if as_json:
        print_json(ordered)
    else:
        for r in ordered:
            value = json.dumps(r.result) if r.status == "DONE" else f"{r.status}: {r.error}"
            click.echo(f"{r.task_id}  {value}")
    if any(r.status != "DONE" for r in ordered):
        sys.exit(1)


@click.command()
@click.argument("task_id")
@client_command
def cancel(client: Client, as_json: bool, task_id: str) -> None:
    """Cancel a queued or running task (a running one is killed)."""
    resp = client.cancel(task_id)
    if as_json:
        print_json(resp)
    elif resp.cancelled:
        click.echo(f"task {task_id} cancelled")
    else:
        click.echo(f"task {task_id} already finished ({resp.status})", err=True)
        sys.exit(1)


@click.command()
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@client_command
def history(client: Client, as_json: bool, limit: int) -> None:
    """Recent tasks with their times, and statistics over all of them."""
    report = client.history(limit)
    if as_json:
        print_json(report)
        return
    table = Table(box=None)
    for col in ("task", "status", "function", "executor", "exec s", "wait s", "turnaround s"):
        table.add_column(col, no_wrap=True)

    def fmt(v: float | None) -> str:
        return "" if v is None else f"{v:.4f}"

    for t in report.tasks:
        table.add_row(
            t["task_id"][:12],
            t["status"],
            t["function"],
            (t["executor"] or "")[:12],
            fmt(t["execution_time"]),
            fmt(t["waiting_time"]),
            fmt(t["turnaround_time"]),
        )
    console = Console(width=None if sys.stdout.isatty() else 200)
    console.print(table)
    s = report.stats
    click.echo(
        f"{s['count']} tasks, success rate {s['success_rate']:.1%}, mean execution "
        f"{s['mean_execution_time'] or 0:.4f}s, waiting {s['mean_waiting_time'] or 0:.4f}s, "
        f"turnaround {s['mean_turnaround_time'] or 0:.4f}s, throughput {s['throughput']:.2f}/s"
    )
