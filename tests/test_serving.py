"""Model serving as a user meets it: log a model, serve it over real HTTP, send MLflow's requests.

The scoring server is checked against ``mlflow models serve`` (the real MLflow in .venv-mlflow)
with the same model and the same requests, for every flavor, and with bad input (4xx, never 5xx).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Iterator

import pytest

from _require import require_module  # noqa: E402

np = require_module("numpy")
pd = require_module("pandas")
require_module("sklearn")
require_module("starlette")
httpx = require_module("httpx")

import fitscribe  # noqa: E402

from _serving_models import Frame, RowSum, Scale  # noqa: E402

COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


def _iris() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("serving") / "fitruns")


@pytest.fixture(scope="module")
def sklearn_model(store: str) -> dict[str, Any]:
    """A LogisticRegression logged to a run, registered as iris v1 (Production, alias champion)."""
    from sklearn.linear_model import LogisticRegression

    import fitscribe.flavors.sklearn as fsk

    X, y = _iris()
    model = LogisticRegression(max_iter=500).fit(X, y)
    client = fitscribe.Client(store)
    exp = client.create_experiment("serving")
    run_id = client.create_run(exp).info.run_id
    fitscribe.set_tracking_uri(store)
    fsk.log_model(model, name="model", input_example=X.head(3), run_id=run_id)
    client.set_terminated(run_id)
    client.create_registered_model("iris")
    client.create_model_version("iris", f"runs:/{run_id}/model", run_id=run_id)
    client.transition_model_version_stage("iris", 1, "Production")
    client.set_registered_model_alias("iris", "champion", 1)
    folder = client.download_artifacts(run_id, "model", str(os.path.join(store, "..", "iris-folder")))
    return {"run_id": run_id, "model": model, "folder": folder, "store": store}


class ScoringServer:
    """A scoring app served in a thread of this process with ``fitscribe models serve``'s uvicorn
    settings (uvloop and httptools when installed), on a loopback port the OS picks."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.url = ""

    def __enter__(self) -> "ScoringServer":
        import uvicorn

        from fitscribe.serving.run import _uvicorn_config

        self._server = uvicorn.Server(_uvicorn_config(self.app, "127.0.0.1", 0, "warning"))
        self._thread = threading.Thread(target=self._server.run, name="scoring-test-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            assert self._thread.is_alive() and time.monotonic() < deadline, "the scoring server did not start"
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{self._server.servers[0].sockets[0].getsockname()[1]}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)


def _serve(uri: str, **options: Any) -> ScoringServer:
    """The scoring app of the model at ``uri`` on a loopback port (loading warnings are the flavor tests')."""
    import warnings

    from fitscribe.flavors.pyfunc import load_model
    from fitscribe.serving.app import create_scoring_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ScoringServer(create_scoring_app(load_model(uri), **options))


def _post(url: str, body: Any, content_type: str | None = "application/json") -> httpx.Response:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    headers = {"Content-Type": content_type} if content_type else {}
    return httpx.post(url + "/invocations", content=data, headers=headers, timeout=30)


@pytest.mark.parametrize("uri", ["runs", "version", "alias", "stage", "folder"])
def test_every_model_uri_serves_the_logged_model(sklearn_model: dict[str, Any], uri: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FITSCRIBE_TRACKING_URI", sklearn_model["store"])
    model_uri = {
        "runs": f"runs:/{sklearn_model['run_id']}/model", "version": "models:/iris/1",
        "alias": "models:/iris@champion", "stage": "models:/iris/Production", "folder": sklearn_model["folder"],
    }[uri]
    expected = sklearn_model["model"].predict(pd.DataFrame(ROWS, columns=COLUMNS)).tolist()
    with _serve(model_uri) as server:
        answer = _post(server.url, {"dataframe_split": {"columns": COLUMNS, "data": ROWS}})
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"predictions": expected}
        assert answer.headers["content-type"].startswith("application/json")


@pytest.fixture(scope="module")
def iris_server(sklearn_model: dict[str, Any]) -> Iterator[str]:
    with _serve(sklearn_model["folder"]) as server:
        yield server.url


