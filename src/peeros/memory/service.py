"""Memory operations as the two HTTP planes expose them: one table, one owner rule.

Each operation is ``POST /v1/memory/{op}`` with a JSON body (keys may hold any
character, so they travel in bodies, not paths). Writes are charged to an *owner*: the
caller's peer id on the cluster plane (so quotas are per requesting peer), ``"local"`` on
the user plane and the Redis front.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from peeros.errors import NotFound
from peeros.memory.kv import KeyNotFound, KVStore
from peeros.protocol import (
    MemoryDeleted,
    MemoryEntry,
    MemoryIncrRequest,
    MemoryKeyRequest,
    MemoryKeys,
    MemoryKeysRequest,
    MemorySetRequest,
)


class MemoryService:
    def __init__(self, store: KVStore, peer_id: str) -> None:
        self.store = store
        self.peer_id = peer_id
        #: op name → (request model, handler(owner, request) → reply model)
        self.ops: dict[str, tuple[type[BaseModel], Callable[[str, Any], BaseModel]]] = {
            "get": (MemoryKeyRequest, self.get),
            "set": (MemorySetRequest, self.set),
            "delete": (MemoryKeyRequest, self.delete),
            "keys": (MemoryKeysRequest, self.keys),
            "incr": (MemoryIncrRequest, self.incr),
        }

    def model_for(self, op: str) -> type[BaseModel]:
        if op not in self.ops:
            raise NotFound(f"no memory operation {op!r}; expected one of {sorted(self.ops)}")
        return self.ops[op][0]

    def run(self, op: str, owner: str, req: BaseModel) -> BaseModel:
        return self.ops[op][1](owner, req)

    def get(self, _owner: str, req: MemoryKeyRequest) -> MemoryEntry:
        try:
            value = self.store.get(req.key)
            ttl = self.store.ttl(req.key)
        except KeyNotFound:
            raise NotFound(f"key {req.key!r} not found on peer {self.peer_id}") from None
        return MemoryEntry(key=req.key, value=value, ttl=ttl, peer_id=self.peer_id)

    def set(self, owner: str, req: MemorySetRequest) -> MemoryEntry:
        self.store.set(req.key, req.value, owner=owner, ttl=req.ttl)
        return MemoryEntry(key=req.key, value=req.value, ttl=req.ttl, peer_id=self.peer_id)

    def delete(self, _owner: str, req: MemoryKeyRequest) -> MemoryDeleted:
        if not self.store.delete(req.key):
            raise NotFound(f"key {req.key!r} not found on peer {self.peer_id}")
        return MemoryDeleted(key=req.key, deleted=True, peer_id=self.peer_id)

    def keys(self, _owner: str, req: MemoryKeysRequest) -> MemoryKeys:
        return MemoryKeys(keys=self.store.keys(req.pattern), peer_id=self.peer_id)

    def incr(self, owner: str, req: MemoryIncrRequest) -> MemoryEntry:
        value = self.store.incrby(req.key, req.by, owner=owner)
        return MemoryEntry(
            key=req.key, value=value, ttl=self.store.ttl(req.key), peer_id=self.peer_id
        )
