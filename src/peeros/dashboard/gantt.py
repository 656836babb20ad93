"""ECharts options for a Gantt chart (a ``custom`` series drawing one bar per slice)."""

from __future__ import annotations

from typing import Any

PALETTE = [
    "#2f5d8a",
    "#d9822b",
    "#3a9d5d",
    "#b8434e",
    "#7b5ea7",
    "#3a9ca6",
    "#c2a83e",
    "#8a5a44",
    "#5b6b7b",
    "#d46a9f",
]

#: Draws a slice [start, end] on row ``value[0]`` (runs in the browser).
RENDER_ITEM = """(params, api) => {
  const row = api.value(0);
  const a = api.coord([api.value(1), row]);
  const b = api.coord([api.value(2), row]);
  const h = api.size([0, 1])[1] * 0.6;
  const w = Math.max(1, b[0] - a[0]);
  return {type: 'rect', shape: {x: a[0], y: a[1] - h / 2, width: w, height: h},
          style: api.style(),
          textContent: w > 60 ? {style: {text: api.value(3), fill: '#fff', fontSize: 11}} : null,
          textConfig: {position: 'inside'}};
}"""

TOOLTIP = "(p) => p.value[3] + ': ' + p.value[1] + ' to ' + p.value[2]"


def gantt_options(
    slices: list[tuple[str, float, float, int]], rows: list[str], unit: str
) -> dict[str, Any]:
    """``slices``: (label, start, end, row index); ``rows``: the row names (slots, CPU)."""
    colors: dict[str, str] = {}
    data = []
    for label, start, end, row in slices:
        color = colors.setdefault(label, PALETTE[len(colors) % len(PALETTE)])
        data.append(
            {
                "name": label,
                "value": [row, round(start, 4), round(end, 4), label],
                "itemStyle": {"color": color},
            }
        )
    return {
        "animation": False,
        "tooltip": {":formatter": TOOLTIP},
        "grid": {"left": 60, "right": 16, "top": 10, "bottom": 40},
        "xAxis": {"type": "value", "name": unit, "nameLocation": "middle", "nameGap": 24},
        "yAxis": {"type": "category", "data": rows},
        "series": [
            {
                "type": "custom",
                ":renderItem": RENDER_ITEM,
                "encode": {"x": [1, 2], "y": 0},
                "data": data,
            }
        ],
    }


def live_gantt(gantt: list[list[Any]], slots: int, last: int = 40) -> dict[str, Any]:
    """The scheduler's record: [task id, start, end, slot] in unix seconds."""
    recent = gantt[-last:]
    t0 = min((float(g[1]) for g in recent), default=0.0)
    slices = [(str(g[0])[:8], float(g[1]) - t0, float(g[2]) - t0, int(g[3])) for g in recent]
    return gantt_options(slices, [f"slot {i}" for i in range(max(1, slots))], "seconds")


def simulated_gantt(gantt: list[list[Any]]) -> dict[str, Any]:
    """The simulator's chart: [name or None (idle), start, end] on one CPU."""
    slices = [(str(n), float(s), float(e), 0) for n, s, e in gantt if n is not None]
    return gantt_options(slices, ["CPU"], "time")