def test_each_request_format_gives_the_same_predictions(iris_server: str, sklearn_model: dict[str, Any]) -> None:
    expected = sklearn_model["model"].predict(pd.DataFrame(ROWS, columns=COLUMNS)).tolist()
    records = [dict(zip(COLUMNS, row)) for row in ROWS]
    bodies = [
        {"dataframe_split": {"columns": COLUMNS, "data": ROWS}},
        {"dataframe_split": {"index": [7, 8, 9], "columns": COLUMNS, "data": ROWS}},
        {"dataframe_records": records},
        {"instances": records},
        {"inputs": {c: [row[i] for row in ROWS] for i, c in enumerate(COLUMNS)}},
        {"inputs": records},
    ]
    for body in bodies:
        answer = _post(iris_server, body)
        assert (answer.status_code, answer.json()) == (200, {"predictions": expected}), body
    csv = ",".join(COLUMNS) + "\n" + "\n".join(",".join(map(str, r)) for r in ROWS) + "\n"
    answer = _post(iris_server, csv, "text/csv")
    assert (answer.status_code, answer.json()) == (200, {"predictions": expected})
    answer = _post(iris_server, {"dataframe_split": {"columns": COLUMNS, "data": [[5, 3, 1, 0]]}},
                   "application/json; charset=utf-8")
    assert answer.status_code == 200, "integers are accepted for double columns, as by MLflow"


def test_health_ping_version_and_methods(iris_server: str) -> None:
    for path in ("/ping", "/health"):
        answer = httpx.get(iris_server + path)
        assert (answer.status_code, answer.text) == (200, "\n")
    assert httpx.get(iris_server + "/version").text == fitscribe.__version__
    assert httpx.get(iris_server + "/invocations").status_code == 405
    assert httpx.get(iris_server + "/nothing").status_code == 404
    moved = httpx.get(iris_server + "/ping/?a=1")  # a trailing slash is redirected, as by MLflow's FastAPI
    assert (moved.status_code, moved.headers["location"]) == (307, iris_server + "/ping?a=1")


BAD_REQUESTS = [
    ("no format key (MLflow 1.x body)", {"columns": COLUMNS, "data": ROWS}, "application/json", 400, "exactly one"),
    ("two format keys", {"dataframe_split": {"columns": COLUMNS, "data": ROWS}, "instances": []}, "application/json", 400, "exactly one"),
    ("a list", [1, 2, 3], "application/json", 400, "got a list"),
    ("broken JSON", b"{nope", "application/json", 400, "not valid UTF-8 JSON"),
    ("not UTF-8", b"\xff\xfe{}", "application/json", 400, "not valid UTF-8 JSON"),
    ("deep nesting", ("[" * 5000) + ("]" * 5000), "application/json", 400, ""),
    ("missing column", {"dataframe_records": [{COLUMNS[0]: 1.0}]}, "application/json", 400, "missing the column"),
    ("text in a number column", {"dataframe_records": [dict(zip(COLUMNS, ["a", 1, 1, 1]))]}, "application/json", 400, COLUMNS[0]),
    ("NaN the model refuses", {"dataframe_split": {"columns": COLUMNS, "data": [[float("nan"), 1, 1, 1]]}}, "application/json", 400, "could not predict"),
    ("ragged rows", {"dataframe_split": {"columns": COLUMNS, "data": [[1, 2], [1, 2, 3, 4]]}}, "application/json", 400, "row 0"),
    ("split without data", {"dataframe_split": {"columns": COLUMNS}}, "application/json", 400, "'data'"),
    ("records not objects", {"dataframe_records": [[1, 2, 3, 4]]}, "application/json", 400, "list of objects"),
    ("params not an object", {"dataframe_split": {"columns": COLUMNS, "data": ROWS}, "params": [1]}, "application/json", 400, "params"),
    ("no content type", {"dataframe_split": {"columns": COLUMNS, "data": ROWS}}, None, 415, "Content-Type"),
    ("text/plain", "x", "text/plain", 415, "not supported"),
    ("another charset", {"inputs": []}, "application/json; charset=latin-1", 415, "UTF-8"),
    ("MLflow 1.x format parameter", {"inputs": []}, "application/json; format=pandas-split", 415, "format=pandas-split"),
    ("CSV that is not a table", b"\xff\xfe", "text/csv", 400, "CSV"),
]


