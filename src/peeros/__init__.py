"""PeerOS: a peer-to-peer operating system that shares CPU, memory and disk.

The public surface is ``__all__``; everything else is internal. Names are imported on
first use (PEP 562), so ``import peeros.task`` inside a sandboxed task stays light.
"""

import importlib as _importlib
import typing as _typing

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "Client",
    "Executor",
    "PeerOSError",
    "TaskError",
    "__version__",
    "connect",
]

_LAZY = {
    "AsyncClient": "peeros.client",
    "Client": "peeros.client",
    "connect": "peeros.client",
    "Executor": "peeros.executor",
    "PeerOSError": "peeros.errors",
    "TaskError": "peeros.taskcodec",
}

if _typing.TYPE_CHECKING:
    from peeros.client import AsyncClient, Client, connect
    from peeros.errors import PeerOSError
    from peeros.executor import Executor
    from peeros.taskcodec import TaskError


def __getattr__(name: str) -> _typing.Any:
    if name in _LAZY:
        value = getattr(_importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'peeros' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
