"""The search grammar: what parses to what, and the errors users see for what does not."""

from __future__ import annotations

import pytest

from fitscribe.errors import InvalidValueError
from fitscribe.search import (
    And,
    Comparison,
    Or,
    OrderBy,
    decode_page_token,
    encode_page_token,
    parse_experiment_filter,
    parse_filter,
    parse_order_by,
)


def test_empty_filter_is_none() -> None:
    assert parse_filter(None) is None and parse_filter("") is None


def test_whitespace_only_filter_is_an_error() -> None:
    with pytest.raises(InvalidValueError, match="only whitespace"):
        parse_filter("   ")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("metrics.acc > 0.9", Comparison("metric", "acc", ">", 0.9)),
        ("metric.acc >= -1e-3", Comparison("metric", "acc", ">=", -0.001)),
        ("metrics.acc<>1", Comparison("metric", "acc", "!=", 1.0)),
        ("params.lr = '0.01'", Comparison("param", "lr", "=", "0.01")),
        ('parameter.lr = "0.01"', Comparison("param", "lr", "=", "0.01")),
        ("tags.mlflow.runName = 'r1'", Comparison("tag", "mlflow.runName", "=", "r1")),
        ("tags.`mlflow.source.type` = 'LOCAL'", Comparison("tag", "mlflow.source.type", "=", "LOCAL")),
        ("metrics.`val-loss` <= 0.05", Comparison("metric", "val-loss", "<=", 0.05)),
        ('metrics."val loss" < 1', Comparison("metric", "val loss", "<", 1.0)),
        ("params.`model type` LIKE 'Lin%'", Comparison("param", "model type", "LIKE", "Lin%")),
        ("tags.team ilike 'VIS%'", Comparison("tag", "team", "ILIKE", "VIS%")),
        ("tags.team IS NULL", Comparison("tag", "team", "IS NULL", None)),
        ("tags.team is not null", Comparison("tag", "team", "IS NOT NULL", None)),
        ("status = 'FAILED'", Comparison("attribute", "status", "=", "FAILED")),
        ("attributes.status != 'FAILED'", Comparison("attribute", "status", "!=", "FAILED")),
        ("attr.start_time > 1700000000000", Comparison("attribute", "start_time", ">", 1.7e12)),
        ("created < 5", Comparison("attribute", "start_time", "<", 5.0)),
        ("`Run name` = 'x'", Comparison("attribute", "run_name", "=", "x")),
        ("run.run_name = 'x'", Comparison("attribute", "run_name", "=", "x")),
        ("run_id IN ('a', 'b')", Comparison("attribute", "run_id", "IN", ("a", "b"))),
        ("params.model NOT IN ('rf')", Comparison("param", "model", "NOT IN", ("rf",))),
        ("datasets.name = 'train'", Comparison("dataset", "name", "=", "train")),
        ("min(metrics.loss) < 0.1", Comparison("metric", "loss", "<", 0.1, "min")),
        ("MAX(metrics.`val acc`) >= 0.5", Comparison("metric", "val acc", ">=", 0.5, "max")),
        ("params.name = \"O'Brien\"", Comparison("param", "name", "=", "O'Brien")),
    ],
)
def test_single_comparisons(text: str, expected: Comparison) -> None:
    assert parse_filter(text) == expected


def test_and_binds_tighter_than_or_and_parentheses_group() -> None:
    a = Comparison("metric", "a", ">", 1.0)
    b = Comparison("param", "b", "=", "x")
    c = Comparison("tag", "c", "=", "y")
    assert parse_filter("metrics.a > 1 OR params.b = 'x' AND tags.c = 'y'") == Or((a, And((b, c))))
    assert parse_filter("(metrics.a > 1 or params.b = 'x') and tags.c = 'y'") == And((Or((a, b)), c))
    assert parse_filter("((metrics.a > 1))") == a


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("metrics.acc > 'high'", r"metrics\.acc > expects a number, got 'high'"),
        ("params.lr = 0.01", r"params\.lr = expects a quoted string.*params\.lr = '0\.01'"),
        ("metrics.acc LIKE '0.%'", r"LIKE cannot be used on the metric 'acc'"),
        ("start_time LIKE '1%'", r"LIKE cannot be used on the attribute start_time"),
        ("foo.bar = 'x'", r"unknown field type 'foo'.*metrics\., params\."),
        ("colour = 'red'", r"unknown attribute 'colour'.*run_name"),
        ("metrics.acc", r"expected a comparison"),
        ("metrics.acc > 1 AND", r"expected a field"),
        ("metrics.acc > 1 params.lr = '1'", r"expected AND, OR or the end"),
        ("(metrics.acc > 1", r"expected '\)' to close"),
        ("params.lr = '0.1", r"close every quote"),
        ("metrics.my-metric > 1", r"backticks: metrics\.`my-metric`"),
        ("run_id IN 'a'", r"parenthesised list"),
        ("run_id IN ('a', 1)", r"quoted strings in its list"),
        ("min(params.lr) = '1'", r"metrics only"),
        ("tags.x IS 'y'", r"expected NULL after IS"),
        ("metrics. > 1", r"expected a key after 'metrics\.'"),
        ("datasets.size = '1'", r"datasets can be searched on name, digest, context"),
    ],
)
def test_errors_say_what_and_where(text: str, pattern: str) -> None:
    with pytest.raises(InvalidValueError, match=pattern) as info:
        parse_filter(text)
    assert "position" in str(info.value) and text in str(info.value)