@pytest.mark.parametrize("what,body,content_type,status,words", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_input_is_a_clear_4xx(iris_server: str, what: str, body: Any, content_type: str | None, status: int,
                                  words: str) -> None:
    answer = _post(iris_server, body, content_type)
    assert answer.status_code == status, answer.text
    payload = answer.json()
    assert payload["error_code"] in ("BAD_REQUEST", "INVALID_PARAMETER_VALUE")
    assert words in payload["message"]
    assert "/tmp" not in payload["message"] and "fitruns" not in payload["message"]


def test_request_size_limit_is_a_413(sklearn_model: dict[str, Any]) -> None:
    with _serve(sklearn_model["folder"], max_request_mb=0.001) as server:
        rows = ROWS * 200
        answer = _post(server.url, {"dataframe_split": {"columns": COLUMNS, "data": rows}})
        assert answer.status_code == 413
        assert "limit" in answer.json()["message"]
        assert _post(server.url, {"dataframe_split": {"columns": COLUMNS, "data": ROWS[:1]}}).status_code == 200


def test_params_are_checked_against_the_signature(tmp_path: Any) -> None:
    from fitscribe.flavors import pyfunc
    from fitscribe.flavors.signature import ModelSignature, infer_signature

    folder = str(tmp_path / "scaler")
    base = infer_signature(pd.DataFrame({"x": [1.0, 2.0]}), np.array([1.0, 2.0]))
    params = json.dumps([{"name": "factor", "type": "double", "default": 2.0, "shape": None}])
    signature = ModelSignature(base.inputs, base.outputs, params)
    pyfunc.save_model(folder, python_model=Scale(), signature=signature)
    with _serve(folder) as server:
        body = {"dataframe_split": {"columns": ["x"], "data": [[1.0], [3.0]]}}
        assert _post(server.url, body).json() == {"predictions": [2.0, 6.0]}, "the default applies"
        assert _post(server.url, {**body, "params": {"factor": 10}}).json() == {"predictions": [10.0, 30.0]}
        assert _post(server.url, {**body, "params": {"unknown": 1}}).json() == {"predictions": [2.0, 6.0]}
        wrong = _post(server.url, {**body, "params": {"factor": "big"}})
        assert wrong.status_code == 400 and wrong.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "factor" in wrong.json()["message"]


def test_a_dataframe_answer_is_a_list_of_records(tmp_path: Any) -> None:
    from fitscribe.flavors import pyfunc

    folder = str(tmp_path / "frame")
    pyfunc.save_model(folder, python_model=Frame())
    with _serve(folder) as server:
        answer = _post(server.url, {"dataframe_split": {"columns": ["x"], "data": [[1.0], [2.0]]}})
        assert answer.json() == {"predictions": [{"s": 2.0, "n": "x"}, {"s": 4.0, "n": "x"}]}


# -- the real commands ------------------------------------------------------------------------------

def _cli(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    kwargs.setdefault("timeout", 600)  # a virtualenv build on a busy machine
    return subprocess.run([sys.executable, "-m", "fitscribe", *args], capture_output=True, text=True, **kwargs)


class _Process:
    """A server command in a subprocess; the port is read from its announcement.

    A thread reads its output line by line (a select() on the pipe would miss lines already in
    the file object's buffer, e.g. an announcement that arrived together with a warning)."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        import queue

        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.output: list[str] = []
        self._lines: "queue.Queue[str | None]" = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def wait_for_url(self, pattern: str, timeout: float = 90) -> str:
        import queue

        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            match = re.search(pattern, line)
            if match:
                return match.group(1)
        raise AssertionError("the server did not announce itself:\n" + "".join(self.output))

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def close(self) -> str:
        """Stop the process and return what it printed."""
        self.stop()
        self._reader.join(10)
        if self.proc.stdout is not None and not self.proc.stdout.closed:
            self.proc.stdout.close()
        return "".join(self.output)


def _wait_ready(url: str, timeout: float = 60, process: "_Process | None" = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (process is None or process.proc.poll() is None):
        try:
            if httpx.get(url + "/ping", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} never answered /ping")


def test_models_serve_command_with_two_workers(sklearn_model: dict[str, Any]) -> None:
    server = _Process([sys.executable, "-m", "fitscribe", "--tracking-uri", sklearn_model["store"], "models", "serve",
                       "-m", "models:/iris@champion", "--port", "0", "--workers", "2"])
    try:
        url = server.wait_for_url(r"at (http://\S+)/invocations")
        _wait_ready(url)
        expected = sklearn_model["model"].predict(pd.DataFrame(ROWS, columns=COLUMNS)).tolist()
        for _ in range(6):
            answer = _post(url, {"dataframe_split": {"columns": COLUMNS, "data": ROWS}})
            assert answer.json() == {"predictions": expected}
    finally:
        server.close()


def test_models_predict_and_generate_dockerfile(sklearn_model: dict[str, Any], tmp_path: Any) -> None:
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"dataframe_split": {"columns": COLUMNS, "data": ROWS}}))
    expected = sklearn_model["model"].predict(pd.DataFrame(ROWS, columns=COLUMNS)).tolist()
    done = _cli("--tracking-uri", sklearn_model["store"], "models", "predict", "-m", "models:/iris/1", "-i", str(request))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"predictions": expected}
    table = tmp_path / "rows.csv"
    pd.DataFrame(ROWS, columns=COLUMNS).to_csv(table, index=False)
    out = tmp_path / "answer.json"
    done = _cli("--tracking-uri", sklearn_model["store"], "models", "predict", "-m", "models:/iris/1", "-i", str(table),
                "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text()) == {"predictions": expected}
    bad = tmp_path / "bad.json"
    bad.write_text('{"columns": []}')
    done = _cli("--tracking-uri", sklearn_model["store"], "models", "predict", "-m", "models:/iris/1", "-i", str(bad))
    assert done.returncode == 1 and "exactly one of the keys" in done.stderr

    target = tmp_path / "docker"
    done = _cli("--tracking-uri", sklearn_model["store"], "models", "generate-dockerfile", "-m", "models:/iris/1",
                "-d", str(target))
    assert done.returncode == 0, done.stderr
    dockerfile = (target / "Dockerfile").read_text()
    assert dockerfile.startswith("# Serves the model") and "FROM python:3." in dockerfile
    assert '"models", "serve", "-m", "/opt/ml/model"' in dockerfile and "EXPOSE 8080" in dockerfile
    assert (target / "model" / "MLmodel").is_file() and (target / "model" / "requirements.txt").is_file()
    copied = target / "fitscribe-src"
    assert (copied / "pyproject.toml").is_file() and (copied / "fitscribe" / "serving" / "app.py").is_file()


# -- every flavor, side by side with MLflow's scoring server ---------------------------------------

def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def flavor_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The same iris data as five model folders, one per flavor, saved by fitscribe."""
    torch = require_module("torch")
    xgb = require_module("xgboost")
    require_module("skl2onnx")
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    from fitscribe.flavors import onnx as f_onnx
    from fitscribe.flavors import pyfunc as f_pyfunc
    from fitscribe.flavors import pytorch as f_torch
    from fitscribe.flavors import sklearn as f_sklearn
    from fitscribe.flavors import xgboost as f_xgb

    root = tmp_path_factory.mktemp("flavors")
    X, y = _iris()
    floats = X.to_numpy(np.float32)
    torch.manual_seed(0)
    folders = {name: str(root / name) for name in ("sklearn", "xgboost", "pytorch", "onnx", "pyfunc")}
    f_sklearn.save_model(LogisticRegression(max_iter=500).fit(X, y), folders["sklearn"], input_example=X.head(2))
    f_xgb.save_model(xgb.XGBClassifier(n_estimators=4, max_depth=2).fit(X, y), folders["xgboost"], input_example=X.head(2))
    f_torch.save_model(torch.nn.Sequential(torch.nn.Linear(4, 3)), folders["pytorch"], input_example=floats[:2].copy())
    lr = LogisticRegression(max_iter=500).fit(floats, y)
    f_onnx.save_model(to_onnx(lr, floats[:1], options={id(lr): {"zipmap": False}}), folders["onnx"],
                      input_example=floats[:2])
    f_pyfunc.save_model(folders["pyfunc"], python_model=RowSum(), input_example=X.head(2))
    return folders


SPLIT = {"dataframe_split": {"columns": COLUMNS, "data": ROWS}}
RECORDS = [dict(zip(COLUMNS, row)) for row in ROWS]
SAME_REQUESTS: dict[str, list[tuple[Any, str]]] = {
    "sklearn": [
        (SPLIT, "application/json"),
        ({"dataframe_split": {"index": [4, 5, 6], "columns": COLUMNS, "data": ROWS}}, "application/json"),
        ({"dataframe_records": RECORDS}, "application/json"),
        ({"instances": RECORDS}, "application/json"),
        ({"inputs": {c: [r[i] for r in ROWS] for i, c in enumerate(COLUMNS)}}, "application/json"),
        (",".join(f'"{c}"' for c in COLUMNS) + "\n5.1,3.5,1.4,0.2\n", "text/csv"),
        ({"dataframe_records": [{COLUMNS[0]: 1.0}]}, "application/json"),
        ({"columns": COLUMNS, "data": ROWS}, "application/json"),
        ([1, 2], "application/json"),
        ("{broken", "application/json"),
        ({"dataframe_split": {"columns": COLUMNS, "data": [[1, 2, 3, 4]]}}, "application/json"),
    ],
    "xgboost": [(SPLIT, "application/json"), ({"dataframe_records": RECORDS}, "application/json")],
    "pytorch": [({"inputs": ROWS}, "application/json"), ({"instances": ROWS}, "application/json")],
    "onnx": [({"inputs": {"X": ROWS}}, "application/json"), ({"inputs": ROWS}, "application/json")],
    "pyfunc": [(SPLIT, "application/json"), ({"dataframe_records": RECORDS}, "application/json")],
}


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, float) or isinstance(b, float):
        return bool(np.isclose(a, b, rtol=1e-6, atol=1e-6))
    return bool(a == b)


@pytest.mark.slow
def test_answers_match_mlflow_models_serve(flavor_folders: dict[str, str]) -> None:
    """The same model folders served by MLflow's scoring server and by fitscribe, the same requests.

    MLflow's side is the app ``mlflow models serve --env-manager local`` runs, built the same way
    for every folder in one process (tests/_serving_mlflow.py: MLflow imported once, not ten times).
    """
    from _mlflow_support import mlflow_python

    here = os.path.dirname(os.path.abspath(__file__))
    env = {**os.environ,  # fitscribe and this folder: the PythonModel is pickled by reference to both
           "PYTHONPATH": os.pathsep.join([os.path.dirname(os.path.dirname(os.path.abspath(fitscribe.__file__))), here])}
    mlflow = _Process([mlflow_python(), os.path.join(here, "_serving_mlflow.py"),
                       *(f"{flavor}={folder}" for flavor, folder in flavor_folders.items())], env=env)
    try:
        urls = json.loads(mlflow.wait_for_url(r"^ready (\{.*\})$", timeout=300))
        for flavor, folder in flavor_folders.items():
            theirs = urls[flavor]
            with _serve(folder) as ours:
                for body, content_type in SAME_REQUESTS[flavor]:
                    a, b = _post(ours.url, body, content_type), _post(theirs, body, content_type)
                    assert a.status_code == b.status_code, (flavor, body, a.text, b.text)
                    if b.status_code == 200:
                        assert _close(a.json(), b.json()), (flavor, body, a.json(), b.json())
                    else:
                        assert a.json()["error_code"] == b.json()["error_code"], (flavor, body, a.text, b.text)
    finally:
        mlflow.close()


@pytest.mark.slow
def test_env_manager_virtualenv_builds_an_environment_from_the_requirements(tmp_path: Any) -> None:
    """``--env-manager virtualenv``: a venv made from requirements.txt (once), the command run inside it."""
    from fitscribe.flavors import pyfunc

    folder = str(tmp_path / "rowsum")
    pyfunc.save_model(folder, python_model=RowSum(), input_example=pd.DataFrame({"a": [1.0], "b": [2.0]}))
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0], [3.0, 4.5]]}}))
    root = os.environ.get("FITSCRIBE_TEST_ENV_ROOT") or str(tmp_path / "envs")
    env = {**os.environ, "FITSCRIBE_ENV_ROOT": root, "PYTHONPATH": os.path.dirname(os.path.abspath(__file__))}
    done = _cli("models", "predict", "-m", folder, "-i", str(request), "--env-manager", "virtualenv", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"predictions": [3.0, 7.5]}
    pythons = [os.path.join(root, d, "bin", "python") for d in os.listdir(root)]
    assert len(pythons) == 1 and os.path.isfile(pythons[0])
    probe = subprocess.run([pythons[0], "-c", "import sklearn"], capture_output=True, text=True)
    assert probe.returncode != 0, "the environment holds the model's requirements, not this one's packages"
    again = _cli("models", "predict", "-m", folder, "-i", str(request), "--env-manager", "virtualenv", env=env)
    assert again.returncode == 0 and "building a virtual environment" not in again.stdout + again.stderr


