"""The search compiler (fitscribe/search.py + backends/sql/search.py) as a user sees it: each filter
of a table is run on four small runs, on every database, and must list exactly the expected runs.
Written to kill the mutants that survived the older search tests (issue 17, item 4)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from fitscribe.backends import get_tracking_store
from fitscribe.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunStatus, RunTag, ViewType
from fitscribe.errors import InvalidValueError
from fitscribe.search import decode_page_token, encode_page_token, parse_filter, parse_order_by

# What each run holds (names a..d):
#   a: alpha,  ann, start 1000, FINISHED end 2000; acc 0.5 then 0.9; loss +inf; mixed 3 then +inf; model=rf, lr=0.1;
#      team=Vision, `my key`=x; dataset train-set/d1 (training)
#   b: beta,   bob, start 1001, RUNNING;           acc 0.7;          loss -inf; model=lr; team=vision;
#      dataset eval-set/d2 (eval)
#   c: Alpha2, ann, start 1002, FAILED end 3000;   acc NaN;          loss 1 then 2; mixed 1 then NaN; model=RF
#   d: gamma,  cat, start 1003, FINISHED end 1500; no metric, no param; team=nlp
FILTERS: list[tuple[str, str]] = [
    # metrics: the latest value, NaN stored apart, +-inf as +-max double, a missing key never matches
    ("metrics.acc > 0.8", "a"),
    ("metrics.acc >= 0.9", "a"),
    ("metrics.acc > 0.9", ""),
    ("metrics.acc < 0.9", "b"),
    ("metrics.acc <= 0.7", "b"),
    ("metrics.acc < 0.7", ""),
    ("metrics.acc = 0.7", "b"),
    ("metrics.acc != 0.7", "ac"),
    ("metrics.acc IS NULL", "d"),
    ("metrics.acc IS NOT NULL", "abc"),
    ("min(metrics.acc) < 0.6", "a"),
    ("min(metrics.acc) = 0.5", "a"),
    ("max(metrics.acc) >= 0.9", "a"),
    ("MAX(metrics.acc) = 0.9", "a"),
    ("max(metrics.acc) != 0.9", "bc"),
    ("metrics.loss = 1.7976931348623157e308", ""),
    ("metrics.loss = -1.7976931348623157e308", ""),
    ("metrics.loss > 100", "a"),
    ("metrics.loss < -100", "b"),
    ("metrics.loss = 2", "c"),
    ("max(metrics.loss) = 2", "c"),
    ("min(metrics.loss) = 1", "c"),
    ("min(metrics.loss) > 1.5", "a"),
    ("min(metrics.mixed) = 3", "a"),  # the latest is +inf: an aggregate ignores that
    ("max(metrics.mixed) = 1", "c"),  # the latest is NaN
    ("metrics.mixed = 3", ""),
    # number spellings
    ("metrics.acc > .8", "a"),
    ("metrics.acc > 8e-1", "a"),
    ("metrics.acc > +0.8", "a"),
    ("metrics.loss < -1e2", "b"),
    ("metrics.acc>0.8", "a"),
    ("metrics.acc == 0.7", "b"),
    ("metrics.acc <> 0.7", "ac"),
    # params and tags: case-sensitive =, LIKE; ILIKE; lists; missing keys
    ("params.model = 'rf'", "a"),
    ('params.model = "rf"', "a"),
    ("params.model != 'rf'", "bc"),
    ("params.model LIKE 'r%'", "a"),
    ("params.model like 'R%'", "c"),
    ("params.model ILIKE 'r%'", "ac"),
    ("params.model IN ('lr', 'RF')", "bc"),
    ("params.model in ('rf')", "a"),
    ("params.model NOT IN ('lr')", "ac"),
    ("params.model not in ('lr', 'rf')", "c"),
    ("params.model IS NULL", "d"),
    ("params.model is not null", "abc"),
    ("params.lr = '0.1'", "a"),
    ("param.model = 'lr'", "b"),
    ("parameters.model = 'lr'", "b"),
    ("parameter.model = 'lr'", "b"),
    ("params.`model` = 'lr'", "b"),
    ('params."model" = \'lr\'', "b"),
    ("tags.team = 'vision'", "b"),
    ("tags.team ILIKE 'VISION'", "ab"),
    ("tag.team LIKE '%i%'", "ab"),
    ("tags.`my key` = 'x'", "a"),
    ("tags.team IS NULL", "c"),
    ("tags.team IS NOT NULL", "abd"),
    ("tags.team != 'nlp'", "ab"),
    # attributes and their aliases
    ("attributes.run_name = 'beta'", "b"),
    ("run_name LIKE 'alpha%'", "a"),
    ("attribute.run_name ILIKE 'alpha%'", "ac"),
    ("`run name` = 'gamma'", "d"),
    ('"run_name" = \'gamma\'', "d"),
    ("attributes.`run name` = 'gamma'", "d"),
    ("run.run_name = 'gamma'", "d"),
    ("attr.status = 'RUNNING'", "b"),
    ("status != 'RUNNING'", "acd"),
    ("attributes.status IN ('FAILED', 'FINISHED')", "acd"),
    ("Status = 'FAILED'", "c"),
    ("user_id = 'ann'", "ac"),
    ("start_time > 1001", "cd"),
    ("start_time >= 1001", "bcd"),
    ("start_time < 1001", "a"),
    ("start_time <= 1001", "ab"),
    ("created = 1002", "c"),
    ("attributes.start_time != 1002", "abd"),
    ("end_time IS NULL", "b"),
    ("end_time IS NOT NULL", "acd"),
    ("end_time > 1800", "ac"),
    # datasets
    ("datasets.name = 'train-set'", "a"),
    ("dataset.name LIKE '%set'", "ab"),
    ("datasets.digest = 'd2'", "b"),
    ("datasets.digest IN ('d1', 'd2')", "ab"),
    ("datasets.context = 'training'", "a"),
    ("datasets.context != 'training'", "b"),
    # and binds tighter than or; parentheses group; keywords in any case
    ("metrics.acc > 0.6 AND params.model = 'lr'", "b"),
    ("params.model = 'rf' OR tags.team = 'nlp'", "ad"),
    ("params.model = 'rf' or params.model = 'lr' and metrics.acc > 0.8", "a"),
    ("(params.model = 'rf' OR params.model = 'lr') AND metrics.acc > 0.6", "ab"),
    ("params.model = 'RF' Or (tags.team = 'nlp' aNd user_id = 'cat')", "cd"),
    ("((tags.team = 'nlp'))", "d"),
    ("user_id = 'ann' AND metrics.acc > 0.1 AND params.model = 'rf'", "a"),
    ("user_id = 'bob' OR user_id = 'cat' OR status = 'FAILED'", "bcd"),
]


def _populate(store: Any) -> tuple[str, dict[str, str]]:
    exp = store.create_experiment("filters")
    ids: dict[str, str] = {}
    specs = [
        ("a", "alpha", "ann", 1000, RunStatus.FINISHED, 2000),
        ("b", "beta", "bob", 1001, None, None),
        ("c", "Alpha2", "ann", 1002, RunStatus.FAILED, 3000),
        ("d", "gamma", "cat", 1003, RunStatus.FINISHED, 1500),
    ]
    for letter, name, user, start, status, end in specs:
        tags = {"a": [RunTag("team", "Vision"), RunTag("my key", "x")], "b": [RunTag("team", "vision")],
                "c": [], "d": [RunTag("team", "nlp")]}[letter]
        run_id = store.create_run(exp, user, start, tags, name).info.run_id
        ids[letter] = run_id
        if status is not None:
            store.update_run_info(run_id, status=status, end_time=end)
    history = {"a": {"acc": [0.5, 0.9], "loss": [math.inf], "mixed": [3.0, math.inf]},
               "b": {"acc": [0.7], "loss": [-math.inf]},
               "c": {"acc": [math.nan], "loss": [1.0, 2.0], "mixed": [1.0, math.nan]}, "d": {}}
    params = {"a": {"model": "rf", "lr": "0.1"}, "b": {"model": "lr"}, "c": {"model": "RF"}, "d": {}}
    for letter, run_id in ids.items():
        metrics = [Metric(k, v, 5, step) for k, values in history[letter].items() for step, v in enumerate(values)]
        store.log_batch(run_id, metrics, [Param(k, v) for k, v in params[letter].items()])
    store.log_inputs(ids["a"], [DatasetInput(Dataset("train-set", "d1"), (InputTag("mlflow.data.context", "training"),))])
    store.log_inputs(ids["b"], [DatasetInput(Dataset("eval-set", "d2"), (InputTag("mlflow.data.context", "eval"),))])
    return exp, ids


def test_every_filter_lists_exactly_the_expected_runs(tracking_uri: str) -> None:
    store = get_tracking_store(tracking_uri)
    exp, ids = _populate(store)
    names = {run_id: letter for letter, run_id in ids.items()}
    wrong = []
    cases = FILTERS + [
        (f"run_id = '{ids['b']}'", "b"),
        (f"attributes.run_uuid IN ('{ids['a']}', '{ids['c']}')", "ac"),
        (f"run_id NOT IN ('{ids['a']}')", "bcd"),
        (f"artifact_uri LIKE '%{ids['d']}%'", "d"),
    ]
    for filter_string, expected in cases:
        found = "".join(sorted(names[r.info.run_id] for r in store.search_runs([exp], filter_string, max_results=50)))
        if found != expected:
            wrong.append((filter_string, expected, found))
        count = store.count_runs([exp], filter_string)
        if count != len(expected):
            wrong.append((filter_string, f"count {len(expected)}", f"count {count}"))
    assert wrong == []
    store.close()


ORDERS: list[tuple[list[str], str]] = [
    (["params.model DESC"], "abcd"),  # rf > lr > RF by code point; missing last
    (["params.model desc"], "abcd"),
    (["params.model"], "cbad"),  # ascending by default; missing last
    (["params.model asc"], "cbad"),
    (["attributes.run_name ASC"], "cabd"),
    (["run_name DESC"], "dbac"),
    (["`run name` desc"], "dbac"),
    (["metrics.acc DESC"], "abdc"),  # NaN (c) and missing (d) last, newest first
    (["metrics.acc"], "badc"),
    (["min(metrics.acc) ASC"], "abdc"),
    (["max(metrics.loss) DESC"], "acbd"),
    (["metrics.loss"], "bcad"),
    (["tags.team"], "adbc"),  # 'Vision' < 'nlp' < 'vision' by code point
    (["user_id", "start_time DESC"], "cabd"),
    (["user_id DESC", "metrics.acc"], "dbac"),
    (["params.model DESC", "start_time"], "abcd"),  # several keys: compiled to SQL, not sorted by one key
    (["params.model", "start_time"], "cbad"),
    (["tags.team", "start_time DESC"], "adbc"),
    (["tags.team DESC", "params.model"], "bdac"),
    (["run_name", "params.model"], "cabd"),
    (["user_id", "tags.team DESC"], "acbd"),  # ann: a, then c (no team: last); then bob, cat
    (["start_time"], "abcd"),
    (["created DESC"], "dcba"),
    (["end_time DESC"], "cadb"),
    ([], "dcba"),  # newest first
]


def test_orderings(tracking_uri: str) -> None:
    store = get_tracking_store(tracking_uri)
    exp, ids = _populate(store)
    names = {run_id: letter for letter, run_id in ids.items()}
    wrong = []
    for order_by, expected in ORDERS:
        found = "".join(names[r.info.run_id] for r in store.search_runs([exp], None, max_results=50, order_by=order_by))
        if found != expected:
            wrong.append((order_by, expected, found))
    assert wrong == []
    # the deleted view, and paging by token
    store.update_run_info(ids["b"], lifecycle_stage="deleted")
    assert [r.info.run_id for r in store.search_runs([exp], None, ViewType.DELETED_ONLY)] == [ids["b"]]
    first = store.search_runs([exp], None, max_results=2, order_by=["start_time"])
    assert [names[r.info.run_id] for r in first] == ["a", "c"] and decode_page_token(first.token) == 2
    rest = store.search_runs([exp], None, max_results=2, order_by=["start_time"], page_token=first.token)
    assert [names[r.info.run_id] for r in rest] == ["d"] and rest.token is None
    store.close()


def test_experiment_filters_and_orderings(tmp_path: Any) -> None:
    store = get_tracking_store(str(tmp_path / "store"))
    a = store.create_experiment("mnist-a", tags={"team": "vision"})
    b = store.create_experiment("mnist-b", tags={"team": "nlp"})
    c = store.create_experiment("cifar")
    def listed(filter_string: str | None, order_by: list[str] | None = None) -> list[str]:
        return [e.name for e in store.search_experiments(filter_string=filter_string, order_by=order_by)]
    assert sorted(listed("name LIKE 'mnist%'")) == ["mnist-a", "mnist-b"]
    assert listed("tags.team = 'nlp'") == ["mnist-b"]
    assert listed("attributes.name = 'cifar'") == ["cifar"]
    assert listed(f"experiment_id = '{c}'") == ["cifar"]
    assert sorted(listed("creation_time > 0 AND tags.team IS NOT NULL")) == ["mnist-a", "mnist-b"]
    assert listed("name LIKE 'mnist%'", ["name DESC"]) == ["mnist-b", "mnist-a"]
    assert listed("name != 'Default'", ["name"]) == ["cifar", "mnist-a", "mnist-b"]
    assert {a, b}
    for bad in ("metrics.acc > 1", "params.x = 'y'", "run_name = 'x'", "   "):
        with pytest.raises(InvalidValueError):
            store.search_experiments(filter_string=bad)
    with pytest.raises(InvalidValueError):
        store.search_experiments(order_by=["metrics.acc"])
    store.close()


@pytest.mark.parametrize("text", [
    "metrics.acc > 'high'", "params.model > 'a'", "params.model = 1", "metrics.acc LIKE '1%'",
    "metrics.acc IN ('1')", "params.model IN 'a'", "params.model IN ('a' 'b')", "params.model IN ('a', 1)",
    "params.model IN ()", "min(params.model) = 'a'", "min(metrics.acc = 1", "metrics.acc IS 1",
    "metrics.acc IS NOT 1", "metrics. = 1", "metrics.`a` ", "foo.bar = 'x'", "nosuch = 'x'",
    "metrics.acc = 1 extra", "metrics.acc = 1 AND", "(metrics.acc = 1", "metrics.acc > 1e999",
    "datasets.size = 'x'", "start_time = 'x'", "status < 'x'", "AND = 1", "metrics.acc NOT 1",
    "params.model = 'a", "params.model-x = 'a'", "metrics.acc = 1 OR", "params.model = ",
    "avg(metrics.acc) < 1", "'run_name' = 'x'", "metrics.'acc' = 1", "attributes.nosuch = 'x'",
    "params.model 'LIKE' 'a%'",
])
def test_malformed_filters_are_refused(text: str, tmp_path: Any) -> None:
    with pytest.raises(InvalidValueError, match="Invalid search filter"):
        parse_filter(text)


def test_filter_and_order_by_type_errors() -> None:
    with pytest.raises(InvalidValueError, match="^A search filter must be a string, not int.$"):
        parse_filter(5)  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match="^The search filter is only whitespace; pass '' or None to match every run.$"):
        parse_filter("  ")
    with pytest.raises(InvalidValueError, match="^Invalid page token '" + "x" * 40 + "': pass the `token`"):
        decode_page_token("x" * 50)
    with pytest.raises(InvalidValueError, match="list of strings"):
        parse_order_by("metrics.acc")  # type: ignore[arg-type]
    for bad in (["metrics.acc sideways"], [""], ["  "], [5], ["metrics.acc DESC x"]):
        with pytest.raises(InvalidValueError, match="ordering key"):
            parse_order_by(bad)  # type: ignore[arg-type]
    assert parse_order_by(None) == []
    (order,) = parse_order_by(["name DESC"], experiments=True)
    assert (order.entity, order.key, order.ascending) == ("attribute", "name", False)
    (order,) = parse_order_by(["attributes.name"], experiments=True)
    assert (order.entity, order.key, order.ascending) == ("attribute", "name", True)
    assert parse_filter("") is None and parse_filter(None) is None
    from fitscribe.search import parse_experiment_filter

    assert parse_experiment_filter("") is None and parse_experiment_filter(None) is None
    with pytest.raises(InvalidValueError):
        parse_order_by(["tags.team"], experiments=True)
    with pytest.raises(InvalidValueError):
        parse_order_by(["run_name"], experiments=True)


@pytest.mark.parametrize("offset", [0, 1, 37, 10**9])
def test_page_tokens_round_trip(offset: int) -> None:
    assert decode_page_token(encode_page_token(offset)) == offset


@pytest.mark.parametrize("payload", [b'{"offset": -1}', b'{"offset": true}', b'{"offset": "3"}', b'{"offset": 1.5}',
                                     b'{"start": 3}', b"[3]", b"not json", b"\xff\xfe"])
def test_foreign_page_tokens_are_refused(payload: bytes) -> None:
    import base64

    with pytest.raises(InvalidValueError, match="Invalid page token"):
        decode_page_token(base64.b64encode(payload).decode())


def test_an_altered_page_token_is_refused() -> None:
    token = encode_page_token(2)
    for altered in (token[:4] + "!" + token[4:], token[:-1], " " + token, token + "\n"):
        with pytest.raises(InvalidValueError, match="Invalid page token"):
            decode_page_token(altered)


# -- the messages: a filter's error says what is wrong and points at it (golden texts) -------------
FILTER_ERRORS = [
    ("metrics.acc > 'high'",
     "Invalid search filter at position 14: metrics.acc > expects a number, got 'high'; the metric 'acc' is compared with numbers, e.g. metrics.acc > 0.5.\n    metrics.acc > 'high'\n                  ^"),
    ("params.model > 'a'",
     "Invalid search filter at position 0: 'params.model >': > cannot be used on the param 'model'; use one of =, !=, LIKE, ILIKE, IN, NOT IN, IS NULL, IS NOT NULL.\n    params.model > 'a'\n    ^"),
    ('params.model = 1',
     "Invalid search filter at position 15: params.model = expects a quoted string, got 1; the param 'model' is a string, so write params.model = '1'.\n    params.model = 1\n                   ^"),
    ("metrics.acc LIKE '1%'",
     "Invalid search filter at position 0: 'metrics.acc LIKE': LIKE cannot be used on the metric 'acc'; use one of =, !=, <, <=, >, >=, IS NULL, IS NOT NULL.\n    metrics.acc LIKE '1%'\n    ^"),
    ("params.model IN 'a'",
     "Invalid search filter at position 16: params.model IN expects a parenthesised list of quoted strings, e.g. ('a', 'b').\n    params.model IN 'a'\n                    ^"),
    ("params.model IN ('a' 'b')",
     "Invalid search filter at position 21: expected ',' or ')' in the list of params.model IN.\n    params.model IN ('a' 'b')\n                         ^"),
    ("params.model IN ('a', 1)",
     "Invalid search filter at position 22: params.model IN expects quoted strings in its list, found '1'.\n    params.model IN ('a', 1)\n                          ^"),
    ("min(params.model) = 'a'",
     "Invalid search filter at position 4: min() applies to metrics only, e.g. min(metrics.loss).\n    min(params.model) = 'a'\n        ^"),
    ('MAX(metrics.acc = 1',
     "Invalid search filter at position 16: expected ')' after MAX(metrics.acc.\n    MAX(metrics.acc = 1\n                    ^"),
    ('metrics.acc IS 1',
     'Invalid search filter at position 15: expected NULL after IS.\n    metrics.acc IS 1\n                   ^'),
    ('metrics.acc IS NOT 1',
     'Invalid search filter at position 19: expected NULL after IS NOT.\n    metrics.acc IS NOT 1\n                       ^'),
    ('metrics. = 1',
     "Invalid search filter at position 9: expected a key after 'metrics.'; quote keys with special characters in backticks: metrics.`my-key`.\n    metrics. = 1\n             ^"),
    ('metrics.acc',
     "Invalid search filter at position 11: expected a comparison (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, IS NULL) after 'metrics.acc', found 'the end of the filter'.\n    metrics.acc\n               ^"),
    ("foo.bar = 'x'",
     "Invalid search filter at position 0: unknown field type 'foo' in 'foo.bar'; start a field with metrics., params., tags., attributes., datasets..\n    foo.bar = 'x'\n    ^"),
    ("nosuch = 'x'",
     "Invalid search filter at position 0: unknown attribute 'nosuch'; attributes are artifact_uri, end_time, run_id, run_name, start_time, status, user_id; other fields are written metrics.<key>, params.<key>, tags.<key> or datasets.<field>.\n    nosuch = 'x'\n    ^"),
    ('metrics.acc = 1 extra',
     "Invalid search filter at position 16: expected AND, OR or the end of the filter, found 'extra'.\n    metrics.acc = 1 extra\n                    ^"),
    ('metrics.acc = 1 AND',
     "Invalid search filter at position 19: expected a field such as metrics.acc, params.lr or tags.team, found 'the end of the filter'.\n    metrics.acc = 1 AND\n                       ^"),
    ('(metrics.acc = 1',
     "Invalid search filter at position 16: expected ')' to close the '(' opened at position 0.\n    (metrics.acc = 1\n                    ^"),
    ('metrics.acc > 1e999',
     'Invalid search filter at position 14: metrics.acc > needs a finite number, got 1e999.\n    metrics.acc > 1e999\n                  ^'),
    ("datasets.size = 'x'",
     "Invalid search filter at position 0: datasets can be searched on name, digest, context, not 'size'.\n    datasets.size = 'x'\n    ^"),
    ("start_time = 'x'",
     "Invalid search filter at position 13: start_time = expects a number, got 'x'; the attribute start_time (number) is compared with numbers, e.g. start_time = 0.5.\n    start_time = 'x'\n                 ^"),
    ('AND = 1',
     "Invalid search filter at position 0: expected a field such as metrics.acc, params.lr or tags.team, found 'AND'.\n    AND = 1\n    ^"),
    ('metrics.acc NOT 1',
     "Invalid search filter at position 12: expected a comparison (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, IS NULL) after 'metrics.acc', found 'NOT'.\n    metrics.acc NOT 1\n                ^"),
    ("params.model = 'a",
     'Invalid search filter at position 15: cannot read "\'a" (close every quote you open).\n    params.model = \'a\n                   ^'),
    ("params.model-x = 'a'",
     'Invalid search filter at position 12: cannot read "-x = \'a\'" (quote keys with special characters in backticks: params.`model-x`).\n    params.model-x = \'a\'\n                ^'),
    ('params.model = ',
     "Invalid search filter at position 15: params.model = expects a quoted string, got the end of the filter; the param 'model' is a string, so write params.model = 'value'.\n    params.model = \n                   ^"),
    ('metrics.acc = ',
     "Invalid search filter at position 14: metrics.acc = expects a number, got nothing; the metric 'acc' is compared with numbers, e.g. metrics.acc = 0.5.\n    metrics.acc = \n                  ^"),
    ("tags.a = 'x' $",
     "Invalid search filter at position 13: cannot read '$'.\n    tags.a = 'x' $\n                 ^"),
    ('metrics.acc < = 1',
     "Invalid search filter at position 14: metrics.acc < expects a number, got =; the metric 'acc' is compared with numbers, e.g. metrics.acc < 0.5.\n    metrics.acc < = 1\n                  ^"),
    ("`nosuch` = 'x'",
     "Invalid search filter at position 0: unknown attribute 'nosuch'; attributes are artifact_uri, end_time, run_id, run_name, start_time, status, user_id; other fields are written metrics.<key>, params.<key>, tags.<key> or datasets.<field>.\n    `nosuch` = 'x'\n    ^"),
    ('"Status" < \'x\'',
     'Invalid search filter at position 0: \'"Status" <\': < cannot be used on the attribute status (string); use one of =, !=, LIKE, ILIKE, IN, NOT IN, IS NULL, IS NOT NULL.\n    "Status" < \'x\'\n    ^'),
    ("params.model IN ('a',)",
     "Invalid search filter at position 21: params.model IN expects quoted strings in its list, found ')'.\n    params.model IN ('a',)\n                         ^"),
    ('metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND bad ~ 1 AND metrics.b = 1 AND metrics.b = 1 AND metrics.b = 1 AND metrics.b = 1 AND metrics.b = 1 AND metrics.b = 1 AND metrics.b = 1 AND metrics.b = 1',
     "Invalid search filter at position 220: cannot read '~ 1 AND metrics.b = '.\n    ...AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND bad ~ 1 AND metrics.b = 1 AND metrics.b = 1 AND metrics.b = 1 AND metrics.b = 1 AND ...\n                                                                                       ^"),
    ('metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND x ~',
     "Invalid search filter at position 218: cannot read '~'.\n    ...1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND x ~\n                                                                                       ^"),
    ('y ~ 1 AND metrics.b = 1 AND metrics.b = 1 AND metrics.b = 1 AND metrics.b = 1 AND metrics.b = 1 AND metrics.b = 1 AND metrics.b = 1 AND metrics.b = 1 AND metrics.b = 1 AND metrics.b = 1 AND metrics.b = 1 AND metrics.b = 1',
     "Invalid search filter at position 2: cannot read '~ 1 AND metrics.b = '.\n    y ~ 1 AND metrics.b = 1 AND metrics.b = 1 AND metrics.b = 1 AND metrics.b = 1 AND ...\n      ^"),
    ('metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND x ~ AND metrics.b = 1 AND metrics.b = 1 AND metrics.b = 1 AND metrics.b = 1',
     "Invalid search filter at position 92: cannot read '~ AND metrics.b = 1 '.\n    ...1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND x ~ AND metrics.b = 1 AND metrics.b = 1 AND metrics.b = 1 AND metrics.b = 1\n                                                                                       ^"),
]
FILTER_ERRORS += [  # the context shown around the position: short filters whole, long ones elided
    ("metrics.a = 1 AND " * 5 + "x ~",
     "Invalid search filter at position 92: cannot read '~'.\n    metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND x ~\n                                                                                                ^"),
    ("y ~ 1" + " AND metrics.b = 1" * 7,
     "Invalid search filter at position 2: cannot read '~ 1 AND metrics.b = '.\n    y ~ 1 AND metrics.b = 1 AND metrics.b = 1 AND metrics.b = 1 AND metrics.b = 1 AND metrics.b = 1 AND metrics.b = 1 AND metrics.b = 1\n      ^"),
    ("run_name = 1",
     "Invalid search filter at position 11: run_name = expects a quoted string, got 1; the attribute run_name (string) is a string, so write run_name = '1'.\n    run_name = 1\n               ^"),
    ("params.model IN ('a', ",
     "Invalid search filter at position 22: params.model IN expects quoted strings in its list, found the end of the filter.\n    params.model IN ('a', \n                          ^"),
    ("params.a.b-x = 'y'",
     'Invalid search filter at position 10: cannot read "-x = \'y\'" (quote keys with special characters in backticks: params.`a.b-x`).\n    params.a.b-x = \'y\'\n              ^'),
    (" OR ".join(["params.a = '1'"] * 201),
     "Invalid search filter at position 3600: a filter may hold at most 200 comparisons; combine values with IN (...) or split the search.\n    ... '1' OR params.a = '1' OR params.a = '1' OR params.a = '1' OR params.a = '1' OR params.a = '1'\n                                                                                       ^"),
    ("metrics.a = 1 AND " * 7 + "z" * 32 + " ~",
     "Invalid search filter at position 159: cannot read '~'.\n    metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND metrics.a = 1 AND zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz ~\n                                                                                                                                                                   ^"),
    ("w ~ " + "y" * 156,
     "Invalid search filter at position 2: cannot read '~ yyyyyyyyyyyyyyyyyy'.\n    w ~ yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\n      ^"),
]
EXPERIMENT_FILTER_ERRORS = [
    ('metrics.acc > 1',
     "Invalid search filter at position 0: unknown field type 'metrics' in 'metrics.acc'; start a field with tags., attributes..\n    metrics.acc > 1\n    ^"),
    ("run_name = 'x'",
     "Invalid search filter at position 0: unknown attribute 'run_name'; attributes are creation_time, experiment_id, last_update_time, name; other fields are written tags.<key>.\n    run_name = 'x'\n    ^"),
    ('   ',
     "The experiment filter is only whitespace; pass '' or None to match all."),
]
ORDER_BY_ERRORS = [
    (['metrics.acc sideways'],
     "Invalid search filter at position 12: invalid ordering key: expected ASC, DESC or the end after the field, found 'sideways'.\n    metrics.acc sideways\n                ^"),
    ([''],
     "Invalid ordering key '': write '<field> [ASC|DESC]', e.g. 'metrics.acc DESC'."),
    ([5],
     "Invalid ordering key 5: write '<field> [ASC|DESC]', e.g. 'metrics.acc DESC'."),
    ('metrics.acc',
     "order_by must be a list of strings, e.g. ['metrics.acc'], not a single string."),
]


@pytest.mark.parametrize("text, message", FILTER_ERRORS)
def test_filter_error_messages(text: str, message: str) -> None:
    with pytest.raises(InvalidValueError) as raised:
        parse_filter(text)
    assert str(raised.value) == message


@pytest.mark.parametrize("text, message", EXPERIMENT_FILTER_ERRORS)
def test_experiment_filter_error_messages(text: str, message: str) -> None:
    from fitscribe.search import parse_experiment_filter

    with pytest.raises(InvalidValueError) as raised:
        parse_experiment_filter(text)
    assert str(raised.value) == message


@pytest.mark.parametrize("order_by, message", ORDER_BY_ERRORS)
def test_order_by_error_messages(order_by: Any, message: str) -> None:
    with pytest.raises(InvalidValueError) as raised:
        parse_order_by(order_by)
    assert str(raised.value) == message


def test_nesting_depth_is_counted_again_after_closed_parentheses() -> None:
    from fitscribe.search import MAX_FILTER_DEPTH

    term = "params.a = '1'"
    closed = " AND ".join(["((" + term + "))"] * 3)
    parse_filter(closed + " AND " + "(" * MAX_FILTER_DEPTH + term + ")" * MAX_FILTER_DEPTH)
    with pytest.raises(InvalidValueError, match="nested more than"):
        parse_filter(closed + " AND " + "(" * (MAX_FILTER_DEPTH + 1) + term + ")" * (MAX_FILTER_DEPTH + 1))


CLIENT_MESSAGES = [  # (experiments?, filter, what the message must advise, what it must not)
    (True, "run_name = 'x'", "other fields are written tags.<key>.", "metrics."),
    (True, "tags.team = 'nlp' AND status = 'x'", "attributes are creation_time, experiment_id, last_update_time, name;",
     "datasets."),
    (False, "nosuch = 'x'", "other fields are written metrics.<key>, params.<key>, tags.<key> or datasets.<field>.",
     "attributes."),
    (False, "params.model = ", "got the end of the filter; the param 'model' is a string, so write params.model = 'value'.",
     "'nothing'"),
    (False, "tags.team = )", "got ')'; the tag 'team' is a string, so write tags.team = 'value'.", "= ')'"),
    (False, "params.model = AND metrics.acc > 1", "got 'AND'; the param 'model' is a string, so write params.model = 'value'.",
     "= 'AND'"),
    (False, "params.model = rf", "got rf; the param 'model' is a string, so write params.model = 'rf'.", "'value'"),
    (False, "params.model IN ('a', ", "params.model IN expects quoted strings in its list, found the end of the filter.",
     "nothing"),
]


@pytest.mark.parametrize("experiments, text, advice, wrong", CLIENT_MESSAGES)
def test_filter_messages_advise_what_the_user_can_write(tmp_path: Any, experiments: bool, text: str, advice: str,
                                                        wrong: str) -> None:
    """Through the Client: an experiment filter is not told about run-only fields, and a missing
    string value is not advised as the word 'nothing'."""
    from fitscribe import Client

    client = Client(str(tmp_path / "store"))
    try:
        with pytest.raises(InvalidValueError) as raised:
            if experiments:
                client.search_experiments(filter_string=text)
            else:
                client.search_runs([client.create_experiment("messages")], filter_string=text)
    finally:
        client.close()
    message = str(raised.value)
    assert advice in message and wrong not in message.split("\n")[0], message
