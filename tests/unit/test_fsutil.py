"""Specification of the small filesystem helpers (peeros.fsutil)."""

from __future__ import annotations

import os
from pathlib import Path

from peeros.fsutil import reserve


def test_reserve_allocates_the_announced_size_and_writing_fills_it(tmp_path: Path) -> None:
    path = tmp_path / "f"
    data = os.urandom(300_000)
    with open(path, "wb") as f:
        reserve(f.fileno(), len(data))
        assert path.stat().st_size == len(data)
        reserve(f.fileno(), 0)  # nothing to reserve: a no-op
        f.write(data)
    assert path.read_bytes() == data
