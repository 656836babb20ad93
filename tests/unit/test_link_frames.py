"""Link frames (``net/link.py``): the fast path (id first, body handed on as text) and
the general JSON path read the same frames the same way."""

from __future__ import annotations

import json

import pytest

from peeros.errors import BadRequest
from peeros.net.link import _parse_reply
from peeros.net.link_server import _error_frame, _parse_call
from tests.http_stub import Quiet, serving

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


def test_a_failed_lane_upgrade_never_pools_a_closed_connection() -> None:
    """Regression (review): a stale pooled lane was closed, the new upgrade was refused
    (401), and the closed lane went back to the pool: the next call raised ValueError."""

    from peeros.client_http import BlockingHTTP, _Conn
    from peeros.client_lane import BlockingLane, _LaneConn
    from peeros.errors import Unauthorized

    class Refuse(Quiet):
        def do_GET(self) -> None:
            body = b'{"error": {"code": "unauthorized", "message": "wrong API token"}}'
            self.send_response(401)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with serving(Refuse) as port:
        http_ = BlockingHTTP(f"http://127.0.0.1:{port}", "t", 5.0)
        lane = BlockingLane(http_)
        stale = _LaneConn.__new__(_LaneConn)  # a pooled lane gone stale
        stale.conn, stale.ids = _Conn(http_.host, http_.port, 5.0, None), 0
        stale.conn.idle_since -= 3600
        lane._idle.append(stale)
        for _ in range(2):
            with pytest.raises(Unauthorized, match="wrong API token"):
                lane.call("submit", b"{}")
        assert lane._idle == []
