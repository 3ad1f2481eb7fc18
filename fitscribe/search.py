"""The search grammar: filters and orderings for runs and experiments, and page tokens.

MLflow's filter language, plus ``OR``, parentheses and ``min()``/``max()`` of a metric::

    metrics.acc > 0.9 AND (params.model = 'rf' OR tags.team ILIKE 'vision%')
    metrics.`val-loss` <= 0.05 AND attributes.status = 'FINISHED'
    min(metrics.loss) < 0.1        tags.reviewed IS NULL       run_id IN ('a1...', 'b2...')

A filter parses to a small tree (:class:`Comparison`, :class:`And`, :class:`Or`) that each store
compiles to its own query language; no part of the user's text is ever pasted into SQL.

Example:
    >>> parse_filter("metrics.acc > 0.9 and params.model = 'rf'")
    And(items=(Comparison(entity='metric', key='acc', op='>', value=0.9, aggregate=None), \
Comparison(entity='param', key='model', op='=', value='rf', aggregate=None)))
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Iterator, Sequence, Union

from fitscribe.errors import InvalidValueError

__all__ = [
    "Comparison",
    "And",
    "Or",
    "Expr",
    "OrderBy",
    "RUN_ATTRIBUTES",
    "EXPERIMENT_ATTRIBUTES",
    "REGISTERED_MODEL_ATTRIBUTES",
    "MODEL_VERSION_ATTRIBUTES",
    "parse_filter",
    "parse_experiment_filter",
    "parse_registry_filter",
    "parse_order_by",
    "encode_page_token",
    "decode_page_token",
    "MAX_FILTER_TERMS",
    "MAX_FILTER_DEPTH",
]

MAX_FILTER_TERMS = 200
"""The most comparisons one filter may hold (databases refuse much larger expression trees)."""
MAX_FILTER_DEPTH = 20
"""The deepest nesting of parentheses a filter may have."""


@dataclass(frozen=True)
class Comparison:
    """One test on a run: ``<entity>.<key> <op> <value>``.

    Attributes:
        entity: ``metric``, ``param``, ``tag``, ``attribute`` or ``dataset``.
        key: The metric/param/tag key, or the canonical attribute name (``run_id``, ``start_time``...).
        op: ``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``LIKE``, ``ILIKE``, ``IN``, ``NOT IN``,
            ``IS NULL`` or ``IS NOT NULL``.
        value: A float (metrics, numeric attributes), a str, a tuple of str (``IN``), or None.
        aggregate: For metrics, ``min`` or ``max`` of the whole history instead of the latest value.
    """

    entity: str
    key: str
    op: str
    value: Any
    aggregate: str | None = None


@dataclass(frozen=True)
class And:
    """All of ``items`` hold."""

    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    """At least one of ``items`` holds."""

    items: tuple[Expr, ...]


Expr = Union[Comparison, And, Or]


@dataclass(frozen=True)
class OrderBy:
    """One sort key: ``entity``/``key`` as in :class:`Comparison`, ascending or not."""

    entity: str
    key: str
    ascending: bool = True
    aggregate: str | None = None


# Attribute name (as the user may write it) -> (canonical name, kind).
_NUMBER, _STRING = "number", "string"
RUN_ATTRIBUTES: dict[str, tuple[str, str]] = {
    "run_id": ("run_id", _STRING),
    "run_uuid": ("run_id", _STRING),
    "run_name": ("run_name", _STRING),
    "run name": ("run_name", _STRING),
    "status": ("status", _STRING),
    "user_id": ("user_id", _STRING),
    "artifact_uri": ("artifact_uri", _STRING),
    "start_time": ("start_time", _NUMBER),
    "created": ("start_time", _NUMBER),
    "end_time": ("end_time", _NUMBER),
}
EXPERIMENT_ATTRIBUTES: dict[str, tuple[str, str]] = {
    "name": ("name", _STRING),
    "experiment_id": ("experiment_id", _STRING),
    "creation_time": ("creation_time", _NUMBER),
    "last_update_time": ("last_update_time", _NUMBER),
}
REGISTERED_MODEL_ATTRIBUTES: dict[str, tuple[str, str]] = {
    "name": ("name", _STRING),
    "creation_timestamp": ("creation_timestamp", _NUMBER),
    "last_updated_timestamp": ("last_updated_timestamp", _NUMBER),
    "timestamp": ("last_updated_timestamp", _NUMBER),
}
MODEL_VERSION_ATTRIBUTES: dict[str, tuple[str, str]] = {
    "name": ("name", _STRING),
    "version_number": ("version_number", _NUMBER),
    "version": ("version_number", _NUMBER),
    "run_id": ("run_id", _STRING),
    "source_path": ("source", _STRING),
    "source": ("source", _STRING),
    "current_stage": ("current_stage", _STRING),
    "status": ("status", _STRING),
    "user_id": ("user_id", _STRING),
    "creation_timestamp": ("creation_timestamp", _NUMBER),
    "last_updated_timestamp": ("last_updated_timestamp", _NUMBER),
    "timestamp": ("last_updated_timestamp", _NUMBER),
}
_DATASET_FIELDS = ("name", "digest", "context")

_ENTITY_PREFIXES = {
    "metrics": "metric", "metric": "metric",
    "params": "param", "param": "param", "parameters": "param", "parameter": "param",
    "tags": "tag", "tag": "tag",
    "attributes": "attribute", "attribute": "attribute", "attr": "attribute", "run": "attribute",
    "datasets": "dataset", "dataset": "dataset",
}
_CANONICAL_PREFIXES = {
    "metrics.": "metric", "params.": "param", "tags.": "tag", "attributes.": "attribute", "datasets.": "dataset"
}
# How each kind of field is written, for messages naming the fields a filter accepts.
_FIELD_FORMS = {
    "metric": "metrics.<key>", "param": "params.<key>", "tag": "tags.<key>", "attribute": "attributes.<name>",
    "dataset": "datasets.<field>",
}
_ORDERED = ("<", "<=", ">", ">=")
_NULL_OPS = ("IS NULL", "IS NOT NULL")
_STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN") + _NULL_OPS
_NUMBER_OPS = ("=", "!=") + _ORDERED + _NULL_OPS
_KEYWORDS = {"AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "ILIKE", "ASC", "DESC"}


# -- tokens ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Token:
    kind: str  # name, quoted_key (backticks), string (single/double quotes), number, op, (, ), ",", end
    text: str
    pos: int
    double_quoted: bool = False


_TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))(?![\w.])
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]*)*)
  | (?P<backtick>`[^`]*`)
  | (?P<squote>'[^']*')
  | (?P<dquote>"[^"]*")
  | (?P<op>!=|<>|<=|>=|==|=|<|>)
  | (?P<punct>[(),])
    """,
    re.VERBOSE,
)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            snippet = text[pos : pos + 20]
            hint = ""
            if text[pos] in "'\"`":
                hint = " (close every quote you open)"
            elif tokens and tokens[-1].kind == "name" and "." in tokens[-1].text:
                prefix, _, key = tokens[-1].text.partition(".")
                hint = f" (quote keys with special characters in backticks: {prefix}.`{key}{snippet.split()[0]}`)"
            raise _error(text, pos, f"cannot read {snippet!r}{hint}")
        kind = m.lastgroup or ""
        raw = m.group()
        if kind == "backtick":
            tokens.append(_Token("quoted_key", raw[1:-1], pos))
        elif kind in ("squote", "dquote"):
            tokens.append(_Token("string", raw[1:-1], pos, double_quoted=kind == "dquote"))
        elif kind == "op":
            tokens.append(_Token("op", {"<>": "!=", "==": "="}.get(raw, raw), pos))
        elif kind == "punct":
            tokens.append(_Token(raw, raw, pos))
        elif kind != "space":
            tokens.append(_Token(kind, raw, pos))
        pos = m.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


