"""The registry pages in Chromium, as a team uses them: register a run's model from its page,
move versions between stages with a comment, move an alias, edit tags and the description, and a
read-only identity that is refused. Screenshots go to test-output/screenshots/registry-*.png.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Iterator

import pytest

from _require import require_module
from _ui_support import browser, page, screenshot, settle  # noqa: F401  (fixtures)

require_module("sklearn")
require_module("starlette")

import fitscribe  # noqa: E402
from fitscribe.server.auth import hash_secret, load_auth_file  # noqa: E402
from fitscribe.server.app import create_app  # noqa: E402
from fitscribe.server.run import ThreadedServer  # noqa: E402
from fitscribe.server.security import SecurityConfig  # noqa: E402

WRITER, READER = "writer-token-3f9", "reader-token-7a2"


@pytest.fixture(scope="module")
def registry_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server with an auth file (one read-write, one read-only token) and a run holding a model."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import fitscribe.flavors.sklearn as fsk

    root = tmp_path_factory.mktemp("registry-ui")
    store = str(root / "store")
    client = fitscribe.Client(store)
    run_id = client.create_run(client.create_experiment("registry-ui")).info.run_id
    X, y = load_iris(return_X_y=True, as_frame=True)
    fitscribe.set_tracking_uri(store)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fsk.log_model(LogisticRegression(max_iter=300).fit(X, y), name="model", input_example=X.head(2), run_id=run_id)
    client.set_terminated(run_id)
    auth = Path(root / "auth.yaml")
    auth.write_text(
        "tokens:\n"
        f"  ci: {{token_hash: '{hash_secret(WRITER, iterations=1000)}', access: read-write}}\n"
        f"  dashboard: {{token_hash: '{hash_secret(READER, iterations=1000)}', access: read-only}}\n"
    )
    security = SecurityConfig(credentials=load_auth_file(str(auth)))
    with ThreadedServer(create_app(store, str(root / "artifacts"), security=security)) as server:
        yield {"url": server.url, "run_id": run_id, "client": client}


def _as(page: Any, token: str) -> None:
    page.set_extra_http_headers({"Authorization": f"Bearer {token}"})


def _register(page: Any, url: str, run_id: str, name: str) -> None:
    page.goto(f"{url}/runs/{run_id}")
    page.fill("#register-model input[name=name]", name)
    with page.expect_navigation():
        page.click("#register-model button")
    settle(page)


def _version_row(page: Any, version: int) -> Any:
    return page.locator(f"#versions tr#v{version}")


def test_register_transition_alias_tags_and_description(page: Any, registry_server: dict[str, Any]) -> None:
    url, run_id, client = registry_server["url"], registry_server["run_id"], registry_server["client"]
    _as(page, WRITER)
    page.fitscribe_expected_statuses.add(400)  # the second registration's "already exists", handled by the page
    _register(page, url, run_id, "iris")
    assert "v1" in page.locator("#registered-versions").inner_text()
    screenshot(page, "registry-run-page-registered")
    _register(page, url, run_id, "iris")
    assert "v2" in page.locator("#registered-versions").inner_text()

    page.goto(f"{url}/models")
    row = page.locator("#models tr[data-model='iris']")
    assert "v2 None" in row.inner_text() or "v1 None" in row.inner_text()
    screenshot(page, "registry-models-list")

    page.click("#models a.model-link")
    page.wait_for_selector("#model[data-ready='1']")
    form = _version_row(page, 1).locator("form.transition")
    form.locator("select[name=stage]").select_option("Staging")
    form.locator("input[name=comment]").fill("first look by QA")
    with page.expect_navigation():
        form.locator("button").click()
    assert _version_row(page, 1).get_attribute("data-stage") == "Staging"
    form = _version_row(page, 2).locator("form.transition")
    form.locator("select[name=stage]").select_option("Staging")
    form.locator("input[name=archive_existing]").check()
    with page.expect_navigation():
        form.locator("button").click()
    assert _version_row(page, 2).get_attribute("data-stage") == "Staging"
    assert _version_row(page, 1).get_attribute("data-stage") == "Archived", "archive existing moved v1"

    for version in ("1", "2"):  # set the alias, then move it
        page.fill("#set-alias input[name=alias]", "champion")
        page.select_option("#set-alias select[name=version]", version)
        with page.expect_navigation():
            page.click("#set-alias button")
    assert "version 2" in page.locator("#aliases tr[data-alias='champion']").inner_text()
    assert client.get_model_version_by_alias("iris", "champion").version == 2

    page.fill("#set-tag input[name=key]", "team")
    page.fill("#set-tag input[name=value]", "vision")
    with page.expect_navigation():
        page.click("#set-tag button")
    page.fill("#edit-description textarea", "Iris classifier <b>not bold</b>")
    with page.expect_navigation():
        page.click("#edit-description button")
    assert page.locator("#description").inner_text() == "Iris classifier <b>not bold</b>"
    assert client.get_registered_model("iris").tags == {"team": "vision"}
    page.locator("tr.card-row details").first.click()
    assert "sklearn" in page.locator("#card-v2").inner_text()
    screenshot(page, "registry-model-page")

    with page.expect_navigation():
        page.locator("#aliases tr[data-alias='champion'] .remove-alias").click()
    assert page.locator("#aliases tr[data-alias='champion']").count() == 0

    # the History table: every change above, newest first, by the authenticated identity "ci"
    history = page.locator("#history tbody tr")
    assert history.first.get_attribute("data-action") == "delete_alias"
    moved = page.locator("#history tr[data-action='transition_stage'][data-version='1']")
    assert [moved.nth(i).locator(".new").inner_text() for i in range(moved.count())] == ["Archived", "Staging"]
    assert moved.last.locator(".comment").inner_text() == "first look by QA"
    alias = page.locator("#history tr[data-action='move_alias']")
    assert (alias.locator(".old").inner_text(), alias.locator(".new").inner_text()) == ("1", "2")
    assert {history.nth(i).locator(".who").inner_text() for i in range(history.count())} == {"ci"}
    page.locator("#history").scroll_into_view_if_needed()
    screenshot(page, "registry-model-history")


def test_a_read_only_identity_sees_but_cannot_change(page: Any, registry_server: dict[str, Any]) -> None:
    url, run_id, client = registry_server["url"], registry_server["run_id"], registry_server["client"]
    client.create_registered_model("readonly-model")
    client.create_model_version("readonly-model", f"runs:/{run_id}/model", run_id=run_id)
    _as(page, READER)
    page.fitscribe_expected_statuses.add(403)
    page.goto(f"{url}/models/readonly-model")
    page.wait_for_selector("#model[data-ready='1']")
    form = _version_row(page, 1).locator("form.transition")
    form.locator("select[name=stage]").select_option("Production")
    form.locator("button").click()
    message = page.locator("#message")
    message.wait_for(state="visible")
    assert message.inner_text().startswith("Not allowed")
    screenshot(page, "registry-read-only-refused")
    assert client.get_model_version("readonly-model", 1).current_stage == "None"

    page.goto(f"{url}/runs/{run_id}")
    page.fill("#register-model input[name=name]", "sneaky")
    page.click("#register-model button")
    page.locator("#register-message").wait_for(state="visible")
    assert page.locator("#register-message").inner_text().startswith("Not allowed")
    assert not list(client.search_registered_models("name = 'sneaky'"))
