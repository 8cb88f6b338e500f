"""The MLflow UI as a user opens it after `ecogen run quick`, checked from the rendered page.

A finished (tiny) quick run in a fresh project, then `mlflow server` on the project's store and
headless Chromium (Debian's ``chromium``, driven by Playwright; never a browser Playwright
downloads) on the runs-table link that `ecogen run` printed: the page must be the model-training
runs table (not the GenAI overview, whose traces are empty here) with the parent run's headline
metrics as column headers and its values in the parent's row.

``ECOGEN_SCREENSHOT=docs/mlflow-ui-runs.png`` also writes the README's screenshot (1280×800).
"""

from __future__ import annotations

import math
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from e2e_support import free_port, make_project, offline_env, run_tiny, sqlite_uri, start, stop, wait_for
from mlflow import MlflowClient

pytestmark = pytest.mark.slow

PIPELINE = "quick"
# Debian's package (apt-get install chromium) first; ECOGEN_CHROMIUM names another binary.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WIDE = {"width": 2400, "height": 800}  # every headline column rendered (the grid virtualises columns)
SHOT = {"width": 1280, "height": 800}


def chromium() -> str | None:
    if path := os.environ.get("ECOGEN_CHROMIUM"):
        return path
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


@dataclass
class UI:
    url: str  # the runs-table link `ecogen run` printed, on this test's port
    project: Path
    headline: dict[str, float]  # the parent run's metrics


@pytest.fixture(scope="module")
def browser_path() -> str:
    path = chromium()
    if path is None:
        pytest.skip("no Chromium binary (apt-get install chromium, or set ECOGEN_CHROMIUM)")
    pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -e '.[dev]')")
    return path


@pytest.fixture(scope="module")
def ui(
    tmp_path_factory: pytest.TempPathFactory, offline_process_env: None, browser_path: str
) -> Iterator[UI]:
    project = make_project(tmp_path_factory.mktemp("ui"))
    out = run_tiny(project, PIPELINE).stdout
    run_id = re.search(rf"pipeline {PIPELINE} finished: MLflow run (\w+)", out)
    link = re.search(r"http://127\.0\.0\.1:5000/(#/experiments/\w+/runs\?\S+)", out)
    assert run_id and link, out[-3000:]
    headline = MlflowClient(sqlite_uri(project)).get_run(run_id.group(1)).data.metrics

    port = free_port()
    log_path = project / "mlflow-server.log"
    server = None
    with log_path.open("w") as log:
        try:
            server = start(
                [
                    "mlflow",
                    "server",
                    "--backend-store-uri",
                    sqlite_uri(project),
                    "--artifacts-destination",
                    str(project / "mlartifacts"),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--workers",
                    "1",
                ],
                project,
                offline_env(project),
                log,
            )

            def healthy() -> bool:
                assert server is not None and server.poll() is None, f"mlflow server exited {server}"
                try:
                    r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5, trust_env=False)
                except httpx.HTTPError:
                    return False
                return r.status_code == 200

            wait_for("the MLflow server's /health", healthy, 90, [log_path])
            yield UI(url=f"http://127.0.0.1:{port}/{link.group(1)}", project=project, headline=headline)
        finally:
            stop(server)


def test_the_runs_table_shows_the_headline_metrics_of_the_parent_run(
    ui: UI, browser_path: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)  # the first page load compiles nothing, but CI machines are busy
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=browser_path)
        try:
            page = browser.new_page(viewport=WIDE)
            page.set_default_timeout(60_000)
            page.goto(ui.url)
            grid = page.locator(".ag-root")
            expect(grid).to_be_visible()
            # the model-training view: its runs table, not the GenAI overview of (no) traces
            expect(page.get_by_role("heading", name="Runs", exact=True)).to_be_visible()
            assert page.get_by_text("No data available for the selected time range").count() == 0
            assert page.get_by_text("Evaluation runs", exact=True).count() == 0  # GenAI navigation
            name = grid.locator(".ag-row", has_text=PIPELINE).first
            expect(name).to_be_visible()
            row = name.get_attribute("row-index")

            # every headline metric is a column header, with the parent run's value in its row
            for key, value in sorted(ui.headline.items()):
                col = f"metrics.`{key}`"
                header = grid.locator(f'.ag-header-cell[col-id="{col}"]')
                expect(header).to_have_text(key)
                cell = grid.locator(f'.ag-row[row-index="{row}"] .ag-cell[col-id="{col}"]')
                text = cell.inner_text().strip()
                assert math.isclose(float(text), value, rel_tol=1e-6), (key, text, value)

            page.set_viewport_size(SHOT)
            for button in ("Close", "Hide banner"):  # the assistant panel, the shared-view banner
                if page.get_by_role("button", name=button).count():
                    page.get_by_role("button", name=button).first.click()
            expect(grid.locator(".ag-header-cell", has_text=min(ui.headline)).first).to_be_visible()
            page.wait_for_timeout(500)  # the grid's resize
            for path in (tmp_path / "mlflow-ui-runs.png", os.environ.get("ECOGEN_SCREENSHOT")):
                if path:
                    page.screenshot(path=str(path))
        finally:
            browser.close()