def _error(text: str, pos: int, message: str) -> InvalidValueError:
    start = max(0, pos - _ERROR_CONTEXT) if len(text) > 2 * _ERROR_CONTEXT else 0
    shown = text[start:pos + _ERROR_CONTEXT] if start or len(text) > 2 * _ERROR_CONTEXT else text
    lead = "..." if start else ""
    tail = "..." if start + len(shown) < len(text) else ""
    pointer = f"\n    {lead}{shown}{tail}\n    {' ' * (len(lead) + pos - start)}^"
    return InvalidValueError(f"Invalid search filter at position {pos}: {message}.{pointer}")


_ERROR_CONTEXT = 80  # characters of a long filter shown on each side of the faulty position


# -- parser ----------------------------------------------------------------------------------------
class _Parser:
    """Recursive descent over the tokens: or := and (OR and)*; and := atom (AND atom)*."""

    def __init__(self, text: str, attributes: dict[str, tuple[str, str]], entities: set[str]) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        self.attributes = attributes
        self.entities = entities
        self.depth = 0
        self.terms = 0

    # token helpers
    def peek(self, offset: int = 0) -> _Token:
        return self.tokens[min(self.i + offset, len(self.tokens) - 1)]

    def take(self) -> _Token:
        token = self.peek()
        self.i += 1
        return token

    def keyword(self, word: str, offset: int = 0) -> bool:
        token = self.peek(offset)
        return token.kind == "name" and token.text.upper() == word

    def fail(self, token: _Token, message: str) -> InvalidValueError:
        return _error(self.text, token.pos, message)

    # grammar
    def parse(self) -> Expr:
        expr = self.or_expr()
        token = self.peek()
        if token.kind != "end":
            found = token.text or token.kind
            raise self.fail(token, f"expected AND, OR or the end of the filter, found {found!r}")
        return expr

    def or_expr(self) -> Expr:
        items = [self.and_expr()]
        while self.keyword("OR"):
            self.take()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self) -> Expr:
        items = [self.atom()]
        while self.keyword("AND"):
            self.take()
            items.append(self.atom())
        return items[0] if len(items) == 1 else And(tuple(items))

    def atom(self) -> Expr:
        token = self.peek()
        if token.kind == "(":
            self.take()
            self.depth += 1
            if self.depth > MAX_FILTER_DEPTH:
                raise self.fail(token, f"parentheses are nested more than {MAX_FILTER_DEPTH} deep; simplify the filter")
            expr = self.or_expr()
            if self.peek().kind != ")":
                raise self.fail(self.peek(), "expected ')' to close the '(' opened at position " f"{token.pos}")
            self.take()
            self.depth -= 1
            return expr
        self.terms += 1
        if self.terms > MAX_FILTER_TERMS:
            raise self.fail(token, f"a filter may hold at most {MAX_FILTER_TERMS} comparisons; "
                                   "combine values with IN (...) or split the search")
        return self.comparison()

    def comparison(self) -> Comparison:
        start = self.peek()
        entity, key, kind, aggregate = self.identifier()
        op = self.operator(start)
        allowed = _NUMBER_OPS if kind == _NUMBER else _STRING_OPS
        if op not in allowed:
            source = self.text[start.pos : self.peek().pos].strip()
            raise self.fail(start, f"{source!r}: {op} cannot be used on {_describe(entity, key, kind)}; use one of {', '.join(allowed)}")
        value = self.value(start, entity, key, kind, op)
        return Comparison(entity, key, op, value, aggregate)

    def identifier(self) -> tuple[str, str, str, str | None]:
        """Read ``prefix.key``, a bare attribute, or ``min(metrics.key)``; return (entity, key, kind, aggregate)."""
        token = self.take()
        if token.kind == "name" and token.text.lower() in ("min", "max") and self.peek().kind == "(":
            self.take()
            inner = self.peek()
            entity, key, kind, _ = self.identifier()
            if entity != "metric":
                raise self.fail(inner, f"{token.text}() applies to metrics only, e.g. {token.text.lower()}(metrics.loss)")
            if self.take().kind != ")":
                raise self.fail(self.tokens[self.i - 1], f"expected ')' after {token.text}(metrics.{key}")
            return entity, key, kind, token.text.lower()
        if token.kind == "quoted_key" or (token.kind == "string" and token.double_quoted):
            return self.attribute(token, token.text)
        if token.kind != "name" or token.text.upper() in _KEYWORDS:
            found = token.text or "the end of the filter"
            raise self.fail(token, f"expected a field such as metrics.acc, params.lr or tags.team, found {found!r}")
        prefix, dot, rest = token.text.partition(".")
        if not dot:
            return self.attribute(token, prefix)
        entity = _ENTITY_PREFIXES.get(prefix.lower())
        if entity is None or entity not in self.entities:
            allowed = ", ".join(p for p, e in _CANONICAL_PREFIXES.items() if e in self.entities)
            raise self.fail(token, f"unknown field type {prefix!r} in {token.text!r}; start a field with {allowed}")
        if not rest:  # metrics.`my-metric` or metrics."my-metric"
            quoted = self.peek()
            if quoted.kind == "quoted_key" or (quoted.kind == "string" and quoted.double_quoted):
                self.take()
                rest = quoted.text
            else:
                raise self.fail(quoted, f"expected a key after {token.text!r}; quote keys with special characters in backticks: {token.text}`my-key`")
        if entity == "attribute":
            return self.attribute(token, rest)
        if entity == "dataset":
            if rest not in _DATASET_FIELDS:
                raise self.fail(token, f"datasets can be searched on {', '.join(_DATASET_FIELDS)}, not {rest!r}")
            return entity, rest, _STRING, None
        return entity, rest, (_NUMBER if entity == "metric" else _STRING), None

    def attribute(self, token: _Token, name: str) -> tuple[str, str, str, str | None]:
        found = self.attributes.get(name) or self.attributes.get(name.lower())
        if found is None:
            known = ", ".join(sorted({canonical for canonical, _ in self.attributes.values()}))
            others = self.entities - {"attribute"}
            hint = f"; other fields are written {_field_forms(others)}" if others else ""
            raise self.fail(token, f"unknown attribute {name!r}; attributes are {known}{hint}")
        return "attribute", found[0], found[1], None

    def operator(self, start: _Token) -> str:
        token = self.take()
        if token.kind == "op":
            return token.text
        word = token.text.upper() if token.kind == "name" else ""
        if word in ("LIKE", "ILIKE", "IN"):
            return word
        if word == "NOT" and self.keyword("IN"):
            self.take()
            return "NOT IN"
        if word == "IS":
            negated = self.keyword("NOT")
            if negated:
                self.take()
            if not self.keyword("NULL"):
                raise self.fail(self.peek(), "expected NULL after IS" + (" NOT" if negated else ""))
            self.take()
            return "IS NOT NULL" if negated else "IS NULL"
        found = token.text or "the end of the filter"
        raise self.fail(token, f"expected a comparison (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, IS NULL) after {self.text[start.pos:token.pos].strip()!r}, found {found!r}")

    def value(self, start: _Token, entity: str, key: str, kind: str, op: str) -> Any:
        if op in _NULL_OPS:
            return None
        field = self.text[start.pos : self.peek().pos].strip()
        if op in ("IN", "NOT IN"):
            return self.string_list(field)
        token = self.take()
        if kind == _NUMBER:
            if token.kind != "number":
                shown = repr(token.text) if token.kind == "string" else (token.text or "nothing")
                raise self.fail(token, f"{field} expects a number, got {shown}; {_describe(entity, key, kind)} is compared with numbers, e.g. {field} 0.5")
            number = float(token.text)
            if not math.isfinite(number):
                raise self.fail(token, f"{field} needs a finite number, got {token.text}")
            return number
        if token.kind != "string":
            if token.kind in ("name", "number") and token.text.upper() not in _KEYWORDS:  # an unquoted word
                found, example = token.text, token.text
            else:
                found, example = (repr(token.text) if token.text else "the end of the filter"), "value"
            raise self.fail(token, f"{field} expects a quoted string, got {found}; {_describe(entity, key, kind)} is a string, so write {field} '{example}'")
        return token.text

    def string_list(self, field: str) -> tuple[str, ...]:
        opening = self.take()
        if opening.kind != "(":
            raise self.fail(opening, f"{field} expects a parenthesised list of quoted strings, e.g. ('a', 'b')")
        items: list[str] = []
        while True:
            token = self.take()
            if token.kind != "string":
                found = repr(token.text) if token.text else "the end of the filter"
                raise self.fail(token, f"{field} expects quoted strings in its list, found {found}")
            items.append(token.text)
            closing = self.take()
            if closing.kind == ")":
                return tuple(items)
            if closing.kind != ",":
                raise self.fail(closing, f"expected ',' or ')' in the list of {field}")


