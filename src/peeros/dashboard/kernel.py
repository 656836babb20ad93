"""Kernel page: the process tree with kill, deadlock detection with the wait-for graph,
the Banker's state; the allocator and IPC sections live in :mod:`.kernel_more`."""

from __future__ import annotations

from typing import Any

from nicegui import ui
from nicegui.events import ValueChangeEventArguments

from peeros.dashboard import kernel_more
from peeros.dashboard.backend import backend
from peeros.dashboard.layout import ErrorLabel, Live, attempt, card, fail, frame, short, table

STATE_COLORS = {
    "NEW": "#5b6b7b",
    "READY": "#2f5d8a",
    "RUNNING": "#3a9d5d",
    "WAITING": "#d9822b",
    "ZOMBIE": "#b8434e",
}


def tree_nodes(tree: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The kernel's nested process list as ``ui.tree`` nodes."""
    out = []
    for p in tree:
        pid = p["pid"] if len(p["pid"]) <= 16 else p["pid"][:12]
        label = f"{p['name']} · {pid} · {p['state']} · peer {short(p['peer'], 6)}"
        if p.get("waiting_on"):
            label += f" · waits on {p['waiting_on']}"
        out.append({"id": p["pid"], "label": label, "children": tree_nodes(p["children"])})
    return out


def graph_options(report: dict[str, Any]) -> dict[str, Any]:
    """The wait-for graph: an arrow from each waiting process to the one it waits for."""
    dead = set(report.get("deadlocked", []))
    names: list[str] = []
    for waiter, holder, _label in report.get("edges", []):
        for n in (waiter, holder):
            if n not in names:
                names.append(n)
    return {
        "animation": False,
        "tooltip": {},
        "series": [
            {
                "type": "graph",
                "layout": "circular",
                "autoCurveness": True,
                "top": 30,
                "bottom": 40,
                "roam": True,
                "symbolSize": 34,
                "edgeSymbol": ["none", "arrow"],
                "edgeSymbolSize": 10,
                "label": {"show": True, "position": "bottom", "formatter": "{b}"},
                "edgeLabel": {"show": True, "formatter": "{c}", "fontSize": 10},
                "lineStyle": {"width": 2, "curveness": 0.15},
                "data": [
                    {
                        "name": n[:10],
                        "itemStyle": {"color": "#b8434e" if n in dead else "#2f5d8a"},
                    }
                    for n in names
                ],
                "links": [
                    {"source": w[:10], "target": h[:10], "value": label}
                    for w, h, label in report.get("edges", [])
                ],
            }
        ],
    }


def vector(resources: list[str], values: list[int]) -> str:
    return ", ".join(f"{r}={v}" for r, v in zip(resources, values, strict=False))


def banker_rows(state: dict[str, Any]) -> list[dict[str, Any]]:
    resources = state.get("resources", [])
    rows = []
    for pid, maximum in state.get("max", {}).items():
        alloc = state.get("allocation", {}).get(pid, [0] * len(maximum))
        need = [m - a for m, a in zip(maximum, alloc, strict=False)]
        rows.append(
            {
                "pid": pid,
                "process": short(pid, 12),
                "max": vector(resources, maximum),
                "allocation": vector(resources, alloc),
                "need": vector(resources, need),
            }
        )
    return rows


def build_processes(refreshers: list[Any]) -> None:
    selected: dict[str, str] = {}
    with card("Processes (the whole cluster)"):
        tree = ui.tree([], node_key="id", label_key="label").classes("w-full peeros-wrap")
        tree.props('data-testid=proc-tree no-nodes-label="no processes"')
        with ui.row().classes("w-full gap-2 items-center"):
            chosen = ui.label("select a process to kill it").classes("peeros-wrap")
            group = ui.checkbox("its whole group")
            kill = ui.button("Kill", icon="dangerous", color="negative")
            kill.props("data-testid=proc-kill")
        with ui.row().classes("w-full gap-2 items-center"):
            name = ui.input("New plain process").classes("w-48").props("dense")
            parent = ui.input("Parent pid (optional)").classes("w-48").props("dense")
            create = ui.button("Create", icon="add").props("outline")
        errors = ErrorLabel()
    known: set[str] = set()

    def on_select(e: ValueChangeEventArguments[Any]) -> None:
        if e.value:
            selected["pid"] = str(e.value)
            chosen.set_text(f"selected {e.value}")

    tree.on_select(on_select)

    async def do_kill() -> None:
        pid = selected.get("pid")
        if not pid:
            fail("select a process in the tree first", errors)
            return
        whole = bool(group.value)
        ok, result = await attempt(lambda c: c.kernel.kill(pid, whole), errors)
        if ok and result is not None:
            ui.notify(f"killed {len(result.get('killed', []))} process(es)", type="positive")
            selected.pop("pid", None)
            chosen.set_text("select a process to kill it")

    async def do_create() -> None:
        n = (name.value or "").strip()
        if not n:
            fail("name the new process", errors)
            return
        par = (parent.value or "").strip() or None
        ok, proc = await attempt(lambda c: c.kernel.create(n, par), errors)
        if ok and proc is not None:
            ui.notify(f"created {proc.get('pid')}", type="positive")

    kill.on_click(do_kill)
    create.on_click(do_create)

    async def refresh() -> None:
        view = await backend().call(lambda c: c.kernel.processes())
        nodes = tree_nodes(view["tree"])
        if tree._props["nodes"] != nodes:
            tree._props["nodes"] = nodes
            tree.update()
        pids = {p["pid"] for p in view["processes"]}
        new = sorted(pids - known)
        known.update(new)
        if new:
            tree.expand(new)

    refreshers.append(refresh)


def build_deadlock(refreshers: list[Any]) -> None:
    with card("Deadlock detection (wait-for graph across the cluster)"):
        verdict = ui.label("-").classes("font-medium peeros-wrap")
        chart = ui.echart(graph_options({})).classes("w-full h-64")
        with ui.row().classes("w-full gap-2 items-center"):
            victim = ui.select([], label="Victim").classes("w-64")
            resolve = ui.button("Kill victim", icon="healing", color="negative").props("outline")
        errors = ErrorLabel()

    async def do_resolve() -> None:
        pid = str(victim.value or "")
        if not pid:
            fail("choose a deadlocked process as the victim", errors)
            return
        ok, result = await attempt(lambda c: c.kernel.resolve(pid), errors)
        if ok and result is not None:
            ui.notify(f"killed {', '.join(result.get('killed', [])) or 'nothing'}")

    resolve.on_click(do_resolve)
    last: dict[str, Any] = {}

    async def refresh() -> None:
        report = await backend().call(lambda c: c.kernel.deadlock())
        if report.get("deadlocked"):
            cycles = "; ".join(
                " → ".join(short(p) for p in [*c, c[0]]) for c in report.get("cycles", []) if c
            )
            verdict.set_text(f"DEADLOCK: {cycles or ', '.join(report['deadlocked'])}")
            verdict.classes(replace="font-medium peeros-wrap text-negative")
        else:
            n = len(report.get("edges", []))
            verdict.set_text(f"no deadlock ({n} wait-for edge{'s' if n != 1 else ''})")
            verdict.classes(replace="font-medium peeros-wrap text-positive")
        if report != last.get("report"):
            last["report"] = report
            chart.options.clear()
            chart.options.update(graph_options(report))
            chart.update()
            victim.options = list(report.get("deadlocked", []))
            victim.update()

    refreshers.append(refresh)


def build_bankers(refreshers: list[Any]) -> None:
    with card("Banker's algorithm (this peer)"):
        summary = ui.label("-").classes("peeros-wrap")
        rows = table(
            [
                ("process", "Process"),
                ("max", "Max claim"),
                ("allocation", "Allocated"),
                ("need", "Need"),
            ],
            [],
            "pid",
        )

    async def refresh() -> None:
        state = await backend().call(lambda c: c.kernel.state())
        bank = state["bankers"]
        summary.set_text(
            f"available: {vector(bank['resources'], bank['available'])} · state is "
            f"{'SAFE' if bank.get('safe') else 'UNSAFE'}"
        )
        rows.rows = banker_rows(bank)
        rows.update()

    refreshers.append(refresh)


async def page() -> None:
    with frame("Kernel") as banner:
        refreshers: list[Any] = []
        build_processes(refreshers)
        build_deadlock(refreshers)
        build_bankers(refreshers)
        refreshers.append(kernel_more.build_allocator())
        refreshers.append(kernel_more.build_ipc())

        async def refresh() -> None:
            for r in refreshers:
                await r()

        Live(refresh, banner)
