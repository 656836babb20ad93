"""``peeros ipc``: named semaphores and message queues hosted on a peer."""

from __future__ import annotations

import json
from typing import Any

import click

from peeros.cli.common import client_command, print_json
from peeros.cli.memory import on_option, parse_value
from peeros.client import Client
from peeros.client_ipc import Ipc

timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=0, max=3600),
    default=30.0,
    show_default=True,
    help="Seconds to wait at most (0: try once).",
)


def _ipc(client: Client, on: str | None) -> Ipc:
    return client.ipc.on(on) if on else client.ipc


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@click.group()
def ipc() -> None:
    """Semaphores and bounded message queues, usable from tasks on any peer."""


@ipc.command("queue-create")
@click.argument("name")
@click.option("--capacity", type=click.IntRange(min=1), default=10, show_default=True)
@on_option
@client_command
def queue_create(client: Client, as_json: bool, name: str, capacity: int, on: str | None) -> None:
    """Create a FIFO queue holding at most CAPACITY messages."""
    info = _ipc(client, on).queue_create(name, capacity)
    if as_json:
        print_json(info)
    else:
        click.echo(f"created queue {name} (capacity {capacity}) on {info.peer_id}")


@ipc.command("send")
@click.argument("name")
@click.argument("message")
@timeout_option
@on_option
@client_command
def send(
    client: Client, as_json: bool, name: str, message: str, timeout: float, on: str | None
) -> None:
    """Send MESSAGE (JSON if valid, else text) to queue NAME ('*': every queue on the peer)."""
    sent = _ipc(client, on).send(name, parse_value(message), timeout)
    if as_json:
        print_json(sent)
    elif sent.status == "broadcast":
        click.echo(f"broadcast to {len(sent.queues)} queue(s): {', '.join(sent.queues)}")
    elif sent.status == "delivered":
        click.echo(f"delivered to {sent.receiver} (waiting on {name})")
    else:
        click.echo(f"queued on {name}")


@ipc.command("recv")
@click.argument("name")
@timeout_option
@on_option
@client_command
def recv(client: Client, as_json: bool, name: str, timeout: float, on: str | None) -> None:
    """Print the oldest message of queue NAME, waiting while it is empty."""
    got = _ipc(client, on).recv(name, timeout)
    if as_json:
        print_json(got)
    else:
        click.echo(_text(got.message))


@ipc.command("list")
@on_option
@client_command
def list_(client: Client, as_json: bool, on: str | None) -> None:
    """List the semaphores and queues of a peer, with who holds and who waits."""
    found = _ipc(client, on).list()
    if as_json:
        print_json(found)
        return
    for s in found.semaphores:
        kind = "binary" if s.binary else "counting"
        holders = ", ".join(f"{p}x{n}" if n > 1 else p for p, n in s.holders.items()) or "-"
        click.echo(
            f"semaphore {s.name}  {kind}  value {s.value}  holders {holders}  "
            f"waiters {', '.join(s.waiters) or '-'}"
        )
    for q in found.queues:
        click.echo(
            f"queue {q.name}  {q.length}/{q.capacity}  "
            f"receivers {', '.join(q.receivers) or '-'}  senders {', '.join(q.senders) or '-'}"
        )
    if not found.semaphores and not found.queues:
        click.echo(f"no semaphores or queues on {found.peer_id}")


@ipc.command("sem-create")
@click.argument("name")
@click.option("--value", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("--binary", is_flag=True, help="Value 0 or 1; signalling a free one is an error.")
@on_option
@client_command
def sem_create(
    client: Client, as_json: bool, name: str, value: int, binary: bool, on: str | None
) -> None:
    """Create a counting (or --binary) semaphore starting at VALUE."""
    info = _ipc(client, on).sem_create(name, value, binary)
    if as_json:
        print_json(info)
    else:
        kind = "binary" if binary else "counting"
        click.echo(f"created {kind} semaphore {name} (value {value}) on {info.peer_id}")


@ipc.command("sem-wait")
@click.argument("name")
@timeout_option
@on_option
@client_command
def sem_wait(client: Client, as_json: bool, name: str, timeout: float, on: str | None) -> None:
    """Wait on (P) semaphore NAME; waiters are woken in FIFO order."""
    got = _ipc(client, on).sem_wait(name, timeout)
    if as_json:
        print_json(got)
    else:
        click.echo(f"acquired {name} as {got.party}")


@ipc.command("sem-signal")
@click.argument("name")
@on_option
@client_command
def sem_signal(client: Client, as_json: bool, name: str, on: str | None) -> None:
    """Signal (V) semaphore NAME, waking its first waiter if any."""
    done = _ipc(client, on).sem_signal(name)
    if as_json:
        print_json(done)
    elif done.granted:
        click.echo(f"signalled {name}: woke {', '.join(done.granted)}")
    else:
        click.echo(f"signalled {name}: value {done.value}")


@ipc.command("delete")
@click.argument("name")
@on_option
@client_command
def delete(client: Client, as_json: bool, name: str, on: str | None) -> None:
    """Delete semaphore or queue NAME (its waiters get an error)."""
    done = _ipc(client, on).delete(name)
    if as_json:
        print_json(done)
    else:
        click.echo(f"deleted {done.kind} {name}")