def _field_forms(entities: set[str]) -> str:
    """Return how the given kinds of field are written, e.g. ``tags.<key> or attributes.<name>``."""
    forms = [form for entity, form in _FIELD_FORMS.items() if entity in entities]
    return forms[0] if len(forms) == 1 else f"{', '.join(forms[:-1])} or {forms[-1]}"


def _describe(entity: str, key: str, kind: str) -> str:
    if entity == "attribute":
        return f"the attribute {key} ({kind})"
    if entity == "metric":
        return f"the metric {key!r}"
    return f"the {entity} {key!r}"


# -- public parsing functions ----------------------------------------------------------------------
_RUN_ENTITIES = {"metric", "param", "tag", "attribute", "dataset"}


def parse_filter(filter_string: str | None) -> Expr | None:
    """Parse a run filter; return None for an empty or absent filter.

    Raises:
        InvalidValueError: The filter is malformed; the message points at the faulty position.
    """
    if filter_string is None or filter_string == "":
        return None
    if not isinstance(filter_string, str):
        raise InvalidValueError(f"A search filter must be a string, not {type(filter_string).__name__}.")
    if not filter_string.strip():
        raise InvalidValueError("The search filter is only whitespace; pass '' or None to match every run.")
    return _Parser(filter_string, RUN_ATTRIBUTES, _RUN_ENTITIES).parse()


