"""Forked children under autolog exit promptly (issue 11 item 4, the finisher's part).

A child made by ``fork`` inherits the parent's count of pending background work but not the
finisher thread doing it; before ``os.register_at_fork`` reset them it waited for that thread at
exit, forever. Each scenario runs as a user's script in a subprocess with a timeout, so a hang
fails the test instead of hanging the suite. The parent's finisher is held busy by a gate while
the children are forked, so the children always inherit pending work.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _require import require_module

PRELUDE = """
import sys, threading
import fitscribe
from fitscribe.autolog import _session
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

fitscribe.set_tracking_uri(sys.argv[1])
fitscribe.autolog()
X, y = make_classification(n_samples=60, n_features=4, random_state=0)
LogisticRegression().fit(X, y)  # the store, its connections and the finisher are in use
gate = threading.Event()
_session.DEFERRED.submit(lambda: gate.wait(120))  # pending work the children must not wait for
"""


def _run(script: str, tmp_path: Path, timeout: float = 120) -> str:
    """Run PRELUDE + script in a new interpreter; fail if it hangs, fails or does not print OK."""
    code = PRELUDE + textwrap.dedent(script)
    try:
        done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "store")], cwd=tmp_path,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the script hung for {timeout} s (a forked child waiting at exit?): {exc.stderr!r}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("OK"), done.stdout + done.stderr[-3000:]
    return done.stdout


def test_multiprocessing_fork_child_fits_reads_and_exits(tmp_path: Path) -> None:
    out = _run("""
        import multiprocessing

        def child():
            from fitscribe import _pending
            assert _pending.pending() == 0, _pending.pending()
            LogisticRegression(C=2.0).fit(X, y)
            run = fitscribe.last_active_run()
            assert run.info.status == "FINISHED" and "training_score" in run.data.metrics, run

        process = multiprocessing.get_context("fork").Process(target=child)
        process.start()
        process.join(30)
        alive = process.is_alive()
        if alive:
            process.kill()
            process.join()
        gate.set()
        assert not alive, "the forked child did not exit within 30 s"
        assert process.exitcode == 0, process.exitcode
        runs = fitscribe.search_runs(output_format="list")
        print(sorted(r.data.params["C"] for r in runs), {r.info.status for r in runs})
        print("OK")
    """, tmp_path)
    assert "['1.0', '2.0']" in out and "{<RunStatus.FINISHED: 'FINISHED'>}" in out


def test_joblib_workers_under_autolog(tmp_path: Path) -> None:
    out = _run("""
        from joblib import Parallel, delayed

        def fit_one(c):
            LogisticRegression(C=c).fit(X, y)
            return fitscribe.last_active_run().info.status.value

        # joblib's fork-based pool: each worker is forked while the parent's finisher is busy
        statuses = Parallel(n_jobs=2, backend="multiprocessing")(delayed(fit_one)(c) for c in (3.0, 4.0, 5.0, 6.0))
        gate.set()
        runs = fitscribe.search_runs(output_format="list")
        print(statuses, sorted(r.data.params["C"] for r in runs))
        print("OK")
    """, tmp_path)
    assert "['FINISHED', 'FINISHED', 'FINISHED', 'FINISHED'] ['1.0', '3.0', '4.0', '5.0', '6.0']" in out


@pytest.mark.filterwarnings(r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning")
def test_torch_dataloader_workers_inside_a_lightning_fit_exit_on_their_own(tmp_path: Path) -> None:
    require_module("torch")
    require_module("lightning.pytorch")
    out = _run("""
        import warnings
        import multiprocessing.context
        import torch
        import lightning.pytorch as pl

        warnings.filterwarnings("ignore")
        WORKERS, TERMINATED = [], []

        class Recorded(multiprocessing.context.ForkProcess):
            def start(self):
                WORKERS.append(self)
                super().start()

            def terminate(self):  # torch waits 5 s for a worker to exit, then terminates it
                TERMINATED.append(self.pid)
                super().terminate()

        class RecordingFork(multiprocessing.context.ForkContext):
            Process = Recorded

        class Tiny(pl.LightningModule):
            def __init__(self):
                super().__init__()
                self.net = torch.nn.Linear(4, 1)

            def training_step(self, batch, batch_idx):
                loss = torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])
                self.log("train_loss", loss, on_step=False, on_epoch=True)
                return loss

            def configure_optimizers(self):
                return torch.optim.SGD(self.parameters(), lr=0.1)

        data = torch.utils.data.TensorDataset(torch.randn(32, 4), torch.randn(32, 1))
        loader = torch.utils.data.DataLoader(data, batch_size=8, num_workers=2, multiprocessing_context=RecordingFork())
        trainer = pl.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, accelerator="cpu")
        trainer.fit(Tiny(), loader)
        for worker in WORKERS:
            worker.join(30)
        gate.set()
        codes = [worker.exitcode for worker in WORKERS]
        print(codes, "terminated:", TERMINATED)
        assert codes == [0, 0, 0, 0] and TERMINATED == [], "each worker must exit by itself"
        run = fitscribe.last_active_run()
        assert run.info.status == "FINISHED" and "train_loss" in run.data.metrics
        print("OK")
    """, tmp_path, timeout=240)
    assert "[0, 0, 0, 0] terminated: []" in out
