"""The stage graph, drawn from the steps' declarations (`bot.core.workflow.graph`): as text
for a reader, or as Mermaid for the docs. `noticebot workflow graph` prints it."""

from __future__ import annotations

from collections import defaultdict
from enum import StrEnum

from bot.core.labels import STAGE_LABELS
from bot.core.steps.base import TERMINAL
from bot.core.workflow import Edge, graph
from storage.models import Stage


class GraphFormat(StrEnum):
    text = "text"
    mermaid = "mermaid"


def _grouped(edges: list[Edge]) -> dict[tuple[Stage | None, Stage], list[str]]:
    grouped: dict[tuple[Stage | None, Stage], list[str]] = defaultdict(list)
    for edge in edges:
        grouped[(edge.source, edge.target)].append(edge.action)
    return grouped


def render(fmt: GraphFormat = GraphFormat.text) -> str:
    grouped = _grouped(graph())
    lines = ["stateDiagram-v2"] if fmt is GraphFormat.mermaid else []
    for stage in [None, *Stage]:
        outgoing = [(target, actions) for (source, target), actions in grouped.items()
                    if source is stage]
        if fmt is GraphFormat.mermaid:
            start = "[*]" if stage is None else stage.value
            lines += [f"    {start} --> {target.value}: {', '.join(actions)}"
                      for target, actions in outgoing]
            if stage in TERMINAL:
                lines.append(f"    {stage.value} --> [*]")
            continue
        if stage is None:
            lines.append("(start)")
        else:
            end = " (terminal)" if stage in TERMINAL else ""
            lines.append(f"{stage.value}: {STAGE_LABELS[stage]}{end}")
        lines += [f"  -> {target.value}: {', '.join(actions)}" for target, actions in outgoing]
    return "\n".join(lines) + "\n"


def unreachable(edges: list[Edge] | None = None) -> set[Stage]:
    """Stages no declared transition leads to from the opening of a case."""
    edges = graph() if edges is None else edges
    seen: set[Stage] = set()
    frontier = [edge.target for edge in edges if edge.source is None]
    while frontier:
        stage = frontier.pop()
        if stage not in seen:
            seen.add(stage)
            frontier += [edge.target for edge in edges if edge.source is stage]
    return set(Stage) - seen


def dead_ends(edges: list[Edge] | None = None) -> set[Stage]:
    """Non-terminal stages no declared transition leaves."""
    sources = {edge.source for edge in (graph() if edges is None else edges)}
    return {stage for stage in Stage if stage not in TERMINAL and stage not in sources}
