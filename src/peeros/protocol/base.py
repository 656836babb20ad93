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


class ErrorDetail(Model):
    code: str
    message: str


class ErrorBody(Model):
    error: ErrorDetail
