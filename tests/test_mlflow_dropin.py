"""``import fitscribe as mlflow`` (issue 12 item 2): MLflow-style scripts run unchanged, and the
MLflow-named modules and fluent calls behave as MLflow's.

The corpus in ``tests/_mlflow_scripts/dropin/`` is written in MLflow's idiom with only the import
changed; each runs as a child process (its store named by ``MLFLOW_TRACKING_URI``) and prints a
JSON summary, and the test reads back with ``fitscribe.Client`` what it recorded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import fitscribe
import fitscribe as mlflow
from fitscribe import errors

SCRIPTS = Path(__file__).parent / "_mlflow_scripts" / "dropin"


def run_script(name: str, tmp_path: Path, **env: str) -> tuple[dict[str, Any], fitscribe.Client]:
    """Run a corpus script in a child process on a new store; return its summary and a client of the store."""
    store = str(tmp_path / "store")
    child_env = {**os.environ, "MLFLOW_TRACKING_URI": store, **env}
    result = subprocess.run([sys.executable, str(SCRIPTS / f"{name}.py")], cwd=tmp_path, env=child_env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), fitscribe.Client(store)


def test_fluent_tracking_script(tmp_path: Path) -> None:
    out, client = run_script("fluent_tracking", tmp_path)
    exp = client.get_experiment_by_name("dropin-fluent")
    assert exp is not None and exp.tags == {"team": "forecasting", "stage": "dev"}
    parent = client.get_run(out["parent"])
    assert parent.info.status == "FINISHED" and parent.data.params == {"optimizer": "adam", "epochs": "3"}
    assert parent.data.tags["mlflow.note.content"] == "a sweep" and parent.data.tags["owner"] == "ann"
    children = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{out['parent']}'")
    assert sorted(r.data.params["lr"] for r in children) == ["0.01", "0.1"]
    assert [m.value for m in client.get_metric_history(children[0].info.run_id, "loss")] == pytest.approx(
        [float(children[0].data.params["lr"]) * k for k in (3, 2, 1)])
    assert out["best_lr"] == ["0.01", "0.1"] and out["table_rows"] == 2
    files = {f.path for f in client.list_artifacts(out["parent"])}
    assert {"meta", "notes", "configs", "eval", "images"} <= files
    table = json.loads(Path(client.download_artifacts(out["parent"], "eval/results.json", str(tmp_path / "t"))).read_text())
    assert table == {"columns": ["question", "score"], "data": [["q1", 0.5], ["q2", 0.9]]}
    assert json.loads(parent.data.tags["mlflow.loggedArtifacts"]) == [{"path": "eval/results.json", "type": "table"}]
    images = sorted(f.path for f in client.list_artifacts(out["parent"], "images"))
    assert len(images) == 2 and images[0].startswith("images/samples+step+1+timestamp+")
    assert images[0].endswith("+compressed.webp") and images[1].endswith(".png")
    (dataset,) = parent.inputs.dataset_inputs
    assert dataset.dataset.name == "train" and json.loads(dataset.dataset.source) == {"uri": "train.csv"}
    assert {t.key: t.value for t in dataset.tags} == {"mlflow.data.context": "training"}
    aborted = client.get_run(out["aborted"]).info
    assert aborted.status == "KILLED" and out["last"] == out["aborted"]


def test_client_script(tmp_path: Path) -> None:
    out, client = run_script("client_api", tmp_path)
    run = client.get_run(out["run_id"])
    assert run.info.status == "FINISHED" and run.data.params == {"alpha": "0.5"} and run.data.tags["kind"] == "regression"
    assert out["history"] == [1.0, 0.5, pytest.approx(1 / 3), 0.25, 0.2] and out["found"] == [out["run_id"]]
    assert out["files"] == ["report.txt"] and out["alias_version"] == 1
    assert client.get_model_version_by_alias("dropin-client-model", "champion").run_id == out["run_id"]


def test_client_tables_and_images_script(tmp_path: Path) -> None:
    out, client = run_script("client_tables_images", tmp_path)
    first, second = out["run_ids"]
    assert out["rows"] == {first: [1, 2, 3], second: [11, 12, 13]} and out["entities"] == [True, True]
    assert out["second"] == {"x": [11, 12, 13], "tag": ["a", "b", "c"]}
    run = client.get_run(first)
    assert json.loads(run.data.tags["mlflow.loggedArtifacts"]) == [{"path": "eval/scores.json", "type": "table"}]
    assert run.data.tags["mlflow.loggedImages"] == "True"
    frames = sorted(f.path for f in client.list_artifacts(first, "images"))
    assert [p.split("+")[:5] for p in frames] == [["images/val~pred", "step", str(s), "timestamp", str(1000 + s)]
                                                  for s in (0, 0, 1, 1)]
    assert {f.path for f in client.list_artifacts(first)} == {"eval", "images", "static"}


def test_sklearn_autolog_script(tmp_path: Path) -> None:
    out, client = run_script("sklearn_autolog", tmp_path)
    single = client.get_run(out["single"])
    assert single.info.status == "FINISHED" and single.data.params["C"] == "0.5"
    assert "training_accuracy_score" in single.data.metrics and out["single_metrics"] == sorted(single.data.metrics)
    assert "model" in {f.path for f in client.list_artifacts(out["single"])}
    assert out["children"] == 2 and len(out["predict"]) == 3
    search = client.get_run(out["search"])
    assert search.data.params["best_C"] in ("0.1", "1.0") and search.info.status == "FINISHED"


def test_xgboost_autolog_script(tmp_path: Path) -> None:
    out, client = run_script("xgboost_autolog", tmp_path)
    train = client.get_run(out["train_run"])
    assert train.data.params["max_depth"] == "2" and "valid-logloss" in train.data.metrics
    assert len(client.get_metric_history(out["train_run"], "valid-logloss")) == 3
    wrapper = client.get_run(out["wrapper_run"])
    assert wrapper.info.run_id != out["train_run"] and wrapper.data.params["n_estimators"] == "3"
    assert out["same_prediction"] is True


def test_pytorch_autolog_script(tmp_path: Path) -> None:
    out, client = run_script("pytorch_autolog", tmp_path)
    run = client.get_run(out["run"])
    assert run.info.status == "FINISHED" and run.data.params["lr"] == "0.05" and run.data.params["epochs"] == "2"
    assert "train_loss" in run.data.metrics and out["same_prediction"] is True
    assert run.data.tags["mlflow.autologging"] == "lightning"


def test_flavors_script(tmp_path: Path) -> None:
    out, client = run_script("flavors_roundtrip", tmp_path)
    assert {k: v for k, v in out.items() if k != "run"} == {
        "sk_version": 1, "sk_same": True, "sk_pyfunc": True, "xgb_same": True, "xgb_registered": True, "torch_same": True,
        "onnx_loaded": "ModelProto", "onnx_same": True, "saved_same": True,
        "saved_flavors": ["python_function", "sklearn"],
    }
    assert {"sk", "xgb", "torch", "onnx"} <= {f.path for f in client.list_artifacts(out["run"])}
    for name in ("dropin-sk", "dropin-xgb", "dropin-torch", "dropin-onnx"):
        assert client.get_model_version(name, 1).run_id == out["run"]


def test_pyfunc_script(tmp_path: Path) -> None:
    out, client = run_script("pyfunc_custom", tmp_path)
    assert out["prediction"] == [3.0, 6.0] and out["version"] == 1
    assert client.get_model_version_by_alias("dropin-scaler", "prod").run_id == out["run"]


def test_search_script_with_mlflow_variables(tmp_path: Path) -> None:
    out, client = run_script("search_and_env", tmp_path, MLFLOW_EXPERIMENT_NAME="dropin-env")
    assert client.get_experiment(out["experiment"]).name == "dropin-env" and out["experiments"] == ["dropin-env"]
    assert out["top"] == ["trial-3", "trial-2"] and out["all_runs"] == 6
    assert out["resumed_metrics"] == {"from_child": 1.0}
    assert client.get_run(out["resumed"]).info.status == "FINISHED"


# -- the MLflow-named modules, in process ---------------------------------------------------------------
def _data() -> tuple[Any, Any]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    return X, (X[:, 0] > 0).astype(int)


def test_mlflow_names_are_ours() -> None:
    from fitscribe.tracking import MlflowClient

    assert mlflow.MlflowClient is MlflowClient is fitscribe.Client
    assert mlflow.pyfunc.PythonModel is fitscribe.flavors.pyfunc.PythonModel
    assert mlflow.models.infer_signature is fitscribe.flavors.infer_signature
    assert issubclass(mlflow.models.Model, fitscribe.flavors.Model)
    from fitscribe.entities import FileInfo, LifecycleStage, SourceType, ViewType

    assert SourceType.LOCAL == "LOCAL" and LifecycleStage.DELETED == "deleted" and ViewType.parse(3) is ViewType.ALL
    assert FileInfo is fitscribe.backends.FileInfo
    for module in ("sklearn", "xgboost", "pytorch", "onnx"):
        alias = getattr(mlflow, module)
        assert {"log_model", "save_model", "load_model"} <= set(alias.__all__)
        assert alias.FLAVOR_NAME == module
    assert {"autolog"} <= set(mlflow.sklearn.__all__) & set(mlflow.xgboost.__all__) & set(mlflow.pytorch.__all__)
    from fitscribe.models.signature import ModelSignature, infer_signature  # MLflow's usual import paths
    from fitscribe.tracking.client import MlflowClient as FromClientModule

    assert infer_signature is mlflow.models.signature.infer_signature is mlflow.models.infer_signature
    assert ModelSignature is fitscribe.flavors.ModelSignature
    assert FromClientModule is mlflow.tracking.client.MlflowClient is fitscribe.Client


@pytest.mark.parametrize("flavor", ["sklearn", "pyfunc"])
def test_artifact_path_is_a_deprecated_alias_of_name(flavor: str) -> None:
    from sklearn.linear_model import LogisticRegression

    from fitscribe._dropin import FitscribeDeprecationWarning

    class Echo(mlflow.pyfunc.PythonModel):
        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            return model_input

    model = LogisticRegression().fit(*_data()) if flavor == "sklearn" else Echo()

    def log(**kwargs: Any) -> Any:
        if flavor == "sklearn":
            return mlflow.sklearn.log_model(model, **kwargs)
        return mlflow.pyfunc.log_model(python_model=model, **kwargs)

    with mlflow.start_run() as run:
        with pytest.warns(FitscribeDeprecationWarning, match="name='old'") as caught:
            info = log(artifact_path="old")
        assert caught[0].filename == __file__ and issubclass(caught[0].category, FutureWarning)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert log(name="new").model_uri == f"runs:/{run.info.run_id}/new"
        with pytest.raises(errors.InvalidValueError, match="name='b' or artifact_path='a'"):
            log(artifact_path="a", name="b")
    assert info.model_uri == f"runs:/{run.info.run_id}/old"
    assert {"old", "new"} <= {f.path for f in mlflow.list_artifacts(run.info.run_id)}
    if flavor == "sklearn":  # MLflow's positional spelling, log_model(model, "model"), is the same alias
        with mlflow.start_run(), pytest.warns(FitscribeDeprecationWarning):
            assert mlflow.sklearn.log_model(model, "positional").artifact_path == "positional"


def test_conda_env_and_requirement_files(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(*_data())
    conda = {"dependencies": ["python=3.11", "pip", {"pip": ["mlflow==3.18.0", "scikit-learn", "extra-pkg==1.0"]}]}
    requirements = tmp_path / "req.txt"
    requirements.write_text("# pinned\nscikit-learn\nother-pkg\n")
    with mlflow.start_run():
        a = mlflow.sklearn.log_model(model, name="a", conda_env=conda)
        b = mlflow.sklearn.log_model(model, name="b", pip_requirements=str(requirements))
        with pytest.raises(errors.InvalidValueError, match="only one of conda_env"):
            mlflow.sklearn.log_model(model, name="c", conda_env=conda, pip_requirements=["x"])
    lines_a = Path(mlflow.pyfunc.get_model_dependencies(a.model_uri)).read_text().split()
    lines_b = Path(mlflow.pyfunc.get_model_dependencies(b.model_uri)).read_text().split()
    assert "extra-pkg==1.0" in lines_a and not any(x.startswith("mlflow") for x in lines_a)
    assert "other-pkg" in lines_b and "# pinned" not in lines_b
    assert Path(mlflow.pyfunc.get_model_dependencies(a.model_uri, format="conda")).name == "conda.yaml"
    with pytest.raises(errors.InvalidValueError, match="'pip' or 'conda'"):
        mlflow.pyfunc.get_model_dependencies(a.model_uri, format="uv")


def test_unsupported_mlflow_options_are_refused_clearly() -> None:
    with pytest.raises(errors.InvalidValueError, match="loader_module"):
        mlflow.pyfunc.log_model(name="m", loader_module="my.module", data_path="data")
    with pytest.raises(errors.InvalidValueError, match="pickle_module"):
        mlflow.pytorch.save_model(object(), "x", pickle_module=object())


def test_register_model_and_search_the_registry() -> None:
    from sklearn.linear_model import LogisticRegression

    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(LogisticRegression().fit(*_data()), name="model")
    first = mlflow.register_model(info.model_uri, "reg", tags={"stage": "try"})
    second = mlflow.register_model(f"runs:/{run.info.run_id}/model", "reg")
    assert (int(first.version), int(second.version)) == (1, 2) and first.run_id == run.info.run_id
    assert [m.name for m in mlflow.search_registered_models(filter_string="name = 'reg'")] == ["reg"]
    assert sorted(int(v.version) for v in mlflow.search_model_versions(filter_string="name = 'reg'")) == [1, 2]
    assert mlflow.Client().get_model_version("reg", 1).tags == {"stage": "try"}
    with pytest.raises(errors.RunNotFound):
        mlflow.register_model(f"runs:/{'f' * 32}/model", "reg")


def test_experiment_tags_follow_the_current_experiment(monkeypatch: pytest.MonkeyPatch) -> None:
    mlflow.set_experiment("tagged")
    mlflow.set_experiment_tag("a", 1)
    mlflow.set_experiment_tags({"b": "2", "c": 3})
    mlflow.delete_experiment_tag("c")
    assert mlflow.get_experiment_by_name("tagged").tags == {"a": "1", "b": "2"}
    fitscribe.fluent.reset()
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")
    mlflow.set_experiment_tag("env", "yes")
    assert mlflow.get_experiment_by_name("from-env").tags == {"env": "yes"}


def test_tables_round_trip_and_append(tmp_path: Path) -> None:
    with mlflow.start_run() as a:
        mlflow.log_table({"q": ["x", "y"], "score": [1, 2]}, "t.json")
        mlflow.log_table(pd.DataFrame({"q": ["z"], "score": [3]}), "t.json")
        mlflow.log_table({"only": "one row"}, "single.json")
    with mlflow.start_run() as b:
        mlflow.log_table({"q": ["w"], "score": [4]}, artifact_file="t.json")
    with mlflow.start_run():
        mlflow.log_metric("other", 1)
    both = mlflow.load_table("t.json", extra_columns=["run_id"])
    assert sorted(both["score"].tolist()) == [1, 2, 3, 4]
    assert both.groupby("run_id").size().to_dict() == {a.info.run_id: 3, b.info.run_id: 1}
    only_b = mlflow.load_table("t.json", run_ids=[b.info.run_id])
    assert only_b.to_dict("list") == {"q": ["w"], "score": [4]}
    assert mlflow.load_table("single.json").to_dict("list") == {"only": ["one row"]}
    with pytest.raises(errors.NotFoundError, match="missing.json"):
        mlflow.load_table("missing.json")
    with mlflow.start_run(), pytest.raises(errors.InvalidValueError, match=".json or .parquet"):
        mlflow.log_table({"a": [1]}, "t.csv")


def test_log_image_by_key_and_step_or_file() -> None:
    image = np.zeros((300, 150, 3), dtype=np.uint8)
    with mlflow.start_run() as run:
        mlflow.log_image(image, key="val/pred", step=3, timestamp=1234)
        mlflow.log_image(image, "plain.png")
        with pytest.raises(TypeError, match="artifact_file alone"):
            mlflow.log_image(image, "x.png", key="k")
        with pytest.raises(TypeError, match="needs artifact_file"):
            mlflow.log_image(image)
        with pytest.raises(errors.InvalidValueError, match="image key"):
            mlflow.log_image(image, key="bad:key")
    images = sorted(f.path for f in mlflow.list_artifacts(run.info.run_id, "images"))
    assert [p.split("+")[:5] for p in images] == [["images/val~pred", "step", "3", "timestamp", "1234"]] * 2
    thumb = mlflow.artifacts.load_image(f"runs:/{run.info.run_id}/{images[0]}")
    assert thumb.size == (128, 256)
    assert mlflow.get_run(run.info.run_id).data.tags["mlflow.loggedImages"] == "True"


def test_datasets_from_pandas_and_numpy() -> None:
    df = pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]})
    frame = mlflow.data.from_pandas(df, targets="y")
    assert frame.df is df and frame.digest == mlflow.data.from_pandas(df.copy()).digest
    assert frame.digest != mlflow.data.from_pandas(df.assign(x=[1.0, 3.0])).digest
    arrays = mlflow.data.from_numpy(np.ones((4, 2)), targets=np.zeros(4), source="s3://bucket/x.npy", name="np")
    with pytest.raises(errors.InvalidValueError, match="'label' is not a column"):
        mlflow.data.from_pandas(df, targets="label")
    with mlflow.start_run() as run:
        mlflow.log_input(frame, context="training")
        mlflow.log_input(arrays, context="eval")
    got = {d.dataset.name: d.dataset for d in mlflow.get_run(run.info.run_id).inputs.dataset_inputs}
    assert json.loads(got["dataset"].profile) == {"num_rows": 2, "num_elements": 4}
    assert got["dataset"].source_type == "code"
    assert (got["np"].source_type, json.loads(got["np"].source)) == ("s3", {"uri": "s3://bucket/x.npy"})
    assert json.loads(json.loads(got["np"].schema)["mlflow_tensorspec"]["features"])["tensor-spec"]["shape"] == [-1, 2]


def test_download_artifacts_by_uri(tmp_path: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_text("hi", "dir/a.txt")
        mlflow.log_dict({"k": 1}, "dir/b.yaml")
    run_id = run.info.run_id
    assert Path(mlflow.download_artifacts(artifact_uri=f"runs:/{run_id}/dir/a.txt")).read_text() == "hi"
    assert Path(mlflow.download_artifacts(run_id, "dir/a.txt", str(tmp_path / "d1"))).read_text() == "hi"
    folder = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="dir", dst_path=str(tmp_path / "d2"))
    assert sorted(os.listdir(folder)) == ["a.txt", "b.yaml"]
    store_uri = mlflow.get_run(run_id).info.artifact_uri + "/dir/a.txt"
    assert Path(mlflow.download_artifacts(artifact_uri=store_uri)).read_text() == "hi"
    assert mlflow.artifacts.load_dict(f"runs:/{run_id}/dir/b.yaml") == {"k": 1}
    assert mlflow.artifacts.load_text(store_uri) == "hi"
    assert [f.path for f in mlflow.artifacts.list_artifacts(f"runs:/{run_id}/dir")] == ["dir/a.txt", "dir/b.yaml"]
    with pytest.raises(errors.InvalidValueError, match="not both"):
        mlflow.download_artifacts(run_id, artifact_uri=f"runs:/{run_id}/dir")
    with pytest.raises(errors.InvalidValueError, match="exactly one"):
        mlflow.artifacts.download_artifacts()


def test_model_load_takes_a_folder_a_file_or_a_uri(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(*_data())
    mlflow.sklearn.save_model(model, str(tmp_path / "m"))
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="m")
    for where in (tmp_path / "m", tmp_path / "m" / "MLmodel", info.model_uri):
        descriptor = mlflow.models.Model.load(where)
        assert isinstance(descriptor, mlflow.models.Model) and "sklearn" in descriptor.flavors
    with pytest.raises(errors.NotFoundError):
        mlflow.models.Model.load(str(tmp_path / "nothing"))


def test_log_calls_take_mlflow_keywords() -> None:
    with mlflow.start_run() as other:
        pass
    with mlflow.start_run() as run:
        mlflow.log_metric("a", 1.0, step=2, synchronous=True)
        mlflow.log_metric("b", 2.0, run_id=other.info.run_id)
        mlflow.log_metrics({"c": 3.0}, run_id=other.info.run_id, synchronous=False)
        mlflow.log_params({"p": 1}, run_id=other.info.run_id)
        mlflow.log_param("q", 2, synchronous=True)
        mlflow.set_tag("t", "v", synchronous=True)
        mlflow.log_text("x", "x.txt", run_id=other.info.run_id)
        mlflow.log_dict({"k": 1}, "k.json", run_id=other.info.run_id)
        mlflow.flush_async_logging()
    assert mlflow.get_run(run.info.run_id).data.metrics == {"a": 1.0}
    got = mlflow.get_run(other.info.run_id).data
    assert got.metrics == {"b": 2.0, "c": 3.0} and got.params == {"p": "1"}
    assert {f.path for f in mlflow.list_artifacts(other.info.run_id)} == {"x.txt", "k.json"}
    with mlflow.start_run(log_system_metrics=False) as quiet:
        pass
    assert mlflow.get_run(quiet.info.run_id).info.status == "FINISHED"


# -- signatures: every parameter of MLflow's functions is accepted, positional ones in MLflow's order -----
_SIGNATURE_PROBE = """
import inspect, json, importlib
FUNCS = {
 "sklearn": ["log_model", "save_model", "load_model", "autolog"],
 "xgboost": ["log_model", "save_model", "load_model", "autolog"],
 "pytorch": ["log_model", "save_model", "load_model", "autolog"],
 "onnx": ["log_model", "save_model", "load_model"],
 "pyfunc": ["log_model", "save_model", "load_model", "get_model_dependencies"],
 "models": ["infer_signature"],
 "data": ["from_pandas", "from_numpy"],
 "artifacts": ["download_artifacts", "list_artifacts", "load_text", "load_dict", "load_image"],
 "": ["start_run", "end_run", "log_metric", "log_metrics", "log_param", "log_params", "set_tag", "set_tags",
      "delete_tag", "log_artifact", "log_artifacts", "log_text", "log_dict", "log_figure", "log_image", "log_table",
      "load_table", "register_model", "set_experiment", "set_experiment_tag", "set_experiment_tags",
      "search_runs", "search_experiments", "get_run", "log_input", "set_tracking_uri", "get_tracking_uri",
      "set_registry_uri", "get_registry_uri", "create_experiment", "get_experiment", "get_experiment_by_name",
      "delete_experiment", "restore_experiment", "delete_run", "restore_run", "get_parent_run",
      "search_registered_models", "search_model_versions", "last_active_run", "active_run", "autolog",
      "get_artifact_uri", "is_tracking_uri_set", "delete_experiment_tag", "flush_async_logging"],
}
out = {}
for mod, names in FUNCS.items():
    m = importlib.import_module(("mlflow." + mod) if mod else "mlflow")
    for n in names:
        f = getattr(m, n)
        out[f"{mod}.{n}"] = [(p.name, p.kind.name) for p in inspect.signature(f).parameters.values()]
