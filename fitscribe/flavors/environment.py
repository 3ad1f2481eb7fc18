"""Environment files for a saved model: ``requirements.txt``, ``conda.yaml``, ``python_env.yaml``.

Requirements come from the distributions that the model's classes are imported from, found with
``importlib.metadata`` in this process: no subprocess and no reloading of the model (MLflow spends
seconds there). Each is pinned to the installed version; a local version label such as ``+cpu`` is
left out of the pin (it cannot be installed from PyPI) and kept in a comment.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import re
import sys
import warnings
from typing import Any, Iterable, Sequence

from fitscribe.errors import FitscribeWarning, InvalidValueError

__all__ = [
    "EnvironmentInspector",
    "INSPECTOR",
    "module_of",
    "requirements_for",
    "write_environment",
    "env_section",
    "check_installed_versions",
]

REQUIREMENTS = "requirements.txt"
CONDA = "conda.yaml"
PYTHON_ENV = "python_env.yaml"


def env_section() -> dict[str, str]:
    """Return the ``env`` entry of a ``python_function`` flavor section: the file describing each
    kind of environment (MLflow reads it to rebuild the model's environment).

    >>> env_section()
    {'conda': 'conda.yaml', 'virtualenv': 'python_env.yaml'}
    """
    return {"conda": CONDA, "virtualenv": PYTHON_ENV}

# Import names whose distribution is named differently; tried before a full scan of site-packages.
_KNOWN_DISTRIBUTIONS = {
    "sklearn": "scikit-learn",
    "yaml": "PyYAML",
    "PIL": "Pillow",
    "pytorch_lightning": "pytorch-lightning",
    "google": "protobuf",
    "cv2": "opencv-python",
    "skimage": "scikit-image",
    "dateutil": "python-dateutil",
    "attr": "attrs",
    "fitscribe": "fitscribe",
}
_PACKAGE_FOLDERS = frozenset({"site-packages", "dist-packages"})
_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


class EnvironmentInspector:
    """Map import names to installed distributions, cheaply and with a per-object cache.

    The common case (import name equals the distribution name, or a well-known alias) costs one
    metadata lookup; only an unknown module triggers ``packages_distributions()``, once. The
    rendered environment files are cached too, keyed by their requirement lines. Everything is
    dropped when a folder on ``sys.path`` changes (installing, upgrading or removing a package
    adds or removes ``*.dist-info`` folders there, which changes the folder's mtime), checked with
    one ``stat`` per folder at each :meth:`refresh`; :meth:`forget` drops it all by hand.
    """

    def __init__(self) -> None:
        self._by_module: dict[str, str | None] = {}
        self._versions: dict[str, str | None] = {}
        self._index: dict[str, list[str]] | None = None
        self._rendered: dict[tuple[str, ...], tuple[str, str, str]] = {}
        self._stamp: tuple[Any, ...] | None = None

    def refresh(self) -> None:
        """Forget cached lookups if a folder on ``sys.path`` changed since the last call."""
        stamp = _path_stamp()
        if stamp != self._stamp:
            self.forget()
            self._stamp = stamp

    def distribution_of(self, top_level: str) -> str | None:
        """Return the distribution name providing the top-level module, or None (stdlib, local code)."""
        if top_level in self._by_module:
            return self._by_module[top_level]
        found = self._lookup(top_level)
        self._by_module[top_level] = found
        return found

    def _lookup(self, top_level: str) -> str | None:
        if top_level in sys.stdlib_module_names or top_level in ("__main__", "builtins"):
            return None
        for candidate in (_KNOWN_DISTRIBUTIONS.get(top_level), top_level):
            if candidate is None:
                continue
            try:
                dist = metadata.distribution(candidate)
            except metadata.PackageNotFoundError:
                continue
            name = str(dist.metadata["Name"])
            self._versions.setdefault(name, dist.version)
            return name
        if self._index is None:
            self._index = dict(metadata.packages_distributions())
        names = self._index.get(top_level)
        return names[0] if names else None

    def version(self, distribution: str) -> str | None:
        """Return the installed version of a distribution, or None (cached: reading metadata costs ~1 ms)."""
        if distribution not in self._versions:
            try:
                self._versions[distribution] = metadata.version(distribution)
            except metadata.PackageNotFoundError:
                self._versions[distribution] = None
        return self._versions[distribution]

    def environment_files(self, requirements: Sequence[str]) -> tuple[str, str, str]:
        """Return the text of ``requirements.txt``, ``conda.yaml`` and ``python_env.yaml`` (cached)."""
        key = tuple(requirements)
        texts = self._rendered.get(key)
        if texts is None:
            texts = self._rendered[key] = _render_environment(key, self)
        return texts

    def forget(self) -> None:
        """Drop cached lookups, e.g. after installing or upgrading packages in this process."""
        self._by_module.clear()
        self._versions.clear()
        self._index = None
        self._rendered.clear()


def _path_stamp() -> tuple[Any, ...]:
    """Return the mtime and link count of each package folder on ``sys.path``.

    Only ``site-packages``/``dist-packages`` folders count: pip and conda install there, while the
    working directory and source folders on the path change with every file a script writes.
    """
    stamp: list[Any] = []
    for entry in sys.path:
        if os.path.basename(entry.rstrip("/\\")) not in _PACKAGE_FOLDERS:
            continue
        try:
            st = os.stat(entry)
        except OSError:
            stamp.append((entry, None))
            continue
        stamp.append((entry, st.st_mtime_ns, st.st_nlink))
    return tuple(stamp)


INSPECTOR = EnvironmentInspector()


def module_of(obj: Any) -> str:
    """Return the top-level module name of an object's class (or of a class or function itself)."""
    target = obj if isinstance(obj, type) or callable(obj) and hasattr(obj, "__module__") else type(obj)
    module = getattr(target, "__module__", None) or ""
    return module.split(".")[0]


def _pin(distribution: str, inspector: EnvironmentInspector) -> str | None:
    version = inspector.version(distribution)
    if version is None:
        return None
    if _canonical(distribution) == "fitscribe" and not _published_release(version):
        # A development or local build is on no package index: a pin could never install.
        return f"fitscribe  # installed: {version} (a development build, not published)"
    public, _, local = version.partition("+")
    line = f"{distribution}=={public}"
    return f"{line}  # installed: {version}" if local else line


def _published_release(version: str) -> bool:
    """Whether the installed fitscribe is a final release installed from a package index.

    A ``.devN``, pre-release or ``+local`` version, or an editable/local-path install (pip's
    ``direct_url.json``, or metadata outside any site-packages folder), was never published.
    """
    if not re.fullmatch(r"\d+(\.\d+)*(\.post\d+)?", version):
        return False
    try:
        dist = metadata.distribution("fitscribe")
    except metadata.PackageNotFoundError:
        return False
    if dist.read_text("direct_url.json"):
        return False
    location = str(getattr(dist, "_path", ""))
    return any(part in _PACKAGE_FOLDERS for part in location.replace("\\", "/").split("/"))


def requirements_for(
    modules: Iterable[str],
    distributions: Iterable[str] = (),
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
    inspector: EnvironmentInspector | None = None,
) -> list[str]:
    """Return pinned requirement lines for the given top-level modules and distributions.

    fitscribe is listed only when the model needs it to load (its classes come from fitscribe, as a
    custom PythonModel's do), so a model MLflow can load alone does not ask for fitscribe; it is
    pinned only to a published release (see :func:`_published_release`), else left unpinned.
    ``pip_requirements`` replaces the inferred list (fitscribe is still added when needed, unless
    listed); ``extra_pip_requirements`` is appended, replacing an inferred line for the same
    distribution.

    Raises:
        InvalidValueError: Both ``pip_requirements`` and ``extra_pip_requirements`` were given, or
            a line is not a requirement.
    """
    if pip_requirements is not None and extra_pip_requirements is not None:
        raise InvalidValueError(
            "Give either pip_requirements (replaces the inferred list) or extra_pip_requirements "
            "(extends it), not both."
        )
    inspector = inspector or INSPECTOR
    inspector.refresh()
    lines: dict[str, str] = {}
    found = [dist for dist in map(inspector.distribution_of, modules) if dist is not None]
    needs_fitscribe = ["fitscribe"] if any(_canonical(d) == "fitscribe" for d in found) else []
    if pip_requirements is not None:
        wanted: list[str] = needs_fitscribe
        user = list(pip_requirements)
    else:
        wanted = [*needs_fitscribe, *distributions, *found]
        user = list(extra_pip_requirements or [])
    for dist in wanted:
        key = _canonical(dist)
        if key not in lines:
            pin = _pin(dist, inspector)
            if pin is not None:
                lines[key] = pin
    for raw in user:
        line = str(raw).strip()
        match = _NAME_RE.match(line)
        if not line or line.startswith("#"):
            continue
        if match is None and not line.startswith("-"):
            raise InvalidValueError(
                f"{raw!r} is not a pip requirement; give lines like 'scikit-learn==1.5.0' or 'numpy>=1.26'."
            )
        key = _canonical(match.group(1)) if match else line
        lines[key] = line
    return list(lines.values())


def write_environment(folder: str, requirements: Sequence[str], inspector: EnvironmentInspector | None = None) -> None:
    """Write ``requirements.txt``, ``conda.yaml`` and ``python_env.yaml`` into a model folder."""
    inspector = inspector or INSPECTOR
    for name, text in zip((REQUIREMENTS, CONDA, PYTHON_ENV), inspector.environment_files(requirements)):
        with open(os.path.join(folder, name), "w", encoding="utf-8") as fh:
            fh.write(text)


def _render_environment(requirements: Sequence[str], inspector: EnvironmentInspector) -> tuple[str, str, str]:
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    python = "{}.{}.{}".format(*sys.version_info[:3])
    plain = [line.split("  #")[0] for line in requirements]
    pip_version = inspector.version("pip")
    conda = {
        "name": "fitscribe-env",
        "channels": ["conda-forge"],
        "dependencies": [f"python={python}", f"pip<={pip_version}" if pip_version else "pip", {"pip": plain}],
    }
    build = [f"{name}=={version}" if (version := inspector.version(name)) else name for name in ("pip", "setuptools", "wheel")]
    python_env = {"python": python, "build_dependencies": build, "dependencies": [f"-r {REQUIREMENTS}"]}
    return (
        "\n".join(requirements) + "\n",
        yaml.dump(conda, Dumper=dumper, default_flow_style=False, sort_keys=False),
        yaml.dump(python_env, Dumper=dumper, default_flow_style=False, sort_keys=False),
    )


def read_requirements(folder: str) -> dict[str, str]:
    """Return distribution -> pinned version from a model folder's ``requirements.txt`` (``==`` lines only)."""
    path = os.path.join(folder, REQUIREMENTS)
    pins: dict[str, str] = {}
    if not os.path.isfile(path):
        return pins
    with open(path, encoding="utf-8") as fh:
        for raw in fh:
            line = raw.split("#")[0].strip()
            name, sep, version = line.partition("==")
            if sep and name and version:
                pins[name.strip().split("[")[0]] = version.strip().split(";")[0].strip()
    return pins


def check_installed_versions(
    folder: str, distributions: Iterable[str], inspector: EnvironmentInspector | None = None, stacklevel: int = 4
) -> None:
    """Warn when an installed framework's version differs from the one the model was saved with."""
    inspector = inspector or INSPECTOR
    inspector.refresh()
    pins = {_canonical(name): (name, version) for name, version in read_requirements(folder).items()}
    for dist in distributions:
        entry = pins.get(_canonical(dist))
        if entry is None:
            continue
        installed = inspector.version(dist)
        saved = entry[1]
        if installed is None:
            warnings.warn(
                f"The model was saved with {entry[0]}=={saved}, which is not installed here; loading it "
                f"will probably fail. Install it: pip install '{entry[0]}=={saved}'",
                FitscribeWarning,
                stacklevel=stacklevel,
            )
        elif installed.split("+")[0] != saved.split("+")[0]:  # MLflow's pins may keep a local label
            warnings.warn(
                f"The model was saved with {entry[0]}=={saved} but {installed} is installed; it may load "
                f"or predict differently. To match: pip install '{entry[0]}=={saved}'",
                FitscribeWarning,
                stacklevel=stacklevel,
            )
