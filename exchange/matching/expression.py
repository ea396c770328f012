"""A small, safe expression language for custom campaign filters.

Grammar (a strict subset of Python expressions, parsed with ``ast`` and checked node by node)::

    expr    := expr "or" expr | expr "and" expr | "not" expr | "(" expr ")"
             | compare | FIELD | "True" | "False"
    compare := operand (("==" | "!=" | "<" | "<=" | ">" | ">=") operand)+
             | operand ("in" | "not in") "[" literal ("," literal)* "]"
    operand := FIELD | literal
    literal := 'string' | "string" | integer | -integer | True | False

FIELD is a vertical field name (snake_case). Nothing else is accepted: no calls, attributes,
subscripts, lambdas, arithmetic, floats or None, so an expression can only read lead fields.

Semantics, chosen so that a filter never passes by accident:
- if any field the expression names is missing from the lead, the expression is false;
- values compare only with values of the same kind (string, integer, boolean; True is not 1);
  a mismatch at run time makes the expression false;
- dates are 'YYYY-MM-DD' strings, so ``<``/``>`` on them compare chronologically.
"""

from __future__ import annotations

import ast
import functools
import re
import warnings
from collections.abc import Callable, Mapping
from typing import Any

EXPRESSION_MAX_CHARS = 500
EXPRESSION_MAX_NODES = 100  # expression nodes (names, literals, operators), not characters
COMPILED_CACHE_MAX = 4_096  # distinct expressions kept compiled in memory

Kind = str  # "str" | "int" | "bool": the kinds of value a lead field holds
Fields = Mapping[str, Any]

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_COMPARE_OPS: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
}
_ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_KIND_WORDS = {"str": "a string", "int": "an integer", "bool": "a boolean"}
# Friendly names for the nodes people try first; anything else is reported by its node type.
_FORBIDDEN = {
    ast.Call: "function calls are not allowed",
    ast.Attribute: "attribute access is not allowed",
    ast.Subscript: "subscripts are not allowed",
    ast.Lambda: "lambdas are not allowed",
    ast.BinOp: "arithmetic is not allowed",
    ast.NamedExpr: "assignment is not allowed",
    ast.IfExp: "conditional expressions are not allowed",
}


class UnsafeExpression(ValueError):
    """The text is not in the grammar; ``reason`` says which part."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Mismatch(Exception):
    """Values of different kinds met at run time."""


def kind_of(value: Any) -> Kind | None:
    # bool first: bool is a subclass of int, and True must never equal 1 here.
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, str):
        return "str"
    return None


class CompiledExpression:
    """A checked expression: the fields it reads and a function of the lead's fields."""

    __slots__ = ("text", "fields", "_test")

    def __init__(self, text: str, fields: frozenset[str], test: Callable[[Fields], bool]):
        self.text = text
        self.fields = fields
        self._test = test

    def __call__(self, lead: Fields) -> bool:
        if any(lead.get(name) is None for name in self.fields):
            return False
        try:
            return self._test(lead)
        except (_Mismatch, TypeError):
            return False


@functools.lru_cache(maxsize=COMPILED_CACHE_MAX)
def compile_expression(text: str) -> CompiledExpression:
    """Parse and check ``text``; raises ``UnsafeExpression``. Cached: campaigns share text."""
    builder = _Builder(kinds=None)
    test = builder.build(text)
    return CompiledExpression(text, frozenset(builder.names), test)


def type_problems(text: str, kinds: Mapping[str, Kind]) -> list[str]:
    """Problems of ``text`` against a vertical: unknown fields and mixed kinds.

    ``kinds`` maps each usable field name to the kind of value it holds. Raises
    ``UnsafeExpression`` when the text is not in the grammar at all.
    """
    builder = _Builder(kinds=kinds)
    builder.build(text)
    return builder.problems