def parse_experiment_filter(filter_string: str | None) -> Expr | None:
    """Parse an experiment filter on ``name``, ``experiment_id``, the times and ``tags.<key>``.

    Raises:
        InvalidValueError: The filter is malformed or names a field experiments do not have.
    """
    if filter_string is None or filter_string == "":
        return None
    if not filter_string.strip():
        raise InvalidValueError("The experiment filter is only whitespace; pass '' or None to match all.")
    return _Parser(filter_string, EXPERIMENT_ATTRIBUTES, {"tag", "attribute"}).parse()


def parse_registry_filter(filter_string: str | None, attributes: dict[str, tuple[str, str]]) -> Expr | None:
    """Parse a registered model or model version filter: the given attributes and ``tags.<key>``.

    Args:
        filter_string: e.g. ``"name = 'churn' AND tags.team = 'risk'"``; None or '' matches all.
        attributes: :data:`REGISTERED_MODEL_ATTRIBUTES` or :data:`MODEL_VERSION_ATTRIBUTES`.

    Raises:
        InvalidValueError: The filter is malformed or names a field these objects do not have.
    """
    if filter_string is None or filter_string == "":
        return None
    if not isinstance(filter_string, str):
        raise InvalidValueError(f"A search filter must be a string, not {type(filter_string).__name__}.")
    if not filter_string.strip():
        raise InvalidValueError("The search filter is only whitespace; pass '' or None to match all.")
    return _Parser(filter_string, attributes, {"tag", "attribute"}).parse()


