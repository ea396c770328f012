"""The custom expression language: what it accepts, what it refuses, and how it evaluates."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.matching import (
    EXPRESSION_MAX_CHARS,
    EXPRESSION_MAX_NODES,
    UnsafeExpression,
    compile_expression,
)
from exchange.matching.expression import type_problems

LEAD = {
    "state": "TX",
    "zip": "75001",
    "credit_score": 700,
    "home_owner": True,
    "birth_date": "1990-06-15",
    "product": "Solar",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("state == 'TX'", True),
        ('state != "TX"', False),
        ("state in ['TX', 'CA'] and credit_score >= 650", True),
        ("state not in ['TX']", False),
        ("credit_score in [600, 700, -1]", True),
        ("not home_owner", False),
        ("home_owner == True", True),
        ("600 <= credit_score < 700", False),  # a chain: 700 < 700 is false
        ("600 <= credit_score <= 700", True),
        ("credit_score > -5", True),
        ("(state == 'NY' or zip == '75001') and home_owner", True),
        ("state == 'NY' or (zip == '75001' and not home_owner)", False),
        ("birth_date < '2000-01-01'", True),  # ISO dates compare in calendar order
        ("birth_date > '1990-06-15'", False),
        ("True", True),
        ("False or state == 'TX'", True),
        ("credit_score == credit_score", True),
        ("state < zip", False),  # two fields of one kind may be compared ('T' > '7')
    ],
)
def test_accepts_the_grammar_and_evaluates(text: str, expected: bool) -> None:
    assert compile_expression(text)(LEAD) is expected


def test_reports_the_fields_it_reads() -> None:
    assert compile_expression("state == 'TX' and (credit_score > 1 or home_owner)").fields == frozenset(
        {"state", "credit_score", "home_owner"}
    )


@pytest.mark.parametrize(
    "text",
    [
        "state == 'TX' or nope == 1",  # any missing field: false, even where 'or' would not need it
        "not nope",
        "credit_score == '700'",  # kinds never mix: no coercion
        "home_owner == 1",  # True is not 1
        "credit_score in ['700']",
        "credit_score in [True]",
        "state > 5",
        "credit_score",  # a bare non-boolean field is not truthy
    ],
)
def test_missing_fields_and_kind_mismatches_are_false(text: str) -> None:
    assert compile_expression(text)(LEAD) is False


def test_a_field_set_to_none_counts_as_missing() -> None:
    assert compile_expression("state != 'NY'")({**LEAD, "state": None}) is False


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("__import__('os')", "function calls are not allowed"),
        ("__import__('os').system('id') == 0", "function calls are not allowed"),
        ("state.upper() == 'TX'", "function calls are not allowed"),
        ("state.real == 1", "attribute access is not allowed"),
        ("().__class__ == 1", "attribute access is not allowed"),
        ("fields['state'] == 'TX'", "subscripts are not allowed"),
        ("lambda: True", "lambdas are not allowed"),
        ("(lambda: True)()", "function calls are not allowed"),
        ("credit_score + 1 > 2", "arithmetic is not allowed"),
        ("(x := 1)", "assignment is not allowed"),
        ("state if home_owner else zip", "conditional expressions are not allowed"),
        ("[x for x in zip] == 1", "ListComp is not allowed"),
        ("{1: 2} == 1", "Dict is not allowed"),
        ("f'{state}' == 'TX'", "JoinedStr is not allowed"),
        ("await state", "Await is not allowed"),
        ("state is None", "'is' is not allowed; use == or !="),
        ("state == None", "NoneType literals are not allowed; use strings, integers, True or False"),
        ("credit_score > 1.5", "float literals are not allowed; use strings, integers, True or False"),
        ("state == b'TX'", "bytes literals are not allowed; use strings, integers, True or False"),
        ("state in zip", "'in' takes a list literal, e.g. state in ['TX', 'CA']"),
        ("state in ['TX', 1]", "a list must hold values of one kind"),
        ("state in [zip]", "lists hold literals only"),
        ("state in ['TX'] == True", "a list may only end a comparison"),
        ("[1] == state", "a list may only follow 'in' or 'not in'"),
        ("'TX'", "expected a comparison, a boolean field, True or False"),
        ("__builtins__ == 1", "'__builtins__' is not a field name"),
        ("State == 'TX'", "'State' is not a field name"),
        ("", "the expression is empty"),
        ("   ", "the expression is empty"),
        ("import os", "not a valid expression: invalid syntax"),
        ("state == 'TX' and", "not a valid expression: invalid syntax"),
        ("a" * (EXPRESSION_MAX_CHARS + 1), f"longer than {EXPRESSION_MAX_CHARS} characters"),
        ("not " * EXPRESSION_MAX_NODES + "home_owner", f"more than {EXPRESSION_MAX_NODES} terms"),
        ("credit_score > " + "-" * 400 + "1", f"more than {EXPRESSION_MAX_NODES} terms"),
        ("credit_score in [" + ",".join(["1"] * EXPRESSION_MAX_NODES) + "]", f"more than {EXPRESSION_MAX_NODES} terms"),
    ],
)
def test_refuses_everything_outside_the_grammar(text: str, reason: str) -> None:
    with pytest.raises(UnsafeExpression) as caught:
        compile_expression(text)
    assert caught.value.reason == reason


def test_refuses_pathological_nesting_and_nul_bytes() -> None:
    for text in ("(" * 240 + "home_owner" + ")" * 240, "[" * 240 + "]" * 240, "state == 'TX'\x00"):
        with pytest.raises(UnsafeExpression) as caught:
            compile_expression(text)
        assert caught.value.reason.startswith("not a valid expression")


def test_type_problems_against_a_vertical() -> None:
    kinds = {"state": "str", "credit_score": "int", "home_owner": "bool"}
    assert type_problems("state == 'TX' and credit_score > 1 and home_owner", kinds) == []
    assert type_problems("credit_score == 'x' or state in [1] or nope", kinds) == [
        "compares an integer with a string",
        "compares a string with a list of int values",
        "unknown field 'nope'",
    ]


SAFE_ALPHABET = "abs_tez 019'\"()[],.=<>!+-*/:@{}_\\"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(alphabet=SAFE_ALPHABET, max_size=40) | st.text(max_size=20))
def test_any_text_compiles_or_is_refused_and_never_raises_when_run(text: str) -> None:
    try:
        compiled = compile_expression(text)
    except UnsafeExpression:
        return
    result = compiled({"a": 1, "b": "x", "s": True, "ab": 0, "st": "75001"})
    assert result is True or result is False
