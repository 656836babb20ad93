"""``peeros ca init`` and ``peeros ca issue``: cluster certificates without a tracker.

A flooding network never has a tracker to enroll with, yet its members must still
prove membership (mutual TLS with one CA). ``ca init`` makes that CA; ``ca issue``
gives a peer's data directory its identity key, certificate and the CA certificate,
exactly the files enrollment would have written.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import click

from peeros.config import default_data_dir
from peeros.errors import NotFound
from peeros.fsutil import write_atomic
from peeros.security import identity, pki


@click.group()
def ca() -> None:
    """A cluster CA for a network without a tracker (flooding mode)."""


def _ca_dir(value: Path | None) -> Path:
    return value or default_data_dir() / "ca"


@ca.command()
@click.option("--dir", "ca_dir", type=click.Path(file_okay=False, path_type=Path))
def init(ca_dir: Path | None) -> None:
    """Create the CA (ca.key, ca.crt) in --dir (default <data dir>/ca); print its fingerprint."""
    directory = _ca_dir(ca_dir)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    made = pki.load_or_create_ca(directory)
    click.echo(f"CA {made.fingerprint} in {directory}")


@ca.command()
@click.option("--ca", "ca_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The data directory of the peer to equip.",
)
def issue(ca_dir: Path | None, out: Path) -> None:
    """Give the peer data directory --out a key, a certificate from the CA and ca.crt."""
    directory = _ca_dir(ca_dir)
    if not (directory / pki.CA_KEY_FILE).exists():
        raise NotFound(f"no CA in {directory}; run 'peeros ca init' first")
    made = pki.load_or_create_ca(directory)
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    me = identity.load_or_create(out)
    cert = made.issue(me.public_key, me.peer_id)
    write_atomic(out / pki.NODE_CERT_FILE, pki.cert_pem(cert).encode())
    shutil.copyfile(directory / pki.CA_CERT_FILE, out / pki.CA_CERT_FILE)
    click.echo(f"peer {me.peer_id}: certificate in {out}")