def test_concurrent_requests_each_get_their_own_answer(iris_server: str, sklearn_model: dict[str, Any]) -> None:
    """Requests queued during a prediction are predicted together (adaptive batching): each client
    still gets exactly its rows' predictions, and a bad request fails alone."""
    from concurrent.futures import ThreadPoolExecutor

    model = sklearn_model["model"]
    X, _ = _iris()
    bodies = []
    for i in range(60):
        rows = X.iloc[i:i + 1 + i % 3]
        if i % 7 == 3:
            bodies.append(({"dataframe_records": [{COLUMNS[0]: 1.0}]}, None))  # missing columns: 400
        elif i % 11 == 5:
            bodies.append(({"dataframe_split": {"columns": COLUMNS, "data": [[float("nan"), 1, 1, 1]]}}, None))
        else:
            bodies.append(({"dataframe_split": {"columns": COLUMNS, "data": rows.to_numpy().tolist()}},
                           model.predict(rows).tolist()))
    with ThreadPoolExecutor(max_workers=8) as pool, httpx.Client(timeout=30) as http:
        answers = list(pool.map(lambda b: http.post(iris_server + "/invocations", content=json.dumps(b[0]),
                                                    headers={"Content-Type": "application/json"}), bodies))
    for (body, expected), answer in zip(bodies, answers):
        if expected is None:
            assert answer.status_code == 400, answer.text
        else:
            assert (answer.status_code, answer.json()) == (200, {"predictions": expected}), body


