"""Finding a peer's local API and its token: ``--peer``/``--token``, else a data
directory's ``api.json`` and ``api.token`` (a ``peeros up`` directory means its first peer)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from peeros.config import default_data_dir
from peeros.errors import BadRequest, Unavailable


@dataclass(frozen=True)
class Endpoint:
    url: str
    token: str


def _normalise_url(peer: str) -> str:
    url = peer if "://" in peer else f"http://{peer}"
    return url.rstrip("/")


def resolve_endpoint(
    peer: str | None = None, token: str | None = None, data_dir: str | Path | None = None
) -> Endpoint:
    """Where the local API is and its token, by the documented order of precedence."""
    if peer:
        if not token:
            raise BadRequest("--token is required with --peer (or use --data-dir)")
        return Endpoint(_normalise_url(peer), token)
    directory = Path(data_dir) if data_dir else default_data_dir()
    info_path = directory / "api.json"
    if not info_path.exists() and (directory / "cluster.json").exists():
        # A ``peeros up`` directory: talk to its first peer.
        cluster = json.loads((directory / "cluster.json").read_text())
        if cluster.get("peers"):
            directory = Path(cluster["peers"][0]["data_dir"])
            info_path = directory / "api.json"
    if not info_path.exists():
        raise Unavailable(
            f"no running peer found in {directory} (no api.json); start one with "
            "'peeros peer' or 'peeros up', or pass --peer URL --token T"
        )
    try:
        info = json.loads(info_path.read_text())
        url = info["api_url"]
        secret = token or (directory / "api.token").read_text().strip()
    except (OSError, ValueError, KeyError) as exc:
        raise Unavailable(f"cannot read the peer's address or token in {directory}: {exc}") from exc
    return Endpoint(_normalise_url(url), secret)
