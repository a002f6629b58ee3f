"""A learner's path in a real browser: JupyterLab, notebook 01, Run All, the checkpoint passes.

Playwright drives Debian's Chromium (/usr/bin/chromium); nothing is downloaded. JupyterLab
serves a copy of the notebooks, so autosave can never change the committed ones. The
screenshot is kept in test-artifacts/.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
import requests
from common import free_port, strict
from docker import DockerClient
from notebook_runner import NOTEBOOKS

import reglab

# JupyterLab and Chromium start, and notebook 01 runs in them: about a minute.
pytestmark = [pytest.mark.docker, pytest.mark.notebooks, pytest.mark.slow]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# The flags this machine's Chromium needs to stay on loopback and start quickly as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def need(condition: bool, why: str) -> None:
    if not condition:
        if strict():
            pytest.fail(f"the browser test must run in CI: {why}")
        pytest.skip(why)


@pytest.fixture
def jupyterlab(
    engine: DockerClient, workshop_images: dict[str, str], tmp_path: Path
) -> Iterator[tuple[str, str, dict[str, str]]]:
    """A JupyterLab server on loopback over a copy of notebooks/; yields (url, token, env)."""
    root = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, root, ignore=shutil.ignore_patterns("workdir", ".ipynb_*"))
    for path in root.glob("*.ipynb"):  # no stored outputs: what the test sees, the run made
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nbformat.write(nb, path)
    # Render every cell (no windowing), so outputs below the fold exist in the page.
    tracker = tmp_path / "lab-settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    notices = tmp_path / "lab-settings" / "@jupyterlab" / "apputils-extension"
    notices.mkdir(parents=True)  # never ask to fetch news from the internet
    (notices / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "REGLAB_PORT": str(free_port()),
        "REGLAB_NAME": "reglab-test-browser",
        "REGLAB_WORKDIR": str(tmp_path / "workdir"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "lab-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "lab-workspaces"),
    }
    log = (tmp_path / "jupyterlab.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--allow-root",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.news_url=",
            "--LabApp.extension_manager=readonly",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    ARTIFACTS.mkdir(exist_ok=True)
    deadline = time.monotonic() + 60
    while True:  # poll until the server answers
        try:
            if requests.get(f"{url}/api/status?token={token}", timeout=1).ok:
                break
        except requests.ConnectionError:
            pass
        assert server.poll() is None, (tmp_path / "jupyterlab.log").read_text()[-2000:]
        assert time.monotonic() < deadline, "JupyterLab did not answer within 60 s"
        time.sleep(0.1)
    try:
        yield url, token, env
    except BaseException:
        shutil.copy(tmp_path / "jupyterlab.log", ARTIFACTS / "jupyterlab-FAILED.log")
        raise
    finally:
        server.terminate()
        server.wait(30)
        log.close()
        reglab.Registry(
            reglab.RegistryConfig(name="reglab-test-browser", workdir=tmp_path)
        ).remove()


def test_notebook_01_runs_in_jupyterlab_in_a_real_browser(
    jupyterlab: tuple[str, str, dict[str, str]], engine: DockerClient
) -> None:
    need(CHROMIUM.exists(), "Chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need(False, "playwright is not installed (pip install -e '.[test]')")
    url, token, env = jupyterlab
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "jupyterlab-01-local-registry.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{url}/lab/tree/01-local-registry.ipynb?token={token}")
            page.wait_for_selector(".jp-Notebook", timeout=60_000)
            # The kernel is ready when the status bar says so (the toolbar's indicator reads
            # "idle" even before a kernel is connected, and cells run then are dropped).
            page.locator("#jp-main-statusbar").get_by_text(
                re.compile(r"Python 3 \(ipykernel\) \| Idle")
            ).wait_for(timeout=60_000)
            page.click(".lm-MenuBar-itemLabel:text-is('Run')")
            page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
            first = page.locator(".jp-CodeCell .jp-InputPrompt").first
            page.wait_for_function(
                "el => /\\[\\d+\\]/.test(el.textContent)",
                arg=first.element_handle(),
                timeout=60_000,
            )

            checkpoint = page.locator(
                ".jp-OutputArea-output", has_text="✔ the registry serves hello-world:latest"
            )
            checkpoint.first.wait_for(timeout=120_000)
            text = checkpoint.first.text_content() or ""
            assert re.search(r"with digest sha256:[0-9a-f]{64}", text), text

            # The registry browser widget rendered in the page and lists the repository.
            options = page.locator(".widget-select select").first
            options.wait_for(timeout=30_000)
            assert "hello-world" in (options.text_content() or "")

            done = page.locator(".jp-OutputArea-output", has_text="docker network rm reglab-net")
            done.first.wait_for(timeout=120_000)  # the clean-up cell ran: all cells did
            done.first.scroll_into_view_if_needed()
            checkpoint.first.scroll_into_view_if_needed()
            stderr = "[data-mime-type='application/vnd.jupyter.stderr']"  # errors and warnings
            assert page.locator(f".jp-OutputArea-output{stderr}").count() == 0
        except BaseException:
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-01-FAILED.png"), full_page=False)
            raise
        else:
            page.screenshot(path=str(shot), full_page=False)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    assert engine.containers.list(all=True, filters={"name": "reglab-test-browser"}) == []