def test_batches_are_formed_and_split_back(sklearn_model: dict[str, Any]) -> None:
    """The batcher itself: three frames predicted in one call, one bad frame refused alone."""
    import warnings

    from fitscribe.flavors.pyfunc import load_model
    from fitscribe.serving.app import _Scorer
    from fitscribe.serving.batching import Batcher

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scorer = _Scorer(load_model(sklearn_model["folder"]), 10**6, 60)
    batcher = Batcher(scorer)
    calls: list[int] = []
    original = scorer.model.predict

    def counting(data: Any, params: Any = None) -> Any:
        calls.append(len(data))
        return original(data) if params is None else original(data, params)

    scorer.model.predict = counting  # type: ignore[method-assign]
    X, _ = _iris()
    frames = [X.iloc[0:2], X.iloc[50:51], pd.DataFrame({COLUMNS[0]: [1.0]}), X.iloc[100:104]]
    results = batcher._run(frames)
    assert calls[0] == 7, "the three good frames went to the model in one call"
    model = sklearn_model["model"]
    for frame, result in zip([frames[0], frames[1], frames[3]], [results[0], results[1], results[3]]):
        assert json.loads(result) == {"predictions": model.predict(frame).tolist()}
    assert isinstance(results[2], Exception) and "missing the column" in str(results[2])


