"""The model registry API of ``Client``: registered models, numbered versions, stages, tags, aliases.

Names and signatures follow ``mlflow.MlflowClient``. The methods live in
:class:`RegistryClientMixin`, which ``Client`` inherits; they call the ``registry`` of the tracking
store (every database store has one).

>>> import tempfile, fitscribe
>>> client = fitscribe.Client(tempfile.mkdtemp())
>>> _ = client.create_registered_model("churn")
>>> client.create_model_version("churn", "runs:/0123456789abcdef0123456789abcdef/model").version
1
>>> client.set_registered_model_alias("churn", "champion", 1)
>>> client.get_model_version_by_alias("churn", "champion").version
1
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from fitscribe.entities import ModelVersion, PagedList, RegisteredModel, RegistryEvent
from fitscribe.errors import InvalidValueError, ModelVersionNotFound, RegistryNotSupportedError

if TYPE_CHECKING:
    from fitscribe.backends import ModelRegistryStore, TrackingStore

__all__ = ["RegistryClientMixin"]


def _str_tags(tags: dict[str, Any] | None) -> dict[str, str]:
    return {k: str(val) for k, val in (tags or {}).items()}


class RegistryClientMixin:
    """Model registry methods of :class:`fitscribe.Client` (needs ``store`` and ``tracking_uri``)."""

    if TYPE_CHECKING:
        tracking_uri: str

        @property
        def store(self) -> TrackingStore: ...

    @property
    def _registry(self) -> "ModelRegistryStore":
        registry = self.store.registry
        if registry is None:
            from fitscribe.uri import redact

            raise RegistryNotSupportedError(
                f"The tracking store {redact(self.tracking_uri)!r} ({type(self.store).__name__}) has no model "
                "registry. Registered models need a database tracking URI: a folder, sqlite:///, "
                "postgresql:// or mysql://."
            )
        return registry

    # -- registered models ------------------------------------------------------------------------
    def create_registered_model(
        self, name: str, tags: dict[str, Any] | None = None, description: str | None = None
    ) -> RegisteredModel:
        """Create a registered model with no versions yet.

        Args:
            name: Unique name, up to 256 characters, without ``/``.
            tags: Tags to set (values are stored as strings).
            description: Free text, up to 5,000 characters.

        Returns:
            The new model.

        Raises:
            AlreadyExistsError: A registered model has this name.
            InvalidValueError: The name, a tag or the description is invalid.
        """
        return self._registry.create_registered_model(name, _str_tags(tags), description)

    def get_registered_model(self, name: str) -> RegisteredModel:
        """Return a registered model with its tags, aliases and latest version per stage.

        Raises:
            ModelNotFound: No registered model has this name.
        """
        return self._registry.get_registered_model(name)

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Rename a registered model; its versions, tags and aliases follow it.

        Returns:
            The renamed model.

        Raises:
            ModelNotFound: No registered model is named ``name``.
            AlreadyExistsError: A registered model is already named ``new_name``.
        """
        return self._registry.rename_registered_model(name, new_name)

    def update_registered_model(self, name: str, description: str | None = None) -> RegisteredModel:
        """Set the description of a registered model (``""`` clears it).

        Returns:
            The updated model.

        Raises:
            ModelNotFound: No registered model has this name.
            InvalidValueError: No description was given.
        """
        if description is None:
            raise InvalidValueError(
                f"Nothing to update on the registered model {name!r}: give a description ('' clears it)."
            )
        return self._registry.update_registered_model(name, description)

    def delete_registered_model(self, name: str) -> None:
        """Delete a registered model with all its versions, tags and aliases (model files are kept).

        Raises:
            ModelNotFound: No registered model has this name.
        """
        self._registry.delete_registered_model(name)

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]:
        """Return one page of registered models.

        Args:
            filter_string: e.g. ``"name LIKE 'churn%' AND tags.team = 'risk'"``; fields are ``name``,
                ``creation_timestamp``, ``last_updated_timestamp`` and ``tags.<key>``.
            max_results: Page size, 1 to 50,000.
            order_by: e.g. ``["last_updated_timestamp DESC"]``; default by name.
            page_token: ``token`` of the previous page.

        Raises:
            InvalidValueError: The filter or order_by is malformed (the message shows where).
        """
        return self._registry.search_registered_models(filter_string, max_results, order_by, page_token)

    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None) -> list[ModelVersion]:
        """Return the newest version in each stage, ordered by version number.

        Args:
            name: The registered model.
            stages: Only these stages (``None``, ``Staging``, ``Production``, ``Archived``; any case);
                all stages when None or empty. The newest version overall is the last item for None.

        Raises:
            ModelNotFound: No registered model has this name.
            InvalidValueError: Unknown stage.
        """
        return self._registry.get_latest_versions(name, stages)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        """Set a tag on a registered model (a new value replaces the old one).

        Raises:
            ModelNotFound: No registered model has this name.
        """
        self._registry.set_registered_model_tag(name, key, str(value))

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Remove a tag from a registered model (nothing happens if it has no such tag).

        Raises:
            ModelNotFound: No registered model has this name.
        """
        self._registry.delete_registered_model_tag(name, key)

    # -- aliases ----------------------------------------------------------------------------------
    def set_registered_model_alias(self, name: str, alias: str, version: int | str) -> None:
        """Point an alias such as ``"champion"`` at a version; an existing alias moves.

        ``models:/<name>@<alias>`` then resolves to that version.

        Raises:
            ModelVersionNotFound: The model has no such version.
            InvalidValueError: The alias has characters other than letters, digits, ``_`` and ``-``,
                is longer than 255 characters, or is reserved (``latest``, ``v<number>``).
        """
        self._registry.set_registered_model_alias(name, alias, version)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        """Remove an alias (nothing happens if the model has no such alias).

        Raises:
            ModelNotFound: No registered model has this name.
        """
        self._registry.delete_registered_model_alias(name, alias)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """Return the version an alias points at.

        Raises:
            ModelNotFound: No registered model has this name.
            ModelVersionNotFound: The model has no such alias (the message lists its aliases).
        """
        return self._registry.get_model_version_by_alias(name, alias)

    # -- model versions ---------------------------------------------------------------------------
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: dict[str, Any] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        await_creation_for: int = 300,
    ) -> ModelVersion:
        """Add the next version (1, 2, ...) to a registered model; it is READY at once.

        Args:
            name: The registered model.
            source: Where the model files are, e.g. ``"runs:/<run_id>/model"``.
            run_id: The run that produced the model.
            tags: Tags to set (values are stored as strings).
            run_link: A link to the run, kept as given.
            description: Free text, up to 5,000 characters.
            await_creation_for: Accepted for MLflow compatibility; creation is synchronous.

        Returns:
            The new version. Numbers are never reused, even after a version is deleted, and
            concurrent callers (threads or processes) always get distinct numbers.

        Raises:
            ModelNotFound: No registered model has this name (create it first).
            InvalidValueError: The source, run id, a tag or the description is invalid.
        """
        from fitscribe.run_context import current_user

        del await_creation_for
        return self._registry.create_model_version(
            name, source, run_id, _str_tags(tags), description, run_link=run_link, user_id=current_user()
        )

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        """Return one version of a registered model.

        Raises:
            ModelNotFound: No registered model has this name.
            ModelVersionNotFound: The model has no such version (never created, or deleted).
        """
        return self._registry.get_model_version(name, version)

    def update_model_version(self, name: str, version: int | str, description: str | None = None) -> ModelVersion:
        """Set the description of a model version (``""`` clears it).

        Returns:
            The updated version.

        Raises:
            ModelVersionNotFound: The model has no such version.
            InvalidValueError: No description was given.
        """
        if description is None:
            raise InvalidValueError(
                f"Nothing to update on version {version} of {name!r}: give a description ('' clears it)."
            )
        return self._registry.update_model_version(name, version, description)

    def delete_model_version(self, name: str, version: int | str) -> None:
        """Delete a model version with its tags and aliases (its model files are kept).

        Raises:
            ModelVersionNotFound: The model has no such version.
        """
        self._registry.delete_model_version(name, version)

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = 10000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        """Return one page of model versions.

        Args:
            filter_string: e.g. ``"name = 'churn' AND version_number > 2"`` or ``"run_id = '...'"``;
                fields are ``name``, ``version_number``, ``run_id``, ``source`` (or ``source_path``),
                ``current_stage``, ``status``, ``user_id``, the timestamps and ``tags.<key>``.
            max_results: Page size, 1 to 50,000.
            order_by: e.g. ``["creation_timestamp DESC"]``; default by name, then newest version.
            page_token: ``token`` of the previous page.

        Raises:
            InvalidValueError: The filter or order_by is malformed (the message shows where).
        """
        return self._registry.search_model_versions(filter_string, max_results, order_by, page_token)

    def transition_model_version_stage(
        self, name: str, version: int | str, stage: str, archive_existing_versions: bool = False,
        comment: str | None = None,
    ) -> ModelVersion:
        """Move a version to a stage: ``None``, ``Staging``, ``Production`` or ``Archived``.

        Args:
            name: The registered model.
            version: The version to move.
            stage: The target stage (any case).
            archive_existing_versions: Also move the model's other versions in that stage to
                Archived (only with Staging or Production).
            comment: Why, kept with the move in the audit trail (see
                :meth:`get_model_version_history`).

        Returns:
            The moved version.

        Raises:
            ModelVersionNotFound: The model has no such version.
            InvalidValueError: Unknown stage, or archiving asked for with another stage.
        """
        if comment is None:
            return self._registry.transition_model_version_stage(name, version, stage, archive_existing_versions)
        return self._registry.transition_model_version_stage(
            name, version, stage, archive_existing_versions, comment=comment
        )

    # -- audit trail ------------------------------------------------------------------------------
    def get_model_version_history(self, name: str, version: int | str) -> list[RegistryEvent]:
        """Return the audit trail of one model version, newest first.

        Each :class:`~fitscribe.entities.RegistryEvent` says who (the OS user of an embedded store,
        the authenticated identity on a server) did what and when, with old -> new values and the
        comment of a stage transition. The trail outlives the version's deletion.

        Raises:
            InvalidValueError: The name or version is invalid.
        """
        return self._registry.get_model_version_history(name, version)

    def get_registered_model_history(self, name: str) -> list[RegistryEvent]:
        """Return the audit trail of a registered model and all its versions, newest first.

        Raises:
            InvalidValueError: The name is invalid.
        """
        return self._registry.get_registered_model_history(name)

    def _version_of(self, name: str, version: int | str | None, stage: str | None) -> int | str:
        if (version is None) == (stage is None):
            raise InvalidValueError("Give exactly one of version and stage to pick the model version.")
        if version is not None:
            return version
        found = self.get_latest_versions(name, [str(stage)])
        if not found:
            raise ModelVersionNotFound(f"The registered model {name!r} has no version in stage {stage!r}.")
        return found[-1].version

    def set_model_version_tag(
        self, name: str, version: int | str | None = None, key: str | None = None, value: Any = None,
        stage: str | None = None,
    ) -> None:
        """Set a tag on a model version, given by number or (its newest version in) a stage.

        Raises:
            ModelVersionNotFound: The model has no such version.
            InvalidValueError: Both or neither of ``version`` and ``stage``, or an invalid key or value.
        """
        if key is None or value is None:
            raise InvalidValueError(f"Give the key and the value of the tag to set on a version of {name!r}.")
        self._registry.set_model_version_tag(name, self._version_of(name, version, stage), key, str(value))

    def delete_model_version_tag(
        self, name: str, version: int | str | None = None, key: str | None = None, stage: str | None = None
    ) -> None:
        """Remove a tag from a model version, given by number or (its newest version in) a stage.

        Raises:
            ModelVersionNotFound: The model has no such version.
            InvalidValueError: Both or neither of ``version`` and ``stage``, or no key.
        """
        if key is None:
            raise InvalidValueError(f"Give the key of the tag to delete from a version of {name!r}.")
        self._registry.delete_model_version_tag(name, self._version_of(name, version, stage), key)
