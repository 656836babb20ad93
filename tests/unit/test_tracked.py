"""What an origin sends an executor for a tracked task: the model and its spliced JSON."""

from __future__ import annotations

import pytest

from peeros.compute.tracked import ORIGIN_ONLY, Tracked
from peeros.protocol import ExecuteItem, ExecuteRequest, TaskRequest, TaskResult

PROGRAM = "def main(x):\n    return x\n"


@pytest.mark.parametrize(
    ("fields", "parent", "group"),
    [
        ({}, None, None),
        (
            {
                "priority": 7,
                "timeout": 2.5,
                "memory_mb": 64,
                "expected_time": 0.1,
                "claims": {"printer": 1},
                "holds": {"printer": 1},
                "args": [None, {"k": [1.5, "\u2603"]}],
                "confidential": False,
                "elsewhere": True,
                "max_retries": 3,
                "cache": True,
            },
            "f" * 32,
            "g" * 32,
        ),
        (
            {"payload": "gASVAAAAAAAAAACMCGJ1aWx0aW5zlIwDYWJzlJOUSwGFlH2Uh5Qu", "program": None},
            None,
            None,
        ),
    ],
)
def test_the_spliced_json_is_the_item_an_executor_would_parse(
    fields: dict[str, object], parent: str | None, group: str | None
) -> None:
    base: dict[str, object] = {"program": PROGRAM, "function": "main", "args": [1]}
    req = TaskRequest.model_validate({**base, **fields})
    t = Tracked("a" * 32, req, 0.0, parent=parent, group=group)
    parsed = ExecuteItem.model_validate_json(t.item_json())
    assert parsed == ExecuteItem.model_validate(t.item().model_dump())
    assert parsed.task_id == "a" * 32 and (parsed.parent, parsed.group) == (parent, group)
    for name in ORIGIN_ONLY:  # never sent: they are the origin's business
        assert f'"{name}"' not in t.item_json()
    both = ExecuteRequest.model_validate_json(f'{{"tasks": [{t.item_json()}, {t.item_json()}]}}')
    assert both.tasks == [parsed, parsed]


def test_a_history_row_built_later_keeps_the_time_the_task_ended() -> None:
    """History rows are built when written (up to a flush interval later): the end time
    is the one the origin noted when the result was set, not the build's."""
    t = Tracked("a" * 32, TaskRequest(program=PROGRAM, function="main", args=[1]), 100.0)
    assert t.history_row("o", "QUEUED")["finished_at"] is None
    t.result = TaskResult(task_id=t.task_id, status="DONE", result=1, turnaround_time=0.5)
    t.finished_at = 100.5
    row = t.history_row("o", "DONE")
    assert (row["finished_at"], row["turnaround_time"]) == (100.5, 0.5)