def test_inline_policy_runs_quick_models_on_the_event_loop_and_slow_ones_on_threads() -> None:
    from fitscribe.serving.batching import InlinePolicy

    policy = InlinePolicy(cpu_limit_s=0.002, wall_limit_s=0.02, max_rows=64, streak=3)
    assert not policy.inline(1), "a new model starts on worker threads"
    for _ in range(3):
        policy.record(1, wall_s=0.001, cpu_s=0.0005)
    assert policy.inline(1) and policy.inline(64) and not policy.inline(65)
    policy.record(1, wall_s=0.03)  # a batch on the event loop that took 30 ms
    assert not policy.inline(1)
    for _ in range(5):
        policy.record(1, wall_s=0.004, cpu_s=0.003)  # CPU-heavy batches on a worker thread
    assert not policy.inline(1)
    for _ in range(3):
        policy.record(100, wall_s=0.001, cpu_s=0.0005)  # quick, but large: they do not count
    assert not policy.inline(1)


def test_a_slow_model_leaves_the_event_loop_and_the_timeout_answers_504(tmp_path: Any) -> None:
    """A model whose batches were quick runs on the event loop; once a batch is slow, batches go back
    to worker threads, where a prediction past the timeout answers 504 at the timeout."""
    from _serving_sklearn import Pausing

    import fitscribe.flavors.sklearn as fsk

    folder = str(tmp_path / "pausing")
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    fsk.save_model(Pausing(pause=0.4).fit(frame, [0, 1]), folder, input_example=frame)
    quick = {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0]]}}
    slow = {"dataframe_split": {"columns": ["a", "b"], "data": [[-1.0, 2.0]]}}
    with _serve(folder, timeout=0.2) as server:
        policy = server.app.batcher.policy
        for _ in range(policy.streak):
            assert _post(server.url, quick).json() == {"predictions": [1]}
        assert policy.inline(1), "quick batches moved the model onto the event loop"
        first = _post(server.url, slow)  # runs on the event loop once: it cannot be cut short there
        assert first.status_code in (200, 504), first.text
        assert not policy.inline(1), "the slow batch moved the model back to worker threads"
        began = time.monotonic()
        second = _post(server.url, slow)
        assert second.status_code == 504 and "longer than 0.2 s" in second.text
        assert time.monotonic() - began < 0.39, "answered at the timeout, before the prediction ended"
        assert httpx.get(server.url + "/ping").status_code == 200
        assert _post(server.url, quick).json() == {"predictions": [1]}