def test_error_points_at_the_position() -> None:
    with pytest.raises(InvalidValueError) as info:
        parse_filter("metrics.acc > 1 AND params.lr = 2")
    lines = str(info.value).splitlines()
    assert lines[-1].index("^") - 4 == len("metrics.acc > 1 AND params.lr = ")


def test_order_by() -> None:
    assert parse_order_by(["metrics.acc DESC", "params.`model type`", "start_time asc", "max(metrics.f1) desc"]) == [
        OrderBy("metric", "acc", False),
        OrderBy("param", "model type", True),
        OrderBy("attribute", "start_time", True),
        OrderBy("metric", "f1", False, "max"),
    ]
    assert parse_order_by(None) == []
    with pytest.raises(InvalidValueError, match="invalid ordering key"):
        parse_order_by(["metrics.acc DOWN"])
    with pytest.raises(InvalidValueError, match="list of strings"):
        parse_order_by("metrics.acc")  # type: ignore[arg-type]
    assert parse_order_by(["name DESC"], experiments=True) == [OrderBy("attribute", "name", False)]
    with pytest.raises(InvalidValueError, match="unknown attribute"):
        parse_order_by(["name DESC"])


def test_experiment_filter_fields() -> None:
    assert parse_experiment_filter("name LIKE 'a%' AND tags.team = 'x'") == And(
        (Comparison("attribute", "name", "LIKE", "a%"), Comparison("tag", "team", "=", "x"))
    )
    with pytest.raises(InvalidValueError, match="unknown field type 'metrics'"):
        parse_experiment_filter("metrics.acc > 1")


def test_page_tokens_round_trip_and_refuse_garbage() -> None:
    assert decode_page_token(encode_page_token(1234)) == 1234
    assert decode_page_token(None) == 0
    for bad in ["not-a-token", encode_page_token(5)[:-3], "eyJvZmZzZXQiOiAtMX0=", "eyJ4IjogMX0="]:
        with pytest.raises(InvalidValueError, match="page token"):
            decode_page_token(bad)


def test_filters_are_limited_in_comparisons_and_nesting() -> None:
    from fitscribe.search import MAX_FILTER_DEPTH, MAX_FILTER_TERMS, parse_experiment_filter

    term = "params.a = '1'"
    parse_filter(" AND ".join([term] * MAX_FILTER_TERMS))
    with pytest.raises(InvalidValueError, match=f"at most {MAX_FILTER_TERMS} comparisons"):
        parse_filter(" OR ".join([term] * (MAX_FILTER_TERMS + 1)))
    parse_filter("(" * MAX_FILTER_DEPTH + term + ")" * MAX_FILTER_DEPTH)
    for deep in ("(" * (MAX_FILTER_DEPTH + 1) + term + ")" * (MAX_FILTER_DEPTH + 1), "(" * 5000 + term):
        with pytest.raises(InvalidValueError, match=f"nested more than {MAX_FILTER_DEPTH} deep"):
            parse_filter(deep)
    side_by_side = " AND ".join(["(" * MAX_FILTER_DEPTH + term + ")" * MAX_FILTER_DEPTH] * 3)
    assert len(parse_filter(side_by_side).items) == 3  # depth counts nesting, not every parenthesis
    with pytest.raises(InvalidValueError, match="nested"):
        parse_experiment_filter("(" * 330 + "name = 'x'" + ")" * 330)