print(json.dumps(out))
"""
_MLFLOW_ONLY = {  # MLflow 3 features fitscribe does not have (tracing destinations, env packs, LoggedModel inputs)
    ".set_experiment": {"trace_location"}, ".create_experiment": {"trace_location"},
    ".register_model": {"env_pack"}, ".log_input": {"model"},
}


@pytest.fixture(scope="module")
def mlflow_signatures() -> dict[str, list[list[str]]]:
    from _mlflow_support import run_mlflow

    result = run_mlflow(["-c", _SIGNATURE_PROBE], cwd=os.getcwd(), env=dict(os.environ), timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_signatures_match_mlflows(mlflow_signatures: dict[str, list[list[str]]]) -> None:
    import importlib
    import inspect

    problems = []
    for key, theirs in mlflow_signatures.items():
        module, name = key.split(".")
        target = getattr(importlib.import_module(f"fitscribe.{module}") if module else fitscribe, name)
        if key == ".autolog":
            target = fitscribe.autolog.autolog
        ours = inspect.signature(target).parameters
        missing = [p for p, kind in theirs if p not in ours and not kind.startswith("VAR_")]
        missing = [p for p in missing if p not in _MLFLOW_ONLY.get(key, set())]
        their_order = [p for p, kind in theirs if kind == "POSITIONAL_OR_KEYWORD"]
        our_order = [p for p, q in ours.items() if q.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
        if key == ".autolog":  # fitscribe.autolog() keeps its own positional order; keywords as MLflow's
            their_order = our_order
        if missing or their_order[: len(our_order)] != our_order[: len(their_order)]:
            problems.append(f"{key}: missing {missing}, positional {our_order} vs MLflow's {their_order}")
    assert problems == []
