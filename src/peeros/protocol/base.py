"""Shared building blocks of the wire: the base model, ids, addresses, errors."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

PROTOCOL_VERSION = 1
PROTOCOL_HEADER = "PeerOS-Protocol"

PEER_ID_RE = re.compile(r"^[a-z2-7]{26}$")
#: ``host:port`` as nodes advertise themselves.
ADDRESS_RE = re.compile(r"^[A-Za-z0-9.\-\[\]:]{1,255}:\d{1,5}$")
PeerId = Annotated[str, StringConstraints(pattern=PEER_ID_RE.pattern)]
Address = Annotated[str, StringConstraints(pattern=ADDRESS_RE.pattern)]


class Model(BaseModel):
    """Base of every wire model: unknown fields are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Encoded:
    """A request body encoded already, as its model's ``model_dump_json`` would: an
    origin splices the tasks it validated on the way in instead of building models of
    them only to encode them again. Sent as is; the receiver validates it as usual."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def model_dump_json(self) -> str:
        return self.text


#: What a node can send as a request body.
Body = BaseModel | Encoded


class ErrorDetail(Model):
    code: str
    message: str


class ErrorBody(Model):
    error: ErrorDetail
