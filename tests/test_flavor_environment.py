"""Environment files of saved models: cached rendering, and invalidation when packages change."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from fitscribe.flavors import environment
from fitscribe.flavors.environment import EnvironmentInspector, requirements_for, write_environment


def _install(site: Path, name: str, version: str) -> Path:
    """Create the metadata folder that pip leaves for an installed distribution."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return info


@pytest.fixture()
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real, empty site-packages folder at the front of sys.path."""
    folder = tmp_path / "site-packages"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return folder


def test_installing_a_package_is_seen_without_forget(site: Path, tmp_path: Path) -> None:
    inspector = EnvironmentInspector()
    assert not any(line.startswith("fitscribe-probe") for line in requirements_for([], ["fitscribe-probe"], inspector=inspector))
    stamp = os.stat(site).st_mtime_ns
    _install(site, "fitscribe-probe", "1.0")  # a new folder: the link count of site-packages changes
    os.utime(site, ns=(stamp + 10_000_000, stamp + 10_000_000))  # and the mtime, on file systems without link counts
    assert "fitscribe-probe==1.0" in requirements_for([], ["fitscribe-probe"], inspector=inspector)


def test_upgrading_a_package_renders_new_environment_files(site: Path, tmp_path: Path) -> None:
    inspector = EnvironmentInspector()
    old = _install(site, "fitscribe-probe", "1.0")
    first = tmp_path / "m1"
    first.mkdir()
    write_environment(str(first), requirements_for([], ["fitscribe-probe"], inspector=inspector), inspector=inspector)
    assert "fitscribe-probe==1.0" in (first / "conda.yaml").read_text()

    stamp = os.stat(site).st_mtime_ns
    for item in old.iterdir():
        item.unlink()
    old.rmdir()
    _install(site, "fitscribe-probe", "2.0")  # pip's upgrade: one metadata folder out, one in
    # The file system may stamp both changes with the same coarse clock tick; an upgrade by pip
    # takes far longer than one, so move the mtime on as the clock would have.
    os.utime(site, ns=(stamp + 10_000_000, stamp + 10_000_000))
    second = tmp_path / "m2"
    second.mkdir()
    write_environment(str(second), requirements_for([], ["fitscribe-probe"], inspector=inspector), inspector=inspector)
    assert "fitscribe-probe==2.0" in (second / "requirements.txt").read_text()
    assert "fitscribe-probe==2.0" in (second / "conda.yaml").read_text()


def test_environment_files_are_rendered_once_per_requirement_set(tmp_path: Path) -> None:
    inspector = EnvironmentInspector()
    lines = requirements_for([], ["pyyaml"], inspector=inspector)
    first = inspector.environment_files(lines)
    assert inspector.environment_files(list(lines)) is first  # cached: same texts object
    assert inspector.environment_files([*lines, "extra==1"]) is not first
    write_environment(str(tmp_path), lines, inspector=inspector)
    assert (tmp_path / "requirements.txt").read_text() == "\n".join(lines) + "\n"
    python = "{}.{}.{}".format(*sys.version_info[:3])
    assert f"python={python}" in (tmp_path / "conda.yaml").read_text()
    assert "-r requirements.txt" in (tmp_path / "python_env.yaml").read_text()
    inspector.forget()
    assert inspector.environment_files(lines) is not first


def test_the_working_directory_does_not_invalidate_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend("")
    inspector = EnvironmentInspector()
    first = inspector.environment_files(requirements_for([], ["pyyaml"], inspector=inspector))
    (tmp_path / "checkpoint.bin").write_bytes(b"x")  # a script writing files as it trains
    assert inspector.environment_files(requirements_for([], ["pyyaml"], inspector=inspector)) is first


def test_the_shared_inspector_is_refreshed_by_save_model(site: Path, tmp_path: Path) -> None:
    from fitscribe.flavors import pyfunc

    class Echo(pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201
            return model_input

    environment.INSPECTOR.refresh()
    assert environment.INSPECTOR.version("fitscribe-probe") is None  # cached as not installed
    stamp = os.stat(site).st_mtime_ns
    _install(site, "fitscribe-probe", "3.0")
    os.utime(site, ns=(stamp + 10_000_000, stamp + 10_000_000))
    pyfunc.save_model(str(tmp_path / "m"), python_model=Echo(), extra_pip_requirements=["fitscribe-probe"])
    assert environment.INSPECTOR.version("fitscribe-probe") == "3.0"
