"""PeerOS: a peer-to-peer operating system that shares CPU, memory and disk.

The public surface is ``__all__``; everything else is internal.
"""

__version__ = "0.1.0"

from peeros.client import AsyncClient, Client, connect
from peeros.errors import PeerOSError
from peeros.executor import Executor
from peeros.taskcodec import TaskError

__all__ = [
    "AsyncClient",
    "Client",
    "Executor",
    "PeerOSError",
    "TaskError",
    "__version__",
    "connect",
]
