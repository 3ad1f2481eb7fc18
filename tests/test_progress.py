"""The progress line of big transfers: drawn on a terminal only, silent otherwise; the download and
upload helpers on the local store (streamed through ``open()``)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from fitscribe._progress import Progress, download, format_bytes, upload
from fitscribe.backends.artifacts_local import LocalArtifactStore

MiB = 1024 * 1024


class Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().split("\r")[1:]


def test_draws_done_total_percent_rate_and_eta_on_a_terminal() -> None:
    stream, clock = Terminal(), Clock()
    with Progress(100 * MiB, "model.bin", stream=stream, clock=clock) as progress:
        assert _lines(stream) == ["model.bin  0 B / 100.0 MiB    0%  0 B/s  ETA -:--"]  # drawn at once
        clock.now += 2
        progress.update(25 * MiB)
        assert _lines(stream)[-1] == "model.bin  25.0 MiB / 100.0 MiB   25%  12.5 MiB/s  ETA 0:06"
        clock.now += 0.05
        progress.update(MiB)  # within the redraw interval: nothing drawn
        assert len(_lines(stream)) == 2
        clock.now += 1
        progress.update(74 * MiB)
    lines = _lines(stream)
    assert lines[-2].startswith("model.bin  100.0 MiB / 100.0 MiB  100%")
    assert lines[-1] == "model.bin  100.0 MiB / 100.0 MiB  100%  32.8 MiB/s  in 0:03\n"  # the line ends
    assert progress.done == 100 * MiB


def test_a_shorter_line_wipes_the_longer_one_before_it() -> None:
    stream, clock = Terminal(), Clock()
    progress = Progress(20 * MiB, stream=stream, clock=clock, interval=0)
    clock.now += 1
    progress.update(10 * MiB)
    assert _lines(stream)[-1] == "10.0 MiB / 20.0 MiB   50%  10.0 MiB/s  ETA 0:01"
    clock.now += 1
    progress.update(10 * MiB)
    assert _lines(stream)[-1] == "20.0 MiB / 20.0 MiB  100%  10.0 MiB/s  in 0:02 "  # padded to the previous width


def test_slow_transfers_show_hours() -> None:
    stream, clock = Terminal(), Clock()
    progress = Progress(20 * MiB, stream=stream, clock=clock)
    clock.now += 1
    progress.update(1024)
    assert _lines(stream)[-1].endswith("1.0 KiB/s  ETA 5:41:19")


def test_updates_from_several_threads_are_all_counted() -> None:
    import threading

    stream = Terminal()
    with Progress(64 * MiB, "parts", stream=stream, interval=0) as progress:
        workers = [threading.Thread(target=lambda: [progress.update(8 * 1024) for _ in range(1024)]) for _ in range(8)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    assert progress.done == 64 * MiB
    assert _lines(stream)[-1].startswith("parts  64.0 MiB / 64.0 MiB  100%")


def test_silent_when_not_a_terminal_or_small() -> None:
    piped = io.StringIO()
    with Progress(100 * MiB, "x", stream=piped) as progress:
        progress.update(100 * MiB)
    assert piped.getvalue() == "" and not progress.enabled
    terminal = Terminal()
    with Progress(8 * MiB, "small", stream=terminal) as small:
        small.update(8 * MiB)
    assert terminal.getvalue() == "" and small.done == 8 * MiB


def test_format_bytes() -> None:
    assert [format_bytes(n) for n in (0, 1023, 1536, 5 * MiB, 3 * 1024 * MiB)] == [
        "0 B", "1023 B", "1.5 KiB", "5.0 MiB", "3.0 GiB"]


@pytest.fixture
def local_store(tmp_path: Path) -> LocalArtifactStore:
    store = LocalArtifactStore(str(tmp_path / "artifacts"))
    src = tmp_path / "src"
    (src / "deep").mkdir(parents=True)
    (src / "deep" / "a.bin").write_bytes(b"a" * (5 * MiB))
    (src / "b.bin").write_bytes(b"b" * (4 * MiB))
    store.put(str(src), "model")
    return store


def test_download_streams_through_open_with_a_line(local_store: LocalArtifactStore, tmp_path: Path) -> None:
    terminal = Terminal()
    folder = download(local_store, "model", str(tmp_path / "dst"), stream=terminal)
    assert folder == str(tmp_path / "dst" / "model")
    assert Path(folder, "deep", "a.bin").read_bytes() == b"a" * (5 * MiB)
    assert Path(folder, "b.bin").read_bytes() == b"b" * (4 * MiB)
    assert terminal.getvalue().startswith("\rmodel  ") and "9.0 MiB / 9.0 MiB  100%" in terminal.getvalue()
    assert not [p for p in Path(folder).rglob(".fitscribe-download-*")]  # temporary files renamed or removed


def test_download_of_everything_and_of_one_small_file(local_store: LocalArtifactStore, tmp_path: Path) -> None:
    terminal = Terminal()
    root = download(local_store, "", str(tmp_path / "all"), stream=terminal)
    assert root == str(tmp_path / "all") and Path(root, "model", "deep", "a.bin").stat().st_size == 5 * MiB
    assert "\rartifacts  " in terminal.getvalue()
    quiet = Terminal()
    one = download(local_store, "model/b.bin", str(tmp_path / "one"), stream=quiet)
    assert Path(one).read_bytes() == b"b" * (4 * MiB) and quiet.getvalue() == ""  # 4 MiB: too small to draw


def test_upload_to_a_store_without_byte_counts(local_store: LocalArtifactStore, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(b"z" * (9 * MiB))
    terminal = Terminal()
    upload(local_store, str(src), "more", stream=terminal)
    assert terminal.getvalue() == ""  # the local store reports no bytes: no line
    assert [i.path for i in local_store.list("more")] == ["more/big.bin"]