class _Builder:
    """Turns an ``ast`` tree into nested closures, rejecting every node outside the grammar."""

    def __init__(self, kinds: Mapping[str, Kind] | None) -> None:
        self.kinds = kinds
        self.names: set[str] = set()
        self.problems: list[str] = []

    def build(self, text: str) -> Callable[[Fields], bool]:
        if not isinstance(text, str) or not text.strip():
            raise UnsafeExpression("the expression is empty")
        if len(text) > EXPRESSION_MAX_CHARS:
            raise UnsafeExpression(f"longer than {EXPRESSION_MAX_CHARS} characters")
        try:
            with warnings.catch_warnings():
                # A buyer's text may hold odd escapes; Python's warnings about them are noise.
                warnings.simplefilter("ignore")
                tree = ast.parse(text, mode="eval")
        except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
            # ValueError: NUL bytes; MemoryError/RecursionError: pathological nesting.
            raise UnsafeExpression(f"not a valid expression: {getattr(exc, 'msg', exc)}") from None
        nodes = sum(1 for node in ast.walk(tree) if isinstance(node, ast.expr))
        if nodes > EXPRESSION_MAX_NODES:
            raise UnsafeExpression(f"more than {EXPRESSION_MAX_NODES} terms")
        return self._test(tree.body)

    def _forbid(self, node: ast.AST) -> UnsafeExpression:
        if isinstance(node, (ast.Is, ast.IsNot)):
            return UnsafeExpression("'is' is not allowed; use == or !=")
        reason = _FORBIDDEN.get(type(node)) or f"{type(node).__name__} is not allowed"
        return UnsafeExpression(reason)

    # Boolean positions: the whole expression and the operands of and/or/not.
    def _test(self, node: ast.expr) -> Callable[[Fields], bool]:
        if isinstance(node, ast.BoolOp):
            parts = [self._test(value) for value in node.values]
            if isinstance(node.op, ast.And):
                return lambda lead: all(part(lead) for part in parts)
            return lambda lead: any(part(lead) for part in parts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = self._test(node.operand)
            return lambda lead: not inner(lead)
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.Name):
            get, kind = self._operand(node)
            if kind not in (None, "bool"):
                self.problems.append(f"{node.id} is not a boolean field; compare it to a value")
            return lambda lead: _strict_bool(get(lead))
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            value = node.value
            return lambda lead: value
        if isinstance(node, (ast.Constant, ast.List, ast.UnaryOp)):
            raise UnsafeExpression("expected a comparison, a boolean field, True or False")
        raise self._forbid(node)

    def _compare(self, node: ast.Compare) -> Callable[[Fields], bool]:
        left, left_kind = self._operand(node.left)
        steps: list[Callable[[Any, Fields], tuple[bool, Any]]] = []
        last = len(node.ops) - 1
        for position, (op, right_node) in enumerate(zip(node.ops, node.comparators)):
            if isinstance(op, (ast.In, ast.NotIn)):
                # Python would go on comparing the list itself (``a in [1] < 2``): refuse.
                if position != last:
                    raise UnsafeExpression("a list may only end a comparison")
                steps.append(self._membership(op, right_node, left_kind))
                continue
            if type(op) not in _COMPARE_OPS:
                raise self._forbid(op)
            right, right_kind = self._operand(right_node)
            self._check_kinds(op, left_kind, right_kind)
            steps.append(_ordered_step(_COMPARE_OPS[type(op)], right))
            left_kind = right_kind

        def compare(lead: Fields) -> bool:
            value = left(lead)
            for step in steps:
                ok, value = step(value, lead)
                if not ok:
                    return False
            return True

        return compare

    def _membership(
        self, op: ast.cmpop, node: ast.expr, left_kind: Kind | None
    ) -> Callable[[Any, Fields], tuple[bool, Any]]:
        if not isinstance(node, ast.List):
            raise UnsafeExpression("'in' takes a list literal, e.g. state in ['TX', 'CA']")
        values = [self._literal(element) for element in node.elts]
        kinds = {kind_of(v) for v in values}
        if len(kinds) > 1:
            raise UnsafeExpression("a list must hold values of one kind")
        list_kind = kinds.pop() if kinds else None
        if left_kind and list_kind and left_kind != list_kind:
            self.problems.append(
                f"compares {_KIND_WORDS[left_kind]} with a list of {list_kind} values"
            )
        # A set of (kind, value) pairs keeps True and 1 apart, which a plain set would merge.
        members = frozenset((kind_of(v), v) for v in values)
        negate = isinstance(op, ast.NotIn)

        def step(value: Any, lead: Fields) -> tuple[bool, Any]:
            kind = kind_of(value)
            if list_kind is not None and kind != list_kind:
                raise _Mismatch
            return ((kind, value) in members) != negate, None

        return step

    def _operand(self, node: ast.expr) -> tuple[Callable[[Fields], Any], Kind | None]:
        if isinstance(node, ast.Name):
            name = node.id
            if not _NAME.match(name):
                raise UnsafeExpression(f"{name!r} is not a field name")
            self.names.add(name)
            kind: Kind | None = None
            if self.kinds is not None:
                if name not in self.kinds:
                    self.problems.append(f"unknown field {name!r}")
                else:
                    kind = self.kinds[name]
            return (lambda lead: lead[name]), kind
        if isinstance(node, ast.List):
            raise UnsafeExpression("a list may only follow 'in' or 'not in'")
        value = self._literal(node)
        return (lambda lead: value), kind_of(value)

    def _literal(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant) and kind_of(node.value) is not None:
            return node.value
        # Negative integers parse as unary minus applied to a literal.
        if (
            isinstance(node, ast.UnaryOp)
            and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant)
            and kind_of(node.operand.value) == "int"
        ):
            return -node.operand.value
        if isinstance(node, ast.Constant):
            raise UnsafeExpression(
                f"{type(node.value).__name__} literals are not allowed;"
                " use strings, integers, True or False"
            )
        if isinstance(node, (ast.Name, ast.List)):
            raise UnsafeExpression("lists hold literals only")
        raise self._forbid(node)

    def _check_kinds(self, op: ast.cmpop, left: Kind | None, right: Kind | None) -> None:
        if left and right and left != right:
            self.problems.append(f"compares {_KIND_WORDS[left]} with {_KIND_WORDS[right]}")
        if isinstance(op, _ORDERING) and "bool" in (left, right):
            self.problems.append("booleans take only == and !=")


def _ordered_step(
    op: Callable[[Any, Any], bool], right: Callable[[Fields], Any]
) -> Callable[[Any, Fields], tuple[bool, Any]]:
    def step(value: Any, lead: Fields) -> tuple[bool, Any]:
        other = right(lead)
        if kind_of(value) != kind_of(other) or kind_of(value) is None:
            raise _Mismatch
        return op(value, other), other

    return step


def _strict_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Mismatch
    return value
