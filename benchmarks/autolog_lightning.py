"""Lightning autolog overhead: the same 5-epoch fit with and without autolog, in one process.

Figures: ``autolog()`` call time (and whether it imported Lightning); the first autologged fit
(one-off imports: flavors, store); then a small MLP (20 -> 64 -> 1, 10,000 training rows, 2,000
validation rows, batch 64, 5 epochs, one torch thread) fitted bare, autologged (model logged), and
autologged with step metrics every 10 global steps, in a rotating order so that machine noise hits
all alike. "Added" is autologged minus bare until ``fit`` returns (what the training script waits
for); "until a read sees everything" adds the work autolog completes after fit returns (model,
model summary, report, closing the run), as a ``search_runs`` made at once (no ``flush()``) waits for it. Each is given as the median wall time and as
the least CPU time of the process (all threads) over the repeats: other work on a busy machine only
ever adds time, so on a shared machine the CPU minimum is the steadier estimate. Steadiest of all is
autolog's fixed cost, from many 1-epoch, 2-batch fits where it dominates: per-epoch work is a few
reads of ``trainer.callback_metrics``, so this fixed cost is nearly all autolog adds to any fit.

Target (issue 4): < 5% added with the model logged. MLflow, for scale: 5.5x.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from typing import Callable

import _harness as h


def _quiet() -> None:
    import logging
    import warnings

    import torch

    torch.set_num_threads(1)  # one intra-op thread: steadier timings on a small, shared machine
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    warnings.filterwarnings("ignore", message=r"The '\w+_dataloader' does not have many workers")


def _task(p: dict):  # noqa: ANN202
    import lightning.pytorch as pl
    import torch

    class MLP(pl.LightningModule):
        def __init__(self, n_in: int = 20, hidden: int = 64, lr: float = 1e-3) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Sequential(torch.nn.Linear(n_in, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

        def forward(self, x):  # noqa: ANN001, ANN202
            return self.net(x)

        def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN202
            loss = torch.nn.functional.mse_loss(self(batch[0]), batch[1])
            self.log("train_loss", loss, on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch, batch_idx):  # noqa: ANN001, ANN202
            self.log("val_loss", torch.nn.functional.mse_loss(self(batch[0]), batch[1]))

        def configure_optimizers(self):  # noqa: ANN202
            return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(p["rows"] + p["rows"] // 5, 20, generator=gen)
    y = x @ torch.randn(20, 1, generator=gen) + 0.1 * torch.randn(len(x), 1, generator=gen)
    data = torch.utils.data.TensorDataset(x, y)
    train = torch.utils.data.Subset(data, range(p["rows"]))
    val = torch.utils.data.Subset(data, range(p["rows"], len(data)))
    loader = torch.utils.data.DataLoader

    def fit(tiny: bool = False) -> tuple[float, float]:
        """Fit once (``tiny``: 1 epoch of 2 batches); return (wall s, CPU s of this process, all threads)."""
        torch.manual_seed(0)
        limits = {"max_epochs": 1, "limit_train_batches": 2, "limit_val_batches": 1} if tiny else {"max_epochs": p["epochs"]}
        trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, **limits)
        model = MLP()
        gc.collect()  # the previous fits' garbage is not this fit's cost
        start, cpu = time.perf_counter(), time.process_time()
        trainer.fit(model, loader(train, batch_size=64, shuffle=True), loader(val, batch_size=256))
        return time.perf_counter() - start, time.process_time() - cpu

    return fit


def _enable(lib, step_every: int | None = None) -> None:  # noqa: ANN001
    if step_every is None:
        lib.autolog()
    elif lib.__name__ == "fitscribe":
        lib.autolog.lightning.autolog(log_every_n_step=step_every)
    else:
        lib.pytorch.autolog(log_every_n_step=step_every)


def _disable(lib) -> None:  # noqa: ANN001
    lib.autolog(disable=True)
    if lib.__name__ == "fitscribe":
        lib.autolog.lightning.autolog(disable=True)  # also drops the settings of _enable(step_every=...)


def _flush(lib, took: tuple[float, float]) -> tuple[float, float]:  # noqa: ANN001
    """Read the run back at once (the read waits for autolog's background work); return ``took``
    plus the time (wall, CPU) until the read saw everything."""
    start, cpu = time.perf_counter(), time.process_time()
    h.read_back(lib)
    return took[0] + time.perf_counter() - start, took[1] + time.process_time() - cpu


def _variants(lib, fit) -> dict[str, Callable[[], list[tuple[float, float]]]]:  # noqa: ANN001
    """Each variant: one fit, returning [(wall, CPU)] until fit returns and (for autolog) after the finish."""

    def bare() -> list[tuple[float, float]]:
        return [fit()]

    def auto() -> list[tuple[float, float]]:
        _enable(lib)
        took = fit()
        return [took, _flush(lib, took)]

    def stepped() -> list[tuple[float, float]]:
        _enable(lib, step_every=10)
        return [_flush(lib, fit())]

    return {"bare": bare, "auto": auto, "stepped": stepped}


def workload(bench: h.Bench, p: dict) -> dict:
    lib = h.fluent_lib(bench)
    _quiet()
    start = time.perf_counter()
    lib.autolog()
    out: dict = {"autolog_call_ms": (time.perf_counter() - start) * 1000, "imported_lightning": "lightning" in sys.modules}
    fit = _task(p)
    out["first_fit_s"] = _flush(lib, fit())[0]  # autologged: one-off imports of flavors and store
    variants = _variants(lib, fit)
    names = list(variants)
    times: dict[str, list[list[tuple[float, float]]]] = {name: [] for name in names}
    for repeat in range(p["repeats"]):
        for name in names[repeat % 3:] + names[: repeat % 3]:  # a rotating order: none always goes first
            _disable(lib)
            times[name].append(variants[name]())
    tiny_bare, tiny_auto, tiny_done = [], [], []
    for _ in range(p["tiny_repeats"]):  # autolog's fixed cost per fit: run, params, model, report
        _disable(lib)
        tiny_bare.append(fit(tiny=True)[0])
        _enable(lib)
        took = fit(tiny=True)
        tiny_auto.append(took[0])
        tiny_done.append(_flush(lib, took)[0])
    _disable(lib)
    bare_wall = statistics.median(t[0][0] for t in times["bare"])
    out["fixed_ms"] = (statistics.median(tiny_auto) - statistics.median(tiny_bare)) * 1000
    out["fixed_done_ms"] = (statistics.median(tiny_done) - statistics.median(tiny_bare)) * 1000
    out["fixed_share"] = out["fixed_ms"] / 1000 / bare_wall
    out["fixed_done_share"] = out["fixed_done_ms"] / 1000 / bare_wall
    for kind, index, pick in (("", 0, statistics.median), ("cpu_", 1, min)):
        def best(name: str, stage: int = 0) -> float:
            return pick(t[stage][index] for t in times[name])

        base = best("bare")
        out.update({
            f"{kind}bare_s": base, f"{kind}added_ms": (best("auto") - base) * 1000, f"{kind}ratio": best("auto") / base,
            f"{kind}flushed_ratio": best("auto", 1) / base, f"{kind}step_ratio": best("stepped") / base,
        })
    return out


FIGURES = [
    h.Figure("autolog_call_ms", "autolog() call", "ms", "lower"),
    h.Figure("imported_lightning", "  imported Lightning", "", "info"),
    h.Figure("first_fit_s", "first autologged fit (one-off imports)", "s", "lower"),
    h.Figure("bare_s", "MLP 5 epochs bare fit, median wall time", "s", "info"),
    h.Figure("added_ms", "  added by autolog until fit returns (model logged)", "ms", "lower"),
    h.Figure("ratio", "  autologged / bare", "x", "lower"),
    h.Figure("flushed_ratio", "  autologged until a read sees everything / bare", "x", "lower"),
    h.Figure("step_ratio", "  with step metrics every 10 steps / bare", "x", "lower"),
    h.Figure("fixed_ms", "autolog's fixed cost per fit, until fit returns (2-batch fits)", "ms", "lower"),
    h.Figure("fixed_share", "  as a share of the 5-epoch bare fit above", "x", "lower"),
    h.Figure("fixed_done_ms", "  until a read sees everything", "ms", "lower"),
    h.Figure("fixed_done_share", "  as a share of the 5-epoch bare fit above", "x", "lower"),
    h.Figure("cpu_bare_s", "MLP 5 epochs bare fit, least CPU time", "s", "info"),
    h.Figure("cpu_added_ms", "  added by autolog until fit returns (model logged)", "ms", "lower"),
    h.Figure("cpu_ratio", "  autologged / bare", "x", "lower"),
    h.Figure("cpu_flushed_ratio", "  autologged until a read sees everything / bare", "x", "lower"),
    h.Figure("cpu_step_ratio", "  with step metrics every 10 steps / bare", "x", "lower"),
]

if __name__ == "__main__":
    h.main(__file__, "Lightning autolog overhead (median of fits taken in turns, after a warm-up)", workload, FIGURES,
           lambda quick: {"repeats": 3 if quick else 9, "tiny_repeats": 5 if quick else 15, "epochs": 5,
                         "rows": 2_000 if quick else 10_000})
