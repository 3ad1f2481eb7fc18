"""The ``Flavor`` contract every model format implements, and what saving and logging return.

A flavor is found by its stable lower-case name in :data:`FLAVORS` (entry-point group
``fitscribe.flavors``); the saved ``MLmodel`` records that name, never a module path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol

from fitscribe._plugins import Registry

if TYPE_CHECKING:  # pragma: no cover
    from fitscribe.flavors.model import Model
    from fitscribe.flavors.signature import ModelSignature

__all__ = ["Flavor", "SavedFlavor", "ModelInfo", "FLAVORS", "AUTO_DETECT_ORDER", "class_modules"]


@dataclass
class SavedFlavor:
    """What a flavor's ``save`` wrote.

    Attributes:
        sections: Flavor name -> configuration block for ``MLmodel``'s ``flavors`` (ours, and
            MLflow's ``python_function``/framework blocks so MLflow's loaders can read the model).
        modules: Top-level modules the model's classes come from (for ``requirements.txt``).
        distributions: Distributions always pinned (the framework, the pickler).
        hashes: sha256 of files the flavor hashed while writing them (relative path -> hex), so
            they are not read again (see :class:`fitscribe.flavors.model.HashingWriter`).
    """

    sections: dict[str, dict[str, Any]]
    modules: set[str] = field(default_factory=set)
    distributions: list[str] = field(default_factory=list)
    hashes: dict[str, str] = field(default_factory=dict)


class Flavor(Protocol):
    """A model format: how to recognise, save, load and predict with one kind of model."""

    name: str
    """Registry name, recorded in ``MLmodel`` (``fitscribe.flavor``)."""
    format_version: int
    """Version of the on-disk layout this flavor writes; a newer one is refused with a clear error."""
    frameworks: tuple[str, ...]
    """Distributions whose installed version is compared with the saved one on load."""

    def handles(self, model: Any) -> bool:
        """Return True when this flavor can save ``model`` (must not import the framework)."""

    def save(self, model: Any, folder: str, options: dict[str, Any]) -> SavedFlavor:
        """Write the model's files into ``folder`` (which exists and is empty)."""

    def load(self, folder: str, descriptor: "Model") -> Any:
        """Return the native model object saved in ``folder``."""

    def predictor(self, native: Any, folder: str, descriptor: "Model") -> Callable[[Any], Any]:
        """Return a function mapping enforced input to the model's prediction."""


@dataclass(frozen=True)
class ModelInfo:
    """What ``log_model`` logged, with the URI to load it back.

    Attributes:
        artifact_path: The model's folder inside the run's artifacts.
        flavors: The ``flavors`` block written to ``MLmodel``.
        model_uri: ``runs:/<run_id>/<artifact_path>``, for ``load_model``.
        model_uuid: Unique id of this saved model.
        run_id: The run the model was logged to.
        utc_time_created: When it was saved (naive UTC).
        signature: The signature, or None.
        saved_input_example_info: How the input example was stored, or None.
        metadata: The user's metadata dict, or None.
        registered_model_version: The version created when ``registered_model_name`` was given.
        descriptor: The full ``MLmodel`` contents.
    """

    artifact_path: str
    flavors: dict[str, Any]
    model_uri: str
    model_uuid: str
    run_id: str
    utc_time_created: str
    signature: "ModelSignature | None"
    saved_input_example_info: dict[str, Any] | None
    metadata: dict[str, Any] | None
    registered_model_version: int | None
    descriptor: "Model"

    @property
    def name(self) -> str:
        """The model's name in its run (its artifact path), as MLflow 3's ``ModelInfo.name``."""
        return self.artifact_path


FLAVORS: Registry[Flavor] = Registry(
    "model flavor",
    "fitscribe.flavors",
    {
        "onnx": "fitscribe.flavors.onnx:FLAVOR",
        "xgboost": "fitscribe.flavors.xgboost:FLAVOR",
        "pytorch": "fitscribe.flavors.pytorch:FLAVOR",
        "sklearn": "fitscribe.flavors.sklearn:FLAVOR",
        "pyfunc": "fitscribe.flavors.pyfunc:FLAVOR",
    },
)

# Most specific first: XGBoost's sklearn wrappers are also scikit-learn estimators.
AUTO_DETECT_ORDER = ("pyfunc", "onnx", "xgboost", "pytorch", "sklearn")

# The framework modules whose classes mark an object as theirs (checked without importing them).
def class_modules(obj: Any) -> set[str]:
    """Return the top-level module names of every class in ``type(obj).__mro__``."""
    return {(getattr(cls, "__module__", "") or "").split(".")[0] for cls in type(obj).__mro__}
