"""The results schema shared by the bench scripts and ``bench/report.py``.

A results file is ``bench/results/<benchmark>.json``, one JSON object::

    {
      "schema": "peeros-bench/1",
      "benchmark": "tasks",                          # usually the file's stem
      "title": "CPU tasks: ...",
      "command": "python bench/tasks.py --runs 3",
      "date": "2026-11-21T23:59:00+00:00",           # ISO 8601, UTC
      "machine": {"cpus": 2, "python": "3.11.2"},    # free-form, shown as a list
      "systems": {                                   # every system that was (to be) measured
        "peeros": {"label": "PeerOS", "available": true, "version": "0.1.0"},
        "ray": {"label": "Ray", "available": false, "reason": "why it was not measured"}
      },
      "baselines": ["dask", "ray", "process_pool"],  # systems the others are divided by
      "runs": 3,
      "sections": [{
        "id": "a", "title": "...", "what": "markdown: what was measured and how",
        "unit": "ms", "better": "lower",             # or "higher"
        "rows": [{
          "key": "peeros/run_program-other",          # unique in the section
          "system": "peeros", "label": "markdown",
          "baseline": false,                          # true: the row of a baseline system
          "per_run": [4.9, null, 5.1],                # one figure per run, null = not measured
          "target": {                                 # optional
            "kind": "ratio", "baseline": "ray",       # row / baseline row, same run
            "op": "<=", "value": 0.5, "text": "<= 0.5 x Ray"
          }                                           # or {"kind": "absolute", "op": ">=", ...}
        }],
        "notes": ["markdown"]                         # optional
      }],
      "errors": ["..."],                              # optional: what failed during the run
      "raw": {}                                       # optional, free-form (samples and so on)
    }

:func:`summarise` derives, from ``per_run`` alone, each row's ``median``, its ``ratios``
to every baseline (the ratio is computed run by run, row / baseline row of the same run,
and the median of those per-run ratios is kept: the machine is noisy, so only figures
measured in the same run are compared), and each target's ``measured`` figure and
``status``: ``PASS``, ``MISS`` or ``N/A`` (not measurable, with the reason).
"""

from __future__ import annotations

import statistics
from typing import Any

SCHEMA = "peeros-bench/1"


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _baseline_rows(section: dict[str, Any], baselines: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for row in section["rows"]:
        if row.get("baseline") and row["system"] in baselines:
            found.setdefault(row["system"], row)
    return found


def _holds(measured: float, op: str, value: float) -> bool:
    if op == "<=":
        return measured <= value
    if op == ">=":
        return measured >= value
    raise ValueError(f"unknown target operator {op!r}")


def summarise(doc: dict[str, Any]) -> dict[str, Any]:
    """Fill in medians, ratios and target statuses (in place); returns ``doc``."""
    if doc.get("schema") != SCHEMA:
        raise ValueError(f"not a {SCHEMA} document: schema={doc.get('schema')!r}")
    baselines: list[str] = list(doc.get("baselines", []))
    systems: dict[str, Any] = doc.get("systems", {})
    for section in doc["sections"]:
        base_rows = _baseline_rows(section, baselines)
        for row in section["rows"]:
            row["median"] = median(row["per_run"])
            ratios: dict[str, Any] = {}
            if not row.get("baseline"):
                for name in baselines:
                    base = base_rows.get(name)
                    per_run: list[float | None] = []
                    if base is not None:
                        for mine, theirs in zip(row["per_run"], base["per_run"], strict=False):
                            ok = mine is not None and theirs not in (None, 0)
                            per_run.append(mine / theirs if ok else None)
                    ratios[name] = {"per_run": per_run, "median": median(per_run)}
            row["ratios"] = ratios
            target = row.get("target")
            if target is None:
                continue
            if target["kind"] == "ratio":
                measured = ratios.get(target["baseline"], {}).get("median")
                if measured is None:
                    info = systems.get(target["baseline"], {})
                    why = info.get("reason") or "no run measured both figures"
                    target.update(measured=None, status="N/A", reason=why)
                    continue
            elif target["kind"] == "absolute":
                measured = row["median"]
                if measured is None:
                    target.update(measured=None, status="N/A", reason="not measured")
                    continue
            else:
                raise ValueError(f"unknown target kind {target['kind']!r}")
            passed = _holds(measured, target["op"], target["value"])
            target.update(measured=measured, status="PASS" if passed else "MISS")
            target.pop("reason", None)
    return doc