def test_float_rows_make_the_frame_pandas_makes() -> None:
    """An all-float ``dataframe_split`` is kept as one float64 array; its DataFrame is pandas' own."""
    from fitscribe.serving.protocol import FloatRows, as_model_input, parse_json

    for rows in (ROWS, [[1e308, -0.0, float("inf"), 2.5]], [[float("nan"), 1.5, 2.5, 3.5]] * 3):
        body = json.dumps({"dataframe_split": {"columns": COLUMNS, "data": rows}}).encode()
        data, _ = parse_json(body, None)
        assert type(data) is FloatRows and len(data) == len(rows)
        pd.testing.assert_frame_equal(as_model_input(data), pd.DataFrame(data=rows, columns=COLUMNS), check_exact=True)
    for split in ({"columns": COLUMNS, "data": [[1, 2.0, 3.0, 4.0]]},  # an integer: pandas infers the types
                  {"columns": COLUMNS, "data": ROWS, "index": [4, 5, 6]},
                  {"columns": [1, 2], "data": [[1.0, 2.0]]}):
        data, _ = parse_json(json.dumps({"dataframe_split": split}).encode(), None)
        expected = pd.DataFrame(data=split["data"], columns=split["columns"], index=split.get("index"))
        pd.testing.assert_frame_equal(data, expected, check_exact=True)


