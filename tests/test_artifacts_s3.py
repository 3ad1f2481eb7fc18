"""The ``s3://`` artifact store against a real S3-protocol server (moto, in a child process on loopback).

Real boto3 talks HTTP to moto; nothing is mocked. The server is started once per session (conftest's
``moto_server``); each test gets its own bucket. Memory is measured with tracemalloc in this process, which moto is not part of.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import subprocess
import sys
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import pytest
from _require import require_module

from fitscribe.backends import get_artifact_store
from fitscribe.backends.artifacts_s3 import S3ArtifactStore, parse_size
from fitscribe.errors import BackendError, ConfigError, InvalidValueError, NotFoundError

require_module("boto3", reason="the s3 extra (boto3) is not installed")
require_module("moto", reason="moto[server] (dev extra) is not installed")

from fitscribe.testing.s3_server import FAKE_CREDENTIALS, MotoS3Server  # noqa: E402

MiB = 1024 * 1024


@pytest.fixture
def s3_env(moto_server: MotoS3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> MotoS3Server:
    """The environment a user would set: moto's endpoint and credentials, no stray AWS config."""
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    for name in ("MLFLOW_S3_ENDPOINT_URL", "MLFLOW_S3_IGNORE_TLS", "MLFLOW_S3_UPLOAD_EXTRA_ARGS", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", moto_server.endpoint_url)
    return moto_server


@pytest.fixture
def bucket(s3_env: MotoS3Server) -> str:
    """A new, empty bucket."""
    name = f"fs-{uuid.uuid4().hex[:16]}"
    s3_env.create_bucket(name)
    return name


@pytest.fixture
def store(bucket: str) -> S3ArtifactStore:
    built = get_artifact_store(f"s3://{bucket}/runs/1")
    assert isinstance(built, S3ArtifactStore)
    return built


def _tree(tmp_path: Path) -> Path:
    """A folder with a file, a subfolder and a nested file."""
    src = tmp_path / "src"
    (src / "plots").mkdir(parents=True)
    (src / "notes.txt").write_text("hello s3\n")
    (src / "plots" / "loss.png").write_bytes(b"\x89PNG" + bytes(range(256)))
    return src


def _big_file(path: Path, size: int) -> Path:
    """A file of ``size`` pseudo-random bytes, written 1 MiB at a time."""
    block = hashlib.sha256(b"fitscribe").digest() * (MiB // 32)
    with open(path, "wb") as handle:
        for start in range(0, size, MiB):
            handle.write(block[: min(MiB, size - start)])
    return path


def _sha(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


# -- put / get / list / delete / open ----------------------------------------------------------

def test_put_and_get_a_file_and_a_folder(store: S3ArtifactStore, s3_env: MotoS3Server, tmp_path: Path) -> None:
    src = _tree(tmp_path)
    store.put(str(src / "notes.txt"))
    store.put(str(src), "outputs")
    keys = sorted(o["Key"] for o in s3_env.client().list_objects_v2(Bucket=store.bucket)["Contents"])
    assert keys == ["runs/1/notes.txt", "runs/1/outputs/notes.txt", "runs/1/outputs/plots/loss.png"]

    one = store.get("notes.txt", str(tmp_path / "one"))
    assert one == str(tmp_path / "one" / "notes.txt") and Path(one).read_text() == "hello s3\n"
    folder = store.get("outputs", str(tmp_path / "folder"))
    assert Path(folder, "plots", "loss.png").read_bytes() == (src / "plots" / "loss.png").read_bytes()
    everything = store.get("", str(tmp_path / "all"))
    assert everything == str(tmp_path / "all")
    assert sorted(p.relative_to(everything).as_posix() for p in Path(everything).rglob("*") if p.is_file()) == [
        "notes.txt", "outputs/notes.txt", "outputs/plots/loss.png"]


def test_put_guesses_the_content_type(store: S3ArtifactStore, s3_env: MotoS3Server, tmp_path: Path) -> None:
    store.put(str(_tree(tmp_path) / "plots" / "loss.png"))
    head = s3_env.client().head_object(Bucket=store.bucket, Key="runs/1/loss.png")
    assert head["ContentType"] == "image/png"


def test_list_one_level(store: S3ArtifactStore, tmp_path: Path) -> None:
    store.put(str(_tree(tmp_path)), "outputs")
    assert store.list() == [_info("outputs", True, None)]
    assert store.list("outputs") == [_info("outputs/notes.txt", False, 9), _info("outputs/plots", True, None)]
    assert store.list("outputs/plots") == [_info("outputs/plots/loss.png", False, 260)]
    assert store.list("outputs/notes.txt") == [] and store.list("missing") == []


def _info(path: str, is_dir: bool, size: int | None) -> Any:
    from fitscribe.backends import FileInfo

    return FileInfo(path, is_dir, size)


def test_delete_files_folders_and_everything(store: S3ArtifactStore, s3_env: MotoS3Server, tmp_path: Path) -> None:
    src = _tree(tmp_path)
    store.put(str(src), "a")
    store.put(str(src), "b")
    store.put(str(src / "notes.txt"))
    neighbour = S3ArtifactStore(f"s3://{store.bucket}/runs/10")  # shares the key prefix "runs/1"
    neighbour.put(str(src / "notes.txt"))
    store.delete("a/plots/loss.png")
    assert store.list("a") == [_info("a/notes.txt", False, 9)]
    store.delete("a")
    store.delete("a")  # twice is harmless
    assert [i.path for i in store.list()] == ["b", "notes.txt"]
    store.delete(None)
    assert store.list() == []
    assert neighbour.list() == [_info("notes.txt", False, 9)]


def test_folder_markers_and_empty_files(store: S3ArtifactStore, s3_env: MotoS3Server, tmp_path: Path) -> None:
    s3_env.client().put_object(Bucket=store.bucket, Key="runs/1/empty-folder/", Body=b"")  # as S3 consoles make
    s3_env.client().put_object(Bucket=store.bucket, Key="runs/1/nested/inner/", Body=b"")
    (tmp_path / "empty.txt").write_bytes(b"")
    store.put(str(tmp_path / "empty.txt"), "nested")
    assert store.list() == [_info("empty-folder", True, None), _info("nested", True, None)]
    assert store.list("empty-folder") == []
    assert os.listdir(store.get("empty-folder", str(tmp_path / "dst"))) == []
    assert list(store.open("nested/empty.txt")) == [] and Path(store.get("nested/empty.txt", str(tmp_path))).stat().st_size == 0
    store.delete("empty-folder")
    store.delete("nested")
    assert _keys(s3_env, store.bucket, "") == []


def test_open_streams_in_chunks(store: S3ArtifactStore, tmp_path: Path) -> None:
    big = _big_file(tmp_path / "weights.bin", 3 * MiB + 5)
    store.put(str(big), "model")
    chunks = list(store.open("model/weights.bin"))
    assert [len(c) for c in chunks] == [MiB, MiB, MiB, 5]
    assert hashlib.sha256(b"".join(chunks)).hexdigest() == _sha(big)


def test_open_refuses_folders_and_missing_files(store: S3ArtifactStore, tmp_path: Path) -> None:
    store.put(str(_tree(tmp_path)), "outputs")
    with pytest.raises(InvalidValueError, match="'outputs' is a folder"):
        store.open("outputs")
    with pytest.raises(NotFoundError, match="No artifact exists at 'outputs/nope.txt'"):
        store.open("outputs/nope.txt")
    with pytest.raises(NotFoundError, match="No artifact exists at 'nope'"):
        store.get("nope", str(tmp_path / "dst"))


def test_listing_and_deleting_past_one_page(store: S3ArtifactStore, tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(1003):
        (folder / f"f{i:04d}.txt").write_text(str(i))
    (folder / "sub").mkdir()
    (folder / "sub" / "x.txt").write_text("x")
    store.put(str(folder), "many")
    listed = store.list("many")
    assert len(listed) == 1004
    assert listed[0] == _info("many/f0000.txt", False, 1) and listed[-1] == _info("many/sub", True, None)
    store.delete("many")  # two delete requests of at most 1,000 keys
    assert store.list("many") == [] and store.list() == []


def test_root_at_the_bucket_top(bucket: str, tmp_path: Path) -> None:
    top = S3ArtifactStore(f"s3://{bucket}")
    top.put(str(_tree(tmp_path)))
    assert [i.path for i in top.list()] == ["notes.txt", "plots"]
    assert b"".join(top.open("notes.txt")) == b"hello s3\n"


# -- multipart and streaming ---------------------------------------------------------------------

def test_multipart_upload_of_a_large_file(bucket: str, s3_env: MotoS3Server, tmp_path: Path) -> None:
    big = _big_file(tmp_path / "big.bin", 12 * MiB)
    store = S3ArtifactStore(f"s3://{bucket}/mp", multipart_threshold="5MB", multipart_chunksize=5 * MiB)
    store.put(str(big))
    etag = s3_env.client().head_object(Bucket=bucket, Key="mp/big.bin")["ETag"]
    assert etag.strip('"').endswith("-3"), etag  # 5 + 5 + 2 MiB
    copy = store.get("big.bin", str(tmp_path / "back"))
    assert _sha(copy) == _sha(big)


def test_small_files_are_one_request(store: S3ArtifactStore, s3_env: MotoS3Server, tmp_path: Path) -> None:
    store.put(str(_big_file(tmp_path / "small.bin", 2 * MiB)))
    etag = s3_env.client().head_object(Bucket=store.bucket, Key="runs/1/small.bin")["ETag"]
    assert "-" not in etag


def test_multipart_sizes_from_the_environment(bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FITSCRIBE_S3_MULTIPART_THRESHOLD", "64MB")
    monkeypatch.setenv("FITSCRIBE_S3_MULTIPART_CHUNKSIZE", "16777216")
    store = S3ArtifactStore(f"s3://{bucket}/x")
    assert (store.multipart_threshold, store.multipart_chunksize) == (64 * MiB, 16 * MiB)
    assert parse_size("1GiB", "size") == 1024 * MiB and parse_size("512K", "size") == 512 * 1024
    with pytest.raises(ConfigError, match="'lots' is not a size"):
        S3ArtifactStore(f"s3://{bucket}/x", multipart_chunksize="lots")
    with pytest.raises(ConfigError, match="max_concurrency must be at least 1"):
        S3ArtifactStore(f"s3://{bucket}/x", max_concurrency=0)


def test_upload_and_download_stream_without_holding_the_file(bucket: str, tmp_path: Path) -> None:
    size = 64 * MiB
    big = _big_file(tmp_path / "big.bin", size)
    store = S3ArtifactStore(f"s3://{bucket}/stream")
    store.list()  # build the client first: its service model is not part of the transfer
    tracemalloc.start()
    try:
        store.put(str(big))
        upload_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        copy = store.get("big.bin", str(tmp_path / "back"))
        download_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        streamed = sum(len(chunk) for chunk in store.open("big.bin"))
        open_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert streamed == size and _sha(copy) == _sha(big)
    assert upload_peak < size / 3, f"upload peak {upload_peak / MiB:.1f} MiB for a {size // MiB} MiB file"
    assert download_peak < size / 3, f"download peak {download_peak / MiB:.1f} MiB for a {size // MiB} MiB file"
    assert open_peak < size / 8, f"open() peak {open_peak / MiB:.1f} MiB for a {size // MiB} MiB file"


def test_progress_callbacks_count_every_byte(bucket: str, tmp_path: Path) -> None:
    big = _big_file(tmp_path / "big.bin", 9 * MiB + 7)
    store = S3ArtifactStore(f"s3://{bucket}/p", multipart_threshold="5MB", multipart_chunksize="5MB")
    sent: list[int] = []
    received: list[int] = []
    store.put(str(big), progress=sent.append)
    store.get("big.bin", str(tmp_path / "back"), progress=received.append)
    assert sum(sent) == sum(received) == 9 * MiB + 7 and len(sent) > 1


# -- paths, configuration and errors -------------------------------------------------------------

@pytest.mark.parametrize("bad", ["../escape", "a/../../escape", "/etc/passwd"])
def test_paths_climbing_out_are_refused(store: S3ArtifactStore, tmp_path: Path, bad: str) -> None:
    src = _tree(tmp_path)
    for call in (lambda: store.put(str(src), bad), lambda: store.get(bad, str(tmp_path)), lambda: store.list(bad),
                 lambda: store.delete(bad), lambda: store.open(bad)):
        with pytest.raises(InvalidValueError, match="climbs out|is absolute"):
            call()


def test_a_key_climbing_out_is_not_downloaded(store: S3ArtifactStore, s3_env: MotoS3Server, tmp_path: Path) -> None:
    s3_env.client().put_object(Bucket=store.bucket, Key="runs/1/evil/../../../../escaped.txt", Body=b"x")
    with pytest.raises(InvalidValueError, match="climbs out"):
        store.get("", str(tmp_path / "dst"))
    assert not list(tmp_path.rglob("escaped.txt"))


def test_bad_uris_are_refused() -> None:
    for uri in ("s3://", "s3:///prefix", "s3://bucket/../up"):
        with pytest.raises((ConfigError, InvalidValueError)):
            S3ArtifactStore(uri)


def test_missing_bucket_says_so(s3_env: MotoS3Server, tmp_path: Path) -> None:
    store = S3ArtifactStore("s3://no-such-bucket-fitscribe/runs")
    with pytest.raises(NotFoundError, match=r"bucket 'no-such-bucket-fitscribe' does not exist .*create it"):
        store.list()
    with pytest.raises(NotFoundError, match="does not exist"):
        store.put(str(_tree(tmp_path) / "notes.txt"))


def test_unreachable_endpoint_names_the_variable(bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    with pytest.raises(BackendError, match=f"127.0.0.1:{port} is unreachable.*MLFLOW_S3_ENDPOINT_URL"):
        S3ArtifactStore(f"s3://{bucket}/x").list()


def test_fitscribe_endpoint_variable_wins(bucket: str, s3_env: MotoS3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("FITSCRIBE_S3_ENDPOINT_URL", s3_env.endpoint_url)
    assert S3ArtifactStore(f"s3://{bucket}/x").list() == []
    assert S3ArtifactStore(f"s3://{bucket}/x", endpoint_url="http://h:1").endpoint_url == "http://h:1"


def test_ignore_tls_variable(bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert S3ArtifactStore(f"s3://{bucket}/x").verify_tls is True
    monkeypatch.setenv("MLFLOW_S3_IGNORE_TLS", "true")
    store = S3ArtifactStore(f"s3://{bucket}/x")
    assert store.verify_tls is False and store.list() == []


def test_upload_extra_args(store: S3ArtifactStore, s3_env: MotoS3Server, monkeypatch: pytest.MonkeyPatch,
                           tmp_path: Path) -> None:
    src = _tree(tmp_path) / "notes.txt"
    monkeypatch.setenv("MLFLOW_S3_UPLOAD_EXTRA_ARGS", '{"Metadata": {"team": "vision"}}')
    S3ArtifactStore(f"s3://{store.bucket}/runs/1").put(str(src))
    assert s3_env.client().head_object(Bucket=store.bucket, Key="runs/1/notes.txt")["Metadata"] == {"team": "vision"}
    monkeypatch.setenv("MLFLOW_S3_UPLOAD_EXTRA_ARGS", '{"Bogus": 1}')
    with pytest.raises(ConfigError, match=r"MLFLOW_S3_UPLOAD_EXTRA_ARGS names unknown upload arguments \['Bogus'\]"):
        S3ArtifactStore(f"s3://{store.bucket}/runs/1").put(str(src))
    monkeypatch.setenv("MLFLOW_S3_UPLOAD_EXTRA_ARGS", "{not json")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        S3ArtifactStore(f"s3://{store.bucket}/runs/1").put(str(src))


def _run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_no_credentials_says_which_variables(moto_server: MotoS3Server, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FITSCRIBE_", "MLFLOW_"))}
    env.update(AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true", AWS_DEFAULT_REGION="us-east-1",
               MLFLOW_S3_ENDPOINT_URL=moto_server.endpoint_url)
    code = ("from fitscribe.backends import get_artifact_store\n"
            "from fitscribe.errors import ConfigError\n"
            "try:\n    get_artifact_store('s3://any-bucket/x').list()\n"
            "except ConfigError as exc:\n    print(exc)\n")
    job = _run_python(code, env)
    assert job.returncode == 0, job.stderr
    assert "no AWS credentials were found" in job.stdout and "AWS_ACCESS_KEY_ID" in job.stdout


def test_importing_and_building_the_store_loads_no_boto3() -> None:
    code = ("import sys, fitscribe\nfrom fitscribe.backends import get_artifact_store\n"
            "get_artifact_store('s3://bucket/prefix')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 's3transfer')))")
    job = _run_python(code, dict(os.environ))
    assert job.returncode == 0, job.stderr
    assert job.stdout.strip() == "[]"


# -- the progress line through the CLI helpers ---------------------------------------------------

class _Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_download_and_upload_draw_progress_on_a_terminal(store: S3ArtifactStore, tmp_path: Path) -> None:
    from fitscribe._progress import download, upload

    big = _big_file(tmp_path / "big.bin", 9 * MiB)
    terminal = _Terminal()
    upload(store, str(big), "model", stream=terminal)
    assert terminal.getvalue().startswith("\rbig.bin  ") and "9.0 MiB / 9.0 MiB  100%" in terminal.getvalue()
    assert terminal.getvalue().endswith("\n")
    terminal = _Terminal()
    local = download(store, "model", str(tmp_path / "back"), stream=terminal)
    assert _sha(Path(local, "big.bin")) == _sha(big)
    assert "\rmodel  " in terminal.getvalue() and "9.0 MiB / 9.0 MiB  100%" in terminal.getvalue()
    quiet = io.StringIO()
    download(store, "model/big.bin", str(tmp_path / "quiet"), stream=quiet)
    assert quiet.getvalue() == "" and _sha(tmp_path / "quiet" / "big.bin") == _sha(big)


def test_cli_upload_and_download(bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import fitscribe
    from fitscribe.cli import main

    tracking = str(tmp_path / "store")
    client = fitscribe.Client(tracking, artifact_uri=f"s3://{bucket}/cli")
    run_id = client.create_run(client.create_experiment("cli-s3")).info.run_id
    client.close()
    src = _tree(tmp_path)
    assert main(["artifacts", "upload", "--tracking-uri", tracking, "-r", run_id, str(src), "-p", "outputs"]) == 0
    assert main(["artifacts", "download", "--tracking-uri", tracking, "-r", run_id, "-p", "outputs/plots",
                 "-d", str(tmp_path / "dst")]) == 0
    printed = capsys.readouterr()
    assert printed.out.splitlines()[-1] == str(tmp_path / "dst" / "plots") and printed.err == ""
    assert (tmp_path / "dst" / "plots" / "loss.png").read_bytes() == (src / "plots" / "loss.png").read_bytes()
    assert main(["artifacts", "upload", "--tracking-uri", tracking, "-r", run_id, str(src), "-p", "../up"]) == 1
    assert "climbs out" in capsys.readouterr().err


# -- the tracking server with an S3 artifact destination -----------------------------------------

MLFLOW_SCRIPT = '''
import json, os, sys, tempfile
import mlflow
from mlflow import MlflowClient

out_path, fitscribe_run, with_model = sys.argv[1], sys.argv[2], sys.argv[3] == "model"
out = {}
mlflow.set_experiment("mlflow-via-s3")
with mlflow.start_run() as run:
    folder = tempfile.mkdtemp()
    with open(os.path.join(folder, "hello.txt"), "w") as handle:
        handle.write("hello from mlflow\\n")
    mlflow.log_artifact(os.path.join(folder, "hello.txt"), artifact_path="notes")
    mlflow.log_dict({"a": 1}, "config/params.json")
    if with_model:
        from sklearn.linear_model import LogisticRegression
        X, y = [[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1]
        # Requirements given (MLflow would infer them by loading the model in a new python) and cloudpickle, not
        # MLflow's default skops, whose load check imports every scikit-learn module and torch (4-5 s CPU).
        info = mlflow.sklearn.log_model(LogisticRegression().fit(X, y), name="model",
                                        pip_requirements=["scikit-learn"], serialization_format="cloudpickle")
        out["predicted"] = mlflow.pyfunc.load_model(f"models:/{info.model_id}").predict(X).tolist()
out.update({"run_id": run.info.run_id, "experiment_id": run.info.experiment_id, "artifact_uri": run.info.artifact_uri})
out["listing"] = sorted(f.path for f in MlflowClient().list_artifacts(run.info.run_id))
local = mlflow.artifacts.download_artifacts(run_id=fitscribe_run, artifact_path="data/table.csv")
out["fitscribe_file"] = open(local).read()
json.dump(out, open(out_path, "w"))
'''


def _keys(server: MotoS3Server, bucket: str, prefix: str) -> list[str]:
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", ()))


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_server_proxies_artifacts_to_s3(backend: str, request: pytest.FixtureRequest, bucket: str,
                                        s3_env: MotoS3Server, tmp_path: Path) -> None:
    import json

    import fitscribe
    from fitscribe.server import create_app
    from fitscribe.server.run import ThreadedServer

    from _mlflow_support import mlflow_python, run_mlflow

    mlflow_python()  # skips (fails in CI) without MLflow's python
    tracking = str(tmp_path / "store") if backend == "sqlite" else request.getfixturevalue("postgresql_uri")
    table = tmp_path / "table.csv"
    table.write_text("a,b\n1,2\n")
    big = _big_file(tmp_path / "weights.bin", 10 * MiB)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "FITSCRIBE_", "AWS_"))}
    with ThreadedServer(create_app(tracking, f"s3://{bucket}/dest")) as server:
        client = fitscribe.Client(server.url)
        exp_id = client.create_experiment("fitscribe-via-s3")
        run_id = client.create_run(exp_id).info.run_id
        client.log_artifact(run_id, str(table), "data")
        client.log_artifact(run_id, str(big), "model")
        env.update(MLFLOW_TRACKING_URI=server.url, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true",
                   MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")
        result = tmp_path / "seen.json"
        model = "model" if backend == "sqlite" else "-"
        job = run_mlflow(["-c", MLFLOW_SCRIPT, str(result), run_id, model], cwd=tmp_path, env=env, timeout=300)
        assert job.returncode == 0, f"MLflow's client failed:\n{job.stdout}\n{job.stderr}"
        seen = json.loads(result.read_text())
        theirs = client.download_artifacts(seen["run_id"], "notes/hello.txt", str(tmp_path / "dl"))
        ours = client.download_artifacts(run_id, "model/weights.bin", str(tmp_path / "dl"))
        from fitscribe._progress import download

        terminal = _Terminal()  # the CLI's download through the proxy: streamed with a progress line
        drawn = download(get_artifact_store(client.get_artifact_uri(run_id)), "model", str(tmp_path / "cli"),
                         stream=terminal)
        assert [i.path for i in client.list_artifacts(seen["run_id"])] == ["config", "notes"]
        client.close()
    assert Path(theirs).read_text() == "hello from mlflow\n" and _sha(ours) == _sha(big)
    assert _sha(Path(drawn, "weights.bin")) == _sha(big) and "10.0 MiB / 10.0 MiB  100%" in terminal.getvalue()
    assert seen["fitscribe_file"] == "a,b\n1,2\n" and seen["listing"] == ["config", "notes"]
    if backend == "sqlite":  # an MLflow 3 logged model: its files and its record in S3 (once: it is slow)
        assert seen["predicted"] == [0, 0, 1, 1]
        models = f"dest/{seen['experiment_id']}/models/"
        assert any(k.endswith("/artifacts/MLmodel") for k in _keys(s3_env, bucket, models))
    assert seen["artifact_uri"] == f"mlflow-artifacts:/{seen['experiment_id']}/{seen['run_id']}/artifacts"
    theirs_root, ours_root = f"dest/{seen['experiment_id']}/{seen['run_id']}/artifacts", f"dest/{exp_id}/{run_id}/artifacts"
    assert _keys(s3_env, bucket, theirs_root) == [f"{theirs_root}/config/params.json", f"{theirs_root}/notes/hello.txt"]
    assert _keys(s3_env, bucket, ours_root) == [f"{ours_root}/data/table.csv", f"{ours_root}/model/weights.bin"]
    etag = s3_env.client().head_object(Bucket=bucket, Key=f"{ours_root}/model/weights.bin")["ETag"]
    assert etag.strip('"').endswith("-2")  # the proxy uploaded 10 MiB in two parts


def test_without_the_proxy_clients_write_to_s3(bucket: str, s3_env: MotoS3Server, tmp_path: Path) -> None:
    import httpx

    import fitscribe
    from fitscribe.server import create_app
    from fitscribe.server.run import ThreadedServer

    src = _tree(tmp_path)
    app = create_app(str(tmp_path / "store"), f"s3://{bucket}/direct", serve_artifacts=False)
    with ThreadedServer(app) as server:
        client = fitscribe.Client(server.url)
        exp_id = client.create_experiment("direct")
        run = client.create_run(exp_id)
        run_id = run.info.run_id
        assert run.info.artifact_uri == f"s3://{bucket}/direct/{exp_id}/{run_id}/artifacts"
        client.log_artifacts(run_id, str(src), "outputs")
        assert [i.path for i in client.list_artifacts(run_id, "outputs")] == ["outputs/notes.txt", "outputs/plots"]
        back = client.download_artifacts(run_id, "outputs/notes.txt", str(tmp_path / "dl"))
        proxy = httpx.get(f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{exp_id}/{run_id}/artifacts/outputs/notes.txt")
        client.close()
    assert Path(back).read_text() == "hello s3\n"
    root = f"direct/{exp_id}/{run_id}/artifacts/outputs"
    assert _keys(s3_env, bucket, "direct/") == [f"{root}/notes.txt", f"{root}/plots/loss.png"]
    assert proxy.status_code == 404 and "--no-serve-artifacts" in proxy.json()["message"]
