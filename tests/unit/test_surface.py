"""The public surface and the small shared pieces (errors, config)."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

import peeros
from peeros import errors
from peeros.config import PeerSettings, env_override


def test_exported_members() -> None:
    public = {
        name
        for name in dir(peeros)
        if not name.startswith("_") and not isinstance(getattr(peeros, name), types.ModuleType)
    }
    assert public | {"__version__"} == set(peeros.__all__)


def test_errors_round_trip_by_code_and_by_status() -> None:
    assert isinstance(errors.from_wire(403, "forbidden", "no"), errors.Forbidden)
    assert isinstance(errors.from_wire(413, None, "big"), errors.PayloadTooLarge)
    assert isinstance(errors.from_wire(418, "weird", "teapot"), errors.PeerOSError)
    assert errors.from_wire(401, "unauthorized", "wrong API token").message == "wrong API token"


def test_env_overrides_typed_fields(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PEEROS_HEARTBEAT_INTERVAL", "0.5")
    monkeypatch.setenv("PEEROS_SLOTS", "3")
    s = env_override(PeerSettings(data_dir=tmp_path))
    assert (s.heartbeat_interval, s.slots) == (0.5, 3)
    monkeypatch.setenv("PEEROS_SLOTS", "many")
    with pytest.raises(ValueError, match="PEEROS_SLOTS"):
        env_override(PeerSettings(data_dir=tmp_path))
