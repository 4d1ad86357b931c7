"""Every audit action is a member of `Action`, named in code as one, labelled in both languages.

The scan reads src/sealbox with `ast`: the calls that record an event (`record` and every
function with an `action` parameter), `action=` / `action__…=` filters, comparisons with
`.action`, and the tables named *ACTION*. A hand-typed string there is refused (it is how
a misspelt action reaches the log unseen), and every `Action.NAME` must exist.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.utils import translation

import sealbox
from sealbox.audit import actions
from sealbox.audit.actions import LABELS, Action
from sealbox.audit.models import Event
from sealbox.audit.services import record

SOURCE = Path(sealbox.__file__).parent
VALUES = {action.value for action in Action}
ACTION_LIKE = re.compile(r"[a-z_]+\.[a-z_]+")
ORM_CALLS = {"filter", "exclude", "get", "create", "get_or_create", "update", "Event"}


def source_files() -> list[Path]:
    return [
        path
        for path in sorted(SOURCE.rglob("*.py"))
        if "migrations" not in path.parts and path != SOURCE / "audit" / "actions.py"
    ]


def callee(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def recorders(trees: dict[Path, ast.Module]) -> dict[str, int]:
    """Functions that take an action: name -> position of the `action` parameter."""
    found = {"record": 0}
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names = [a.arg for a in node.args.posonlyargs + node.args.args]
                if "action" in names:
                    found[node.name] = names.index("action")
    return found


def action_expressions(tree: ast.Module, positions: dict[str, int]):
    """(line, expression, recorded) for every place where the code names an action;
    `recorded` when it is the action of an event being recorded."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = callee(node)
            position = positions.get(name)
            if position is not None and len(node.args) > position:
                yield node.lineno, node.args[position], True
            for keyword in node.keywords:
                if keyword.arg == "action" and name in positions:
                    yield node.lineno, keyword.value, True
                elif keyword.arg is not None and (
                    keyword.arg.startswith("action__")
                    or (keyword.arg == "action" and name in ORM_CALLS)
                ):
                    yield node.lineno, keyword.value, False
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(
                (isinstance(side, ast.Attribute) and side.attr == "action")
                or (isinstance(side, ast.Name) and side.id == "action")
                for side in sides
            ):
                for side in sides:
                    yield node.lineno, side, False
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if node.value is not None and any(
                isinstance(t, ast.Name) and "ACTION" in t.id.upper() for t in targets
            ):
                yield node.lineno, node.value, False


def hand_typed(expression: ast.AST, recorded: bool) -> list[str]:
    """The literals that should be members. Where an event is recorded, any literal;
    elsewhere (a form's button is an "action" too) one that reads as an audit action."""
    found = []
    for literal in literals(expression):
        value = literal.value if isinstance(literal, ast.Constant) else None
        if recorded or value is None or value in VALUES or ACTION_LIKE.fullmatch(value):
            found.append(ast.unparse(literal))
    return found


def literals(expression: ast.AST):
    """The string literals an action expression is made of (branches, tables, sets)."""
    if isinstance(expression, ast.Constant) and isinstance(expression.value, str):
        yield expression
    elif isinstance(expression, ast.JoinedStr):
        yield expression  # an f-string builds an action no one can look up
    elif isinstance(expression, ast.Tuple | ast.List | ast.Set):
        for item in expression.elts:
            yield from literals(item)
    elif isinstance(expression, ast.Dict):
        for item in (*expression.keys, *expression.values):
            if item is not None:
                yield from literals(item)
    elif isinstance(expression, ast.IfExp):
        yield from literals(expression.body)
        yield from literals(expression.orelse)
    elif isinstance(expression, ast.BoolOp):
        for item in expression.values:
            yield from literals(item)
    elif isinstance(expression, ast.Call) and callee(expression) in ("frozenset", "set", "tuple"):
        for item in expression.args:
            yield from literals(item)


@pytest.fixture(scope="module")
def trees() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(encoding="utf-8")) for path in source_files()}


def test_every_recorded_action_is_named_as_a_member(trees):
    positions = recorders(trees)
    assert {"record", "_audit"} <= set(positions)  # the scan sees the wrappers
    found = [
        f"{path.relative_to(SOURCE)}:{line}: {text}"
        for path, tree in trees.items()
        for line, expression, recorded in action_expressions(tree, positions)
        for text in hand_typed(expression, recorded)
    ]
    assert found == [], "write these as Action members:\n" + "\n".join(found)


def test_every_member_named_in_the_code_exists(trees):
    unknown = []
    used = set()
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "Action"
            ):
                used.add(node.attr)
                if node.attr not in Action.__members__:
                    unknown.append(f"{path.relative_to(SOURCE)}:{node.lineno}: Action.{node.attr}")
    assert unknown == []
    assert len(used) > 60  # the scan reads the code that records the events


def test_the_scan_catches_a_hand_typed_action():
    tree = ast.parse(
        "audit.record('message.opened', actor=user)\n"
        "_audit(message, f'{channel}.sent')\n"
        "Event.objects.filter(action__in=['email.failed'])\n"
        "if event.action == 'grant.locked': pass\n"
        "OPENED_ACTIONS = {'message': 'message.opened'}\n"
        "parser.add_argument('--x', action='store_true')\n"
        "audit.record(Action.MESSAGE_OPENED, actor=user)\n"
        "audit.record('made.up', actor=user)\n"
        "_record(grant, action='typo')\n"
        "if action == 'save': pass\n"
    )
    found = [
        text
        for _line, expression, recorded in action_expressions(
            tree, {"record": 0, "_audit": 1, "_record": 1}
        )
        for text in hand_typed(expression, recorded)
    ]
    assert sorted(found) == sorted(
        [
            "'message.opened'",
            "f'{channel}.sent'",
            "'email.failed'",
            "'grant.locked'",
            "'message.opened'",
            "'made.up'",
            "'typo'",
        ]
    )


def test_every_member_has_a_label_in_english_and_french():
    assert set(LABELS) == set(Action)
    with translation.override("en"):
        english = {action: str(LABELS[action]) for action in Action}
    with translation.override("fr"):
        french = {action: str(LABELS[action]) for action in Action}
    assert all(english.values())
    untranslated = [action.value for action in Action if french[action] == english[action]]
    assert untranslated == []


def test_a_stored_action_reads_its_label_and_an_unknown_one_reads_as_stored():
    with translation.override("fr"):
        assert actions.label("message.opened") == "Ouvert"
        assert actions.label(Action.EMAIL_FAILED) == "Courriel non remis"
        assert actions.label("something.else") == "something.else"


def test_each_outbox_outcome_has_its_action():
    for channel in ("email", "sms"):
        for outcome in ("sent", "deferred", "failed"):
            assert actions.delivery_outcome(channel, outcome) == f"{channel}.{outcome}"


@pytest.mark.django_db
def test_a_member_is_stored_and_hashed_as_its_value():
    event = record(Action.MESSAGE_OPENED)
    stored = Event.objects.get(pk=event.pk)
    assert type(event.action) is str and event.action == "message.opened"
    assert stored.action == "message.opened"
    assert Event.objects.filter(action=Action.MESSAGE_OPENED).count() == 1
