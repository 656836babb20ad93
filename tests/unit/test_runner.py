"""Nodes run on uvloop unless ``PEEROS_EVENT_LOOP=asyncio``."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from peeros.runner import loop_factory


def test_nodes_run_on_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PEEROS_EVENT_LOOP", raising=False)
    factory = loop_factory()
    assert factory is uvloop.new_event_loop
    loop = factory()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_the_standard_loop_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEEROS_EVENT_LOOP", "asyncio")
    assert loop_factory() is None
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        assert not isinstance(runner.get_loop(), uvloop.Loop)
