"""What every client command shares: finding the peer, ``--json``, printing."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from pydantic import BaseModel

from peeros.client import Client

F = TypeVar("F", bound=Callable[..., Any])


def client_command(func: F) -> F:
    """Add ``--peer``, ``--token``, ``--data-dir``, ``--json``; pass ``client``, ``as_json``."""

    @click.option("--peer", "peer", metavar="URL", help="Local API of the peer (with --token).")
    @click.option("--token", "token", metavar="T", help="Local API token of --peer.")
    @click.option(
        "--data-dir",
        "data_dir",
        type=click.Path(file_okay=False),
        help="Peer (or 'peeros up') data directory; default $PEEROS_DATA_DIR or ~/.peeros.",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @functools.wraps(func)
    def wrapper(
        peer: str | None, token: str | None, data_dir: str | None, as_json: bool, **kwargs: Any
    ) -> Any:
        with Client(peer, token, data_dir) as client:
            return func(client=client, as_json=as_json, **kwargs)

    return wrapper  # type: ignore[return-value]


def to_jsonable(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, list):
        return [to_jsonable(o) for o in obj]
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    return obj


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(obj), indent=2) + "\n")


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
