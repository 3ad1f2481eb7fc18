"""schemathesis hooks for tests/test_server_fuzz.py: besides the values drawn from the OpenAPI
document, send the inputs that once made the server answer 5xx (issue 16): JSON nested hundreds of
levels deep, lone UTF-16 surrogates in strings, 40-digit ids and 400-digit numbers, digits that
``str.isdigit()`` accepts but ``int()`` refuses (``"²"``), and filters of ~330 nested parentheses or
1,000 terms. Loaded by name through ``SCHEMATHESIS_HOOKS=_fuzz_hooks``.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import strategies as st

DEEP = 200
DEEP_FILTER = "(" * 330 + "name = 'x'" + ")" * 330
MANY_TERMS = " AND ".join(["name = 'x'"] * 1000)
HUGE_INT = int("9" * 400)
BIG_ID = "1" + "0" * 39


def _nested(depth: int) -> Any:
    value: Any = "x"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def _replace(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    return {**data, key: value}


def _body_variants(body: Any) -> list[Any]:
    """The body as drawn, and copies carrying each hostile value in one of its fields."""
    if not isinstance(body, dict) or not body:
        return [body]
    key = sorted(body)[0]
    variants = [body, _replace(body, key, _nested(DEEP)), _replace(body, key, "bad\ud800name"),
                _replace(body, key, HUGE_INT), _replace(body, key, BIG_ID), _replace(body, key, "\u00b2")]
    if "filter" in body:
        variants += [_replace(body, "filter", DEEP_FILTER), _replace(body, "filter", MANY_TERMS)]
    for name in ("name", "value", "run_name", "experiment_id", "max_results", "view_type", "version"):
        if name in body:
            variants += [_replace(body, name, "\udfff"), _replace(body, name, BIG_ID), _replace(body, name, "\u00b2")]
    return variants


def _query_variants(query: Any) -> list[Any]:
    """The query as drawn, and copies carrying a hostile value (no surrogates: a URL cannot hold them)."""
    if not isinstance(query, dict) or not query:
        return [query]
    variants = [query]
    for key in sorted(query):
        variants += [_replace(query, key, BIG_ID), _replace(query, key, "\u00b2"), _replace(query, key, "9" * 400)]
        if key == "filter":
            variants += [_replace(query, key, DEEP_FILTER), _replace(query, key, MANY_TERMS)]
    return variants


@schemathesis.hook
def flatmap_body(context: Any, body: Any) -> Any:
    """Draw the body as generated or one of its hostile variants."""
    return st.sampled_from(_body_variants(body))


@schemathesis.hook
def flatmap_query(context: Any, query: Any) -> Any:
    """Draw the query as generated or one of its hostile variants."""
    return st.sampled_from(_query_variants(query))
