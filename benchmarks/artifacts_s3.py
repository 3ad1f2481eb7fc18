"""S3 artifact transfers: upload and download MB/s of one big file, and how much memory they take.

moto (an S3 emulator, in a child process on loopback) stands in for S3: the rates measure
fitscribe + boto3 + moto on this machine, not a real S3, whose rates depend on the network. What
this shows reliably is memory: the process's peak RSS grows by a bounded amount (parts in flight),
not by the file's size, for direct transfers and through the tracking server's proxy.

    python benchmarks/artifacts_s3.py [--size-mb 256] [--rounds 3] [--quick]

Rounds alternate upload and download; each figure is the median over the rounds.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import statistics
import sys
import tempfile
import time
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MiB = 1024 * 1024


def _rss_mib() -> float:
    """The peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _write(path: str, size: int) -> None:
    block = hashlib.sha256(b"bench").digest() * (MiB // 32)
    with open(path, "wb") as handle:
        for start in range(0, size, MiB):
            handle.write(block[: min(MiB, size - start)])


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _rounds(label: str, size: int, rounds: int, upload: Callable[[], Any], download: Callable[[], Any]) -> None:
    """Alternate uploads and downloads; print median MB/s and the peak RSS growth."""
    before = _rss_mib()
    ups, downs = [], []
    for _ in range(rounds):
        ups.append(_timed(upload))
        downs.append(_timed(download))
    growth = _rss_mib() - before
    mb = size / MiB
    print(f"{label:<28} upload {mb / statistics.median(ups):7.1f} MiB/s   download "
          f"{mb / statistics.median(downs):7.1f} MiB/s   peak RSS growth {growth:6.1f} MiB "
          f"(file {mb:.0f} MiB)", flush=True)


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=256, help="size of the file moved (default 256)")
    parser.add_argument("--rounds", type=int, default=3, help="upload+download rounds (default 3)")
    parser.add_argument("--quick", action="store_true", help="64 MiB, one round")
    args = parser.parse_args()
    size = (64 if args.quick else args.size_mb) * MiB
    rounds = 1 if args.quick else args.rounds

    from fitscribe.testing.s3_server import FAKE_CREDENTIALS, MotoS3Server

    os.environ.update(FAKE_CREDENTIALS)
    with MotoS3Server() as s3, tempfile.TemporaryDirectory(prefix="fitscribe-bench-s3-") as tmp:
        os.environ["MLFLOW_S3_ENDPOINT_URL"] = s3.endpoint_url
        s3.create_bucket("bench")
        source = os.path.join(tmp, "big.bin")
        _write(source, size)
        print(f"S3 transfers of a {size // MiB} MiB file to moto on {s3.endpoint_url} (an emulator, not S3); "
              f"baseline peak RSS {_rss_mib():.0f} MiB", flush=True)

        from fitscribe.backends.artifacts_s3 import S3ArtifactStore

        store = S3ArtifactStore("s3://bench/direct")
        store.list()  # the client and its service model, before measuring
        _rounds("S3ArtifactStore put/get", size, rounds, lambda: store.put(source),
                lambda: store.get("big.bin", os.path.join(tmp, "direct")))
        _proxy(tmp, source, size, rounds)


def _proxy(tmp: str, source: str, size: int, rounds: int) -> None:
    """The same file through `fitscribe server` (a thread here) with an S3 destination."""
    import fitscribe
    from fitscribe.server import create_app
    from fitscribe.server.run import ThreadedServer

    app = create_app(os.path.join(tmp, "store"), "s3://bench/proxy")
    with ThreadedServer(app) as server:
        client = fitscribe.Client(server.url)
        run_id = client.create_run(client.create_experiment("bench")).info.run_id
        client.list_artifacts(run_id)
        _rounds("server proxy (client+server)", size, rounds, lambda: client.log_artifact(run_id, source),
                lambda: client.download_artifacts(run_id, "big.bin", os.path.join(tmp, "proxy")))
        client.close()


if __name__ == "__main__":
    main()