def test_float_rows_of_many_requests_are_predicted_in_one_call(sklearn_model: dict[str, Any]) -> None:
    """Float rows of several requests: one DataFrame, one call; a NaN row sends each request alone."""
    import warnings

    from fitscribe.flavors.pyfunc import load_model
    from fitscribe.serving.app import _Scorer
    from fitscribe.serving.batching import Batcher
    from fitscribe.serving.protocol import parse_json

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scorer = _Scorer(load_model(sklearn_model["folder"]), 10**6, 60)
    batcher = Batcher(scorer)
    calls: list[int] = []
    original = scorer.model.predict

    def counting(data: Any, params: Any = None) -> Any:
        calls.append(len(data))
        return original(data) if params is None else original(data, params)

    scorer.model.predict = counting  # type: ignore[method-assign]
    X, _ = _iris()
    parts = [X.iloc[0:2], X.iloc[50:51], X.iloc[100:104]]

    def rows(frame: Any) -> Any:
        return parse_json(json.dumps({"dataframe_split": {"columns": COLUMNS, "data": frame.to_numpy().tolist()}})
                          .encode(), None)[0]

    model = sklearn_model["model"]
    results = batcher._run([rows(p) for p in parts])
    assert calls == [7], "three requests, one prediction"
    assert [json.loads(r) for r in results] == [{"predictions": model.predict(p).tolist()} for p in parts]
    calls.clear()
    nan = pd.DataFrame([[float("nan"), 1.0, 1.0, 1.0]], columns=COLUMNS)
    results = batcher._run([rows(parts[0]), rows(nan), rows(parts[2])])
    assert calls == [7, 2, 1, 4], "the combined call failed: each request alone"
    assert json.loads(results[0]) == {"predictions": model.predict(parts[0]).tolist()}
    assert isinstance(results[1], Exception) and "could not predict" in str(results[1])
    assert json.loads(results[2]) == {"predictions": model.predict(parts[2]).tolist()}


def test_invocations_wait_for_the_warm_up_and_ping_does_not(sklearn_model: dict[str, Any]) -> None:
    """``models serve`` answers /ping once the model is loaded, while modules deferred during the
    load still run (the warm-up); a prediction asked meanwhile waits for the warm-up, then answers."""
    import warnings

    from fitscribe.flavors.pyfunc import load_model
    from fitscribe.serving.app import create_scoring_app

    release, started = threading.Event(), threading.Event()

    def warm_up() -> None:
        started.set()
        release.wait(60)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        app = create_scoring_app(load_model(sklearn_model["folder"]), warm_up=warm_up)
    expected = sklearn_model["model"].predict(pd.DataFrame(ROWS, columns=COLUMNS)).tolist()
    answers: list[httpx.Response] = []
    with ScoringServer(app) as server:
        assert started.wait(30), "the warm-up starts with the server"
        assert httpx.get(server.url + "/ping", timeout=30).status_code == 200
        asking = threading.Thread(target=lambda: answers.append(_post(server.url, SPLIT)))
        asking.start()
        asking.join(0.5)
        assert not answers, "a prediction is not answered before the warm-up has finished"
        release.set()
        asking.join(60)
        assert answers and answers[0].status_code == 200 and answers[0].json() == {"predictions": expected}
        assert _post(server.url, SPLIT).json() == {"predictions": expected}


def test_models_serve_answers_right_after_ping_for_every_flavor(flavor_folders: dict[str, str]) -> None:
    """``fitscribe models serve`` (one worker, pandas deferred while loading): the first request
    sent as soon as /ping answers gets the same answer as the in-process scoring app."""
    processes = {flavor: _Process([sys.executable, "-m", "fitscribe", "models", "serve", "-m", folder, "--port", "0"],
                                  env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.abspath(__file__))})
                 for flavor, folder in flavor_folders.items()}
    try:
        for flavor, process in processes.items():
            url = process.wait_for_url(r"at (http://\S+)/invocations")
            _wait_ready(url, process=process)
            body, content_type = SAME_REQUESTS[flavor][0]
            first = _post(url, body, content_type)
            with _serve(flavor_folders[flavor]) as ours:
                expected = _post(ours.url, body, content_type)
            assert (first.status_code, first.json()) == (200, expected.json()), (flavor, first.text)
    finally:
        for process in processes.values():
            process.close()
