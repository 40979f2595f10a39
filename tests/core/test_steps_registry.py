"""The steps' declarations (bot/core/steps, collected in bot/core/workflow): one place per
step, a stage graph without holes, and a core without import cycles."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path
from typing import Any, cast

import pytest

from bot.core import graph, labels, workflow
from bot.core.context import Ctx
from bot.core.graph import GraphFormat
from bot.core.steps.base import Act, Who
from bot.messages import ActionId, FormId
from storage.models import Case, IntendedUse, NoticeType, Stage

ROOT = Path(__file__).resolve().parents[2]


def test_every_stage_is_reachable_from_the_opening_of_a_case() -> None:
    assert graph.unreachable() == set()


def test_every_non_terminal_stage_has_a_way_out() -> None:
    assert graph.dead_ends() == set()


def test_the_graph_checks_find_a_hole() -> None:
    edges = workflow.graph()
    assert graph.unreachable([e for e in edges if e.target is not Stage.doubt]) \
        == {Stage.doubt}
    assert graph.dead_ends([e for e in edges if e.source is not Stage.ready]) == {Stage.ready}


def test_each_button_and_form_is_declared_exactly_once() -> None:
    actions = Counter(act.action for act in workflow.acts())
    forms = Counter(act.form for act in workflow.acts() if act.form is not None)
    assert [a for a, n in actions.items() if n > 1] == []
    assert [f for f, n in forms.items() if n > 1] == []
    # Every button of a case is a declared action; show_case only reads.
    assert set(ActionId) - set(actions) == {ActionId.show_case}
    # Every form but the opening one (asked before there is a case) belongs to a step.
    assert set(FormId) - set(forms) == {FormId.open_case}
    for act in workflow.acts():
        assert (act.form is None) == (act.build is None), act.action


def test_every_checklist_line_has_a_step_with_a_prompt() -> None:
    for stage, _, _ in workflow.checklist():
        step = workflow.step_at(stage)
        assert step is not None and step.prompt is not None and step.waiting is not None, stage
    # ...and every step with a stage is a checklist line (ready ends the checklist).
    declared = {step.stage for step in workflow.STEPS if step.stage is not None}
    assert declared - {line.stage for line in workflow.checklist()} == {Stage.ready}


def test_the_checklist_follows_the_stages_order_and_every_stage_has_a_label() -> None:
    lines = workflow.checklist()
    stages = [line.stage for line in lines]
    assert stages == sorted(stages, key=list(Stage).index)
    assert len({line.title.split(". ", 1)[0] for line in lines}) == len(lines)  # numbers unique
    assert set(labels.STAGE_LABELS) == set(Stage)
    assert lines[2] == ("doubt", "2b. Doubt: confer, research, seek context", "§5.2")


def test_who_may_act_is_an_enum_on_every_declaration() -> None:
    assert all(isinstance(act.who, Who) for act in workflow.acts())
    approvers = {act.action for act in workflow.acts() if act.who is Who.approver}
    assert {ActionId.approve, ActionId.deny, ActionId.sign_off_exception,
            ActionId.close_case} <= approvers


def test_graph_renders_as_text_and_mermaid() -> None:
    text = graph.render(GraphFormat.text)
    mermaid = graph.render(GraphFormat.mermaid)
    assert mermaid.startswith("stateDiagram-v2\n")
    assert "    [*] --> validity: open_case" in mermaid
    assert "    approval --> review: return_for_changes" in mermaid
    assert "  -> closed: deny, report_inactive, withdraw" in text
    for stage in Stage:
        assert f"{stage.value}: {labels.STAGE_LABELS[stage]}" in text


def _case(stage: Stage) -> Case:
    return Case.model_validate({
        "id": "RN-2026-0001", "aor_id": "HOU", "notice_type": NoticeType.red_notice,
        "intended_use": IntendedUse.enforcement, "extradition_pending": False,
        "officer": "U0OFF1", "channel": "C0", "stage": stage.value,
        "opened_at": "2026-11-23T15:00:00+00:00", "notice_reference": "A-1/2026",
        "subject_name": "X", "issuing_country": "MX", "offense_summary": "robbery"})


def _jump(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    case.stage = Stage.ready


def test_a_move_a_step_does_not_declare_is_refused_at_run_time() -> None:
    # Who.reminded skips the roster checks, so no database is needed for this check.
    undeclared = Act(ActionId.reminder_snooze, Who.reminded, _jump)
    with pytest.raises(AssertionError, match="does not declare"):
        workflow.perform(cast(Ctx, None), _case(Stage.validity), undeclared, {}, None)
    declared = Act(ActionId.reminder_snooze, Who.reminded, _jump, leads_to=(Stage.ready,))
    case = _case(Stage.validity)
    workflow.perform(cast(Ctx, None), case, declared, {}, None)
    assert case.stage == Stage.ready.value


def _imports(package: str) -> dict[str, set[str]]:
    """bot.* module → the bot.* modules it imports (anywhere in the file, functions too)."""
    modules: dict[str, Path] = {}
    for path in (ROOT / package).rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    graph_: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph_[name] |= {t for t in targets if t in modules and t != name}
    return graph_


def _cycles(graph_: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph_[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in graph_:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_in_bot() -> None:
    assert _cycles(_imports("bot")) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_cli_prints_the_graph() -> None:
    from click.testing import CliRunner

    from handlers.cli import main

    runner = CliRunner()
    text = runner.invoke(main, ["workflow", "graph"])
    mermaid = runner.invoke(main, ["workflow", "graph", "--format", "mermaid"])
    assert text.exit_code == 0 and text.output == graph.render(GraphFormat.text)
    assert mermaid.exit_code == 0 and mermaid.output == graph.render(GraphFormat.mermaid)
