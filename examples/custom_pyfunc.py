"""Wrap custom logic as a model: a PythonModel with an artifact file and a config, logged,
registered, and loaded back through the registry in a fresh Python process.

    python examples/custom_pyfunc.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

import fitscribe
from fitscribe.flavors import pyfunc


class Thresholder(pyfunc.PythonModel):
    """Flag rows whose score is above a threshold read from an artifact file."""

    def load_context(self, context: pyfunc.PythonModelContext) -> None:
        self.threshold = json.loads(Path(context.artifacts["settings"]).read_text())["threshold"]
        self.label = context.model_config.get("label", "high")

    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201
        return [self.label if score > self.threshold else "ok" for score in model_input["score"]]


settings = Path(tempfile.mkdtemp()) / "settings.json"
settings.write_text(json.dumps({"threshold": 0.7}))

fitscribe.set_experiment("flavors-pyfunc")
with fitscribe.start_run(run_name="thresholder"):
    info = pyfunc.log_model(
        "thresholder",
        python_model=Thresholder(),
        artifacts={"settings": str(settings)},
        model_config={"label": "alert"},
        input_example=pd.DataFrame({"score": [0.2, 0.9]}),
        registered_model_name="thresholder",
    )
print(f"logged {info.model_uri} and registered it as version {info.registered_model_version}")

LOADER = """
import fitscribe
model = fitscribe.flavors.pyfunc.load_model("models:/thresholder/latest")
print(model.predict({"score": [0.1, 0.95, 0.5]}))
"""
out = subprocess.run([sys.executable, "-c", LOADER], capture_output=True, text=True, check=True)
print(f"fresh process, models:/thresholder/latest -> {out.stdout.strip()}")
assert out.stdout.strip() == "['ok', 'alert', 'ok']", out.stdout
