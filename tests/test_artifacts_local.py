"""Tests of the ``file`` artifact store, on real files in ``tmp_path``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fitscribe.backends import ArtifactStore, FileInfo, get_artifact_store
from fitscribe.backends.artifacts_local import LocalArtifactStore
from fitscribe.errors import BackendError, ConfigError, FitscribeWarning, InvalidValueError, NotFoundError
from fitscribe.uri import path_to_file_uri


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "artifacts"


@pytest.fixture
def store(root: Path) -> LocalArtifactStore:
    return LocalArtifactStore(str(root))


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """A local folder to log: a.txt, sub/b.txt, sub/deeper/c.bin and an empty folder."""
    folder = tmp_path / "src"
    (folder / "sub" / "deeper").mkdir(parents=True)
    (folder / "empty").mkdir()
    (folder / "a.txt").write_text("alpha")
    (folder / "sub" / "b.txt").write_text("beta")
    (folder / "sub" / "deeper" / "c.bin").write_bytes(bytes(range(256)))
    return folder


def _write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


def _all_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


# -- construction ---------------------------------------------------------------------------------


def test_constructor_does_no_io(root: Path) -> None:
    store = LocalArtifactStore(str(root))
    assert not root.exists()
    assert store.list() == []
    assert not root.exists()


def test_file_uri_and_registry(root: Path, tmp_path: Path) -> None:
    uri = path_to_file_uri(str(tmp_path / "with space"))
    store = get_artifact_store(uri)
    assert isinstance(store, LocalArtifactStore)
    assert isinstance(store, ArtifactStore)
    assert store.root == str(tmp_path / "with space")
    store.put(str(_write(tmp_path / "x.txt", "x")))
    assert (tmp_path / "with space" / "x.txt").read_text() == "x"


def test_empty_root_refused() -> None:
    with pytest.raises(ConfigError, match="empty"):
        LocalArtifactStore("")


def test_remote_file_uri_refused() -> None:
    with pytest.raises(InvalidValueError, match="host 'server'"):
        LocalArtifactStore("file://server/share")


# -- put ------------------------------------------------------------------------------------------


def test_put_file_at_root_and_under_path(store: LocalArtifactStore, root: Path, tmp_path: Path) -> None:
    local = _write(tmp_path / "model.txt", "weights")
    store.put(str(local))
    store.put(str(local), "models/best")
    assert (root / "model.txt").read_text() == "weights"
    assert (root / "models" / "best" / "model.txt").read_text() == "weights"


def test_put_directory_copies_contents_recursively(store: LocalArtifactStore, root: Path, src: Path) -> None:
    store.put(str(src), "data")
    assert _all_files(root) == ["data/a.txt", "data/sub/b.txt", "data/sub/deeper/c.bin"]
    assert (root / "data" / "sub" / "deeper" / "c.bin").read_bytes() == bytes(range(256))
    assert (root / "data" / "empty").is_dir()


def test_put_directory_at_root(store: LocalArtifactStore, root: Path, src: Path) -> None:
    store.put(str(src))
    assert _all_files(root) == ["a.txt", "sub/b.txt", "sub/deeper/c.bin"]


def test_put_replaces_existing_file(store: LocalArtifactStore, root: Path, tmp_path: Path) -> None:
    store.put(str(_write(tmp_path / "one" / "f.txt", "old")))
    store.put(str(_write(tmp_path / "two" / "f.txt", "new")))
    assert (root / "f.txt").read_text() == "new"
    assert os.listdir(root) == ["f.txt"]


def test_put_normalises_artifact_path(store: LocalArtifactStore, root: Path, tmp_path: Path) -> None:
    store.put(str(_write(tmp_path / "f.txt", "x")), "a/./b//")
    assert (root / "a" / "b" / "f.txt").is_file()


def test_put_missing_local_path(store: LocalArtifactStore, tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.txt")
    with pytest.raises(NotFoundError, match="local path .*nope.txt.* does not exist"):
        store.put(missing)


def test_put_keeps_file_mode(store: LocalArtifactStore, root: Path, tmp_path: Path) -> None:
    script = _write(tmp_path / "run.sh", "#!/bin/sh\n")
    script.chmod(0o755)
    store.put(str(script))
    assert (root / "run.sh").stat().st_mode & 0o777 == 0o755


def test_put_directory_into_itself_refused(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    _write(folder / "a.txt", "a")
    store = LocalArtifactStore(str(folder / "artifacts"))
    with pytest.raises(InvalidValueError, match="lies inside it"):
        store.put(str(folder))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need POSIX")
def test_failed_copy_leaves_old_artifact_and_no_temp_file(
    store: LocalArtifactStore, root: Path, tmp_path: Path
) -> None:
    store.put(str(_write(tmp_path / "ok" / "f.txt", "old")))
    pipe = tmp_path / "bad" / "f.txt"
    pipe.parent.mkdir()
    os.mkfifo(pipe)  # shutil refuses to copy a named pipe: a real copy failure
    with pytest.raises(BackendError, match="named pipe") as info:
        store.put(str(pipe))
    assert isinstance(info.value.__cause__, OSError)
    assert (root / "f.txt").read_text() == "old"
    assert os.listdir(root) == ["f.txt"]


def test_put_leaves_no_temp_files(store: LocalArtifactStore, root: Path, src: Path) -> None:
    store.put(str(src))
    store.put(str(src))
    names = [p.name for p in root.rglob("*")]
    assert not [n for n in names if n.startswith(".fitscribe-tmp-")]


def test_unicode_and_spaces(store: LocalArtifactStore, root: Path, tmp_path: Path) -> None:
    local = _write(tmp_path / "résumé final ✓.txt", "ünïcode ✓")
    store.put(str(local), "dossier à/sous dossier")
    rel = "dossier à/sous dossier/résumé final ✓.txt"
    assert store.list("dossier à") == [FileInfo("dossier à/sous dossier", True, None)]
    assert b"".join(store.open(rel)).decode("utf-8") == "ünïcode ✓"
    out = store.get(rel, str(tmp_path / "out dir"))
    assert Path(out).read_text(encoding="utf-8") == "ünïcode ✓"
    store.delete("dossier à")
    assert store.list() == []


# -- get ------------------------------------------------------------------------------------------


def test_get_file(store: LocalArtifactStore, src: Path, tmp_path: Path) -> None:
    store.put(str(src), "data")
    dst = tmp_path / "download" / "new"
    out = store.get("data/sub/b.txt", str(dst))
    assert out == str(dst / "b.txt")
    assert Path(out).read_text() == "beta"


def test_get_folder(store: LocalArtifactStore, src: Path, tmp_path: Path) -> None:
    store.put(str(src), "data")
    out = store.get("data/sub", str(tmp_path / "dl"))
    assert out == str(tmp_path / "dl" / "sub")
    assert _all_files(Path(out)) == ["b.txt", "deeper/c.bin"]


def test_get_root(store: LocalArtifactStore, src: Path, tmp_path: Path) -> None:
    store.put(str(src))
    out = store.get("", str(tmp_path / "dl"))
    assert out == str(tmp_path / "dl")
    assert _all_files(Path(out)) == ["a.txt", "sub/b.txt", "sub/deeper/c.bin"]
    assert (Path(out) / "empty").is_dir()


def test_get_missing(store: LocalArtifactStore, src: Path, tmp_path: Path) -> None:
    store.put(str(src), "data")
    with pytest.raises(NotFoundError, match=r"'data/nope.txt'.*list the folder 'data'"):
        store.get("data/nope.txt", str(tmp_path / "dl"))
    assert not (tmp_path / "dl").exists()


def test_get_root_before_anything_logged(store: LocalArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="nothing has been logged"):
        store.get("", str(tmp_path / "dl"))


# -- list -----------------------------------------------------------------------------------------


def test_list_root_and_subfolder(store: LocalArtifactStore, src: Path) -> None:
    store.put(str(src), "data")
    store.put(str(src / "a.txt"))
    assert store.list() == [FileInfo("a.txt", False, 5), FileInfo("data", True, None)]
    assert store.list(None) == store.list("")
    assert store.list("data") == [
        FileInfo("data/a.txt", False, 5),
        FileInfo("data/empty", True, None),
        FileInfo("data/sub", True, None),
    ]
    assert store.list("data/sub/deeper/") == [FileInfo("data/sub/deeper/c.bin", False, 256)]


def test_list_missing_path_or_file_is_empty(store: LocalArtifactStore, src: Path) -> None:
    store.put(str(src))
    assert store.list("nope") == []
    assert store.list("a.txt") == []


# -- open -----------------------------------------------------------------------------------------


def test_open_streams_in_1_mib_chunks(store: LocalArtifactStore, tmp_path: Path) -> None:
    data = os.urandom(LocalArtifactStore.CHUNK_SIZE * 2 + 10)
    store.put(str(_write(tmp_path / "big.bin", data)))
    chunks = list(store.open("big.bin"))
    assert [len(c) for c in chunks] == [1024 * 1024, 1024 * 1024, 10]
    assert b"".join(chunks) == data


def test_open_empty_file(store: LocalArtifactStore, tmp_path: Path) -> None:
    store.put(str(_write(tmp_path / "empty.txt", b"")))
    assert list(store.open("empty.txt")) == []


def test_open_checks_eagerly(store: LocalArtifactStore, src: Path) -> None:
    store.put(str(src))
    with pytest.raises(NotFoundError, match="'nope.txt'"):
        store.open("nope.txt")
    with pytest.raises(InvalidValueError, match="is a folder"):
        store.open("sub")


def test_open_partially_consumed_then_closed(store: LocalArtifactStore, tmp_path: Path) -> None:
    store.put(str(_write(tmp_path / "big.bin", bytes(LocalArtifactStore.CHUNK_SIZE + 1))))
    chunks = store.open("big.bin")
    assert len(next(chunks)) == LocalArtifactStore.CHUNK_SIZE
    chunks.close()  # type: ignore[attr-defined]  # closes the file; no ResourceWarning


# -- delete ---------------------------------------------------------------------------------------


def test_delete_file_folder_and_all(store: LocalArtifactStore, root: Path, src: Path) -> None:
    store.put(str(src))
    store.delete("a.txt")
    assert [f.path for f in store.list()] == ["empty", "sub"]
    store.delete("sub/deeper")
    assert store.list("sub") == [FileInfo("sub/b.txt", False, 4)]
    store.delete()
    assert store.list() == []
    assert not root.exists()


def test_delete_missing_is_harmless(store: LocalArtifactStore) -> None:
    store.delete("nope")
    store.delete()
    store.delete()


def test_delete_symlink_removes_link_only(store: LocalArtifactStore, root: Path, tmp_path: Path) -> None:
    outside = _write(tmp_path / "outside" / "keep.txt", "keep")
    root.mkdir()
    (root / "link").symlink_to(outside.parent, target_is_directory=True)
    store.delete("link")
    assert not (root / "link").exists()
    assert outside.read_text() == "keep"


# -- local_path -----------------------------------------------------------------------------------


def test_local_path(store: LocalArtifactStore, root: Path) -> None:
    assert store.local_path() == str(root)
    assert store.local_path("plots/a.png") == str(root / "plots" / "a.png")
    assert os.path.isabs(LocalArtifactStore("relative/dir").local_path())


# -- paths that escape the root -------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["../x", "a/../../x", "/etc/passwd", "C:\\evil"])
def test_escaping_paths_refused_everywhere(store: LocalArtifactStore, bad: str, tmp_path: Path) -> None:
    local = str(_write(tmp_path / "f.txt", "x"))
    calls = [
        lambda: store.put(local, bad),
        lambda: store.get(bad, str(tmp_path / "dl")),
        lambda: store.list(bad),
        lambda: store.delete(bad),
        lambda: store.open(bad),
        lambda: store.local_path(bad),
    ]
    for call in calls:
        with pytest.raises(InvalidValueError, match=r"absolute|climbs out") as info:
            call()
        assert repr(bad) in str(info.value)
        assert "e.g. 'plots/loss.png'" in str(info.value)


def test_any_dotdot_segment_is_refused(store: LocalArtifactStore, root: Path, tmp_path: Path) -> None:
    # check_relative_path refuses every '..' segment, even one that would stay inside the root.
    with pytest.raises(InvalidValueError, match="climbs out"):
        store.put(str(_write(tmp_path / "f.txt", "x")), "a/../b")
    assert not root.exists()


@pytest.fixture
def escaping_links(root: Path, tmp_path: Path) -> Path:
    """A root holding ``out_dir`` and ``out_file``: symlinks to a folder outside the root."""
    secret = _write(tmp_path / "secret" / "key.txt", "hunter2")
    root.mkdir()
    (root / "out_dir").symlink_to(secret.parent, target_is_directory=True)
    (root / "out_file").symlink_to(secret)
    _write(root / "fine.txt", "fine")
    return secret


def test_symlink_escape_refused_on_read(
    store: LocalArtifactStore, escaping_links: Path, tmp_path: Path
) -> None:
    dl = str(tmp_path / "dl")
    for call in [
        lambda: store.get("out_file", dl),
        lambda: store.get("out_dir/key.txt", dl),
        lambda: store.open("out_file"),
        lambda: store.open("out_dir/key.txt"),
        lambda: store.list("out_dir"),
        lambda: store.local_path("out_dir/key.txt"),
    ]:
        with pytest.raises(InvalidValueError, match="symlink .*outside the artifact root") as info:
            call()
        assert str(escaping_links.parent) in str(info.value)
    assert not Path(dl, "key.txt").exists()


def test_symlink_escape_inside_a_downloaded_folder(
    store: LocalArtifactStore, root: Path, escaping_links: Path, tmp_path: Path
) -> None:
    with pytest.warns(FitscribeWarning, match="symlink leading outside the artifact root") as caught:
        store.get("", str(tmp_path / "dl"))  # the links are skipped, the rest is downloaded (issue 16)
    assert sorted(str(w.message).split("'")[1] for w in caught) == ["out_dir", "out_file"]
    assert sorted(os.listdir(tmp_path / "dl")) == ["fine.txt"]


def test_symlink_escape_refused_on_write(
    store: LocalArtifactStore, escaping_links: Path, tmp_path: Path
) -> None:
    with pytest.raises(InvalidValueError, match="outside the artifact root"):
        store.put(str(_write(tmp_path / "f.txt", "x")), "out_dir")
    with pytest.raises(InvalidValueError, match="outside the artifact root"):
        store.delete("out_dir/key.txt")
    assert os.listdir(escaping_links.parent) == ["key.txt"]


def test_list_leaves_out_escaping_links(store: LocalArtifactStore, escaping_links: Path) -> None:
    assert store.list() == [FileInfo("fine.txt", False, 4)]


def test_symlinks_inside_the_root_are_followed(store: LocalArtifactStore, root: Path, tmp_path: Path) -> None:
    _write(root / "real" / "a.txt", "a")
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    assert b"".join(store.open("alias/a.txt")) == b"a"
    assert store.list("alias") == [FileInfo("alias/a.txt", False, 1)]
    out = store.get("alias", str(tmp_path / "dl"))
    assert _all_files(Path(out)) == ["a.txt"]


def test_root_behind_a_symlink_works(tmp_path: Path) -> None:
    real = tmp_path / "real_root"
    real.mkdir()
    (tmp_path / "link_root").symlink_to(real, target_is_directory=True)
    store = LocalArtifactStore(str(tmp_path / "link_root"))
    store.put(str(_write(tmp_path / "f.txt", "x")), "sub")
    assert b"".join(store.open("sub/f.txt")) == b"x"
    store.delete()
    assert real.is_dir() and os.listdir(real) == []


def test_symlink_loop_in_logged_folder_refused(store: LocalArtifactStore, tmp_path: Path) -> None:
    folder = tmp_path / "loop"
    _write(folder / "a.txt", "a")
    (folder / "again").symlink_to(folder, target_is_directory=True)
    with pytest.raises(InvalidValueError, match="symlink loop"):
        store.put(str(folder))


# -- import cost ----------------------------------------------------------------------------------


def test_import_loads_nothing_heavy() -> None:
    code = (
        "import sys, fitscribe.backends.artifacts_local\n"
        "heavy = {'numpy', 'sqlalchemy', 'yaml', 'PIL', 'matplotlib'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
