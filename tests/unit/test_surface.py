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


def test_map_pickles_the_callable_once_and_each_payload_rebuilds_it() -> None:
    """``Client.map`` encodes a batch with one cloudpickle of the function; every task's
    payload still unpickles, alone, to ``(fn, args, kwargs)`` (as in the sandbox)."""
    import base64
    import pickle

    from peeros.taskcodec import encode_map

    offset = 7
    calls = 0

    def shifted(x: int, y: object = None) -> object:
        return (x + offset, y)

    import cloudpickle

    real = cloudpickle.dumps

    def counting(obj: object, *a: object, **kw: object) -> bytes:
        nonlocal calls
        calls += 1
        return real(obj, *a, **kw)

    cloudpickle.dumps = counting
    try:
        requests = encode_map(shifted, [(i, None) for i in range(50)] + [(1, lambda: 2)])
    finally:
        cloudpickle.dumps = real
    assert calls == 2  # the function once, plus the one task whose args hold code
    functions = set()
    for i, req in enumerate(requests[:50]):
        fn, args, kwargs = pickle.loads(base64.b64decode(req.payload or ""))
        assert fn(*args, **kwargs) == (i + 7, None) and req.function == "shifted"
        functions.add(id(fn))
    assert len(functions) == 1  # rebuilt once, then taken from the worker's cache
    fn, args, kwargs = pickle.loads(base64.b64decode(requests[50].payload or ""))
    result = fn(*args)
    assert isinstance(result, tuple) and result[0] == 8 and callable(result[1])
