"""Link frames (``net/link.py``): the fast path (id first, body handed on as text) and
the general JSON path read the same frames the same way."""

from __future__ import annotations

import json

import pytest

from peeros.errors import BadRequest
from peeros.net.link import _error_frame, _parse_call, _parse_reply

BODY = {"tasks": [{"task_id": "a" * 32, "program": 'x = "}"\n', "args": [1, {"k": []}]}]}


def test_a_call_frame_gives_its_id_op_and_body_text_either_way() -> None:
    fast = f'{{"id": 7, "op": "execute", "body": {json.dumps(BODY)}}}'
    call_id, op, body = _parse_call(fast)
    assert (call_id, op, json.loads(body)) == (7, "execute", BODY)
    slow = json.dumps({"body": BODY, "op": "execute", "id": 7}, indent=1)  # other order
    call_id, op, body = _parse_call(slow)
    assert (call_id, op, json.loads(body)) == (7, "execute", BODY)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ("{nope", "not JSON"),
        ("[1, 2]", "integer id"),
        ('{"id": true, "op": "execute"}', "integer id"),
        ('{"id": "7", "op": "execute"}', "integer id"),
        ('{"id": 7, "op": 5}', "no link operation 5"),
    ],
)
def test_what_is_not_a_call_is_refused_by_name(frame: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        _parse_call(frame)


def test_replies_are_matched_by_id_and_errors_kept_whole() -> None:
    reply = f'{{"id": 3, "body": {json.dumps(BODY)}}}'
    call_id, (body, error) = _parse_reply(reply)
    assert call_id == 3 and error is None and json.loads(body or "") == BODY
    call_id, (body, error) = _parse_reply(_error_frame(4, 403, "forbidden", "not yours"))
    assert call_id == 4 and body is None
    assert error == {"status": 403, "code": "forbidden", "message": "not yours"}
    assert _parse_reply(_error_frame(None, 400, "bad_request", "no id"))[0] is None
    assert _parse_reply('{"id": true, "body": 1}')[0] is None  # answers no call


@pytest.mark.parametrize("n", [0, 1, 125, 126, 65535, 65536, 70000])
def test_lane_frames_are_masked_client_frames_of_any_length(n: int) -> None:
    """RFC 6455 §5.2: FIN, the opcode, the mask bit, 7/16/64-bit lengths, the payload
    XORed with the 4-byte key (what aiohttp's server unmasks)."""
    from peeros.client_lane import frame

    payload = bytes(range(256)) * (n // 256) + bytes(range(n % 256))
    data = frame(0x1, payload)
    assert data[0] == 0x81 and data[1] & 0x80
    short = data[1] & 0x7F
    if n < 126:
        assert short == n
        at = 2
    elif n < 65536:
        assert short == 126 and int.from_bytes(data[2:4], "big") == n
        at = 4
    else:
        assert short == 127 and int.from_bytes(data[2:10], "big") == n
        at = 10
    key, body = data[at : at + 4], data[at + 4 :]
    assert len(body) == n
    assert bytes(b ^ key[i % 4] for i, b in enumerate(body)) == payload