def iter_comparisons(expr: Expr | None) -> Iterator[Comparison]:
    """Yield every comparison in a parsed filter."""
    if expr is None:
        return
    if isinstance(expr, Comparison):
        yield expr
    else:
        for item in expr.items:
            yield from iter_comparisons(item)


def parse_order_by(
    order_by: Sequence[str] | None,
    experiments: bool = False,
    attributes: dict[str, tuple[str, str]] | None = None,
) -> list[OrderBy]:
    """Parse ``["metrics.acc DESC", "params.`model type`", "start_time"]`` into sort keys.

    Args:
        order_by: Clauses ``<field> [ASC|DESC]``; the direction defaults to ascending.
        experiments: Parse experiment fields (``name``, ``creation_time``...) instead of run fields.
        attributes: Parse these attributes only (e.g. :data:`MODEL_VERSION_ATTRIBUTES`).

    Raises:
        InvalidValueError: A clause is malformed or names an unknown field.
    """
    if order_by is None:
        return []
    if isinstance(order_by, str):
        raise InvalidValueError(f"order_by must be a list of strings, e.g. [{order_by!r}], not a single string.")
    entities = {"attribute"} if experiments or attributes else {"metric", "param", "tag", "attribute"}
    if attributes is None:
        attributes = EXPERIMENT_ATTRIBUTES if experiments else RUN_ATTRIBUTES
    result = []
    for clause in order_by:
        if not isinstance(clause, str) or not clause.strip():
            raise InvalidValueError(f"Invalid ordering key {clause!r}: write '<field> [ASC|DESC]', e.g. 'metrics.acc DESC'.")
        parser = _Parser(clause, attributes, entities)
        entity, key, _, aggregate = parser.identifier()
        ascending = True
        if parser.keyword("ASC") or parser.keyword("DESC"):
            ascending = parser.take().text.upper() == "ASC"
        if parser.peek().kind != "end":
            token = parser.peek()
            raise _error(clause, token.pos, f"invalid ordering key: expected ASC, DESC or the end after the field, found {token.text!r}")
        result.append(OrderBy(entity, key, ascending, aggregate))
    return result


# -- page tokens -----------------------------------------------------------------------------------
def encode_page_token(offset: int) -> str:
    """Return the opaque token for the page that starts at ``offset`` (MLflow's format)."""
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_page_token(token: str | None) -> int:
    """Return the offset a page token stands for (0 for None or '').

    Raises:
        InvalidValueError: The token was not produced by a search (altered, truncated or foreign).
    """
    if not token:
        return 0
    try:
        data = json.loads(base64.b64decode(token.encode(), validate=True))
        offset = data["offset"]
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValueError(offset)
        return offset
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeError, AttributeError):
        raise InvalidValueError(
            f"Invalid page token {token[:40]!r}: pass the `token` of the previous page unchanged, or None for the first page."
        ) from None
