"""The REST backend: fitscribe's client of a tracking server (``fitscribe server`` or ``mlflow server``).

- :class:`~fitscribe.backends.rest.store.RestTrackingStore` (factory :func:`create_store`, scheme
  ``http``/``https``): the tracking store and model registry over MLflow's REST API 2.0, with
  metrics, params and tags batched by a background queue (:mod:`.queue`) and kept in a local
  journal (:mod:`.journal`) while the server is unreachable.
- :class:`~fitscribe.backends.rest.artifacts.MlflowArtifactsStore` (factory
  :func:`create_artifact_store`, schemes ``mlflow-artifacts``, ``http``, ``https``): a run's artifacts
  streamed through the server's artifact proxy.

Needs ``httpx``, imported on first use (``pip install "fitscribe[http]"``); importing this package
does not import it.
"""

from __future__ import annotations

from .artifacts import MlflowArtifactsStore, create_artifact_store
from .http import ServerUnavailableError
from .store import RestTrackingStore, create_store

__all__ = ["RestTrackingStore", "MlflowArtifactsStore", "ServerUnavailableError", "create_store", "create_artifact_store"]
