"""The committed notebooks hold what nbval compares, and keep the workshop's structure."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from check_notebooks import problems  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))


def test_there_is_a_preflight_the_stages_day_two_and_tokens() -> None:
    assert [p.name[:2] for p in NOTEBOOKS] == [
        "00",
        "01",
        "02",
        "03",
        "04",
        "05",
        "06",
        "07",
        "08",
        "09",
        "10",
        "11",
        "12",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_with_outputs(path: Path) -> None:
    assert problems(path) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_sections_and_cli_lines(path: Path) -> None:
    cells = json.loads(path.read_text())["cells"]
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    for heading in (
        "## Overview",
        "## Prerequisites",
        "## Troubleshooting",
        "## Summary",
        "## What's next",
        "## Clean-up",
    ):
        assert heading in text, f"{path.name} lacks {heading}"
    outputs = json.dumps([c.get("outputs", []) for c in cells])
    if path.name != "00-preflight.ipynb":
        assert "$ docker " in outputs  # the learner sees the docker CLI line for each step
        assert "Checkpoint" in text and "## Exercise" in text


def test_check_finds_unrun_cells(tmp_path: Path) -> None:
    nb: dict[str, list[dict[str, object]]] = {
        "cells": [{"cell_type": "code", "execution_count": None, "outputs": [], "source": "1"}]
    }
    (tmp_path / "x.ipynb").write_text(json.dumps(nb))
    assert problems(tmp_path / "x.ipynb") == [f"{tmp_path / 'x.ipynb'}: code cell 1 was never run"]


def test_committed_notebooks_hold_no_password() -> None:
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            text = cell.source + json.dumps(cell.get("outputs", []))
            # cosign's key password: empty, or the terminal's own variable (never a literal)
            for empty in ("COSIGN_PASSWORD= ", 'COSIGN_PASSWORD=\\"${COSIGN_PASSWORD:-}\\"'):
                text = text.replace(empty, "")
            assert "password=" not in text.replace(" ", "").lower() or cell.cell_type == "markdown"
            assert (
                'Credentials("' not in cell.source.replace("'", '"') or "generate" in cell.source
            ), f"{path.name}: a literal password"
            assert "$2y$" not in json.dumps(cell.get("outputs", [])), "a hash was printed"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_nbval_marker_is_one_nbval_recognises(path: Path) -> None:
    """nbval strips '#' and spaces and looks the rest up exactly: '# NBVAL_X (why)' is no marker."""
    from nbval.plugin import comment_markers, find_comment_markers

    for cell in nbformat.read(path, as_version=4).cells:
        for line in cell.source.splitlines():
            if "NBVAL_" in line:
                assert line.strip().lstrip("#").strip() in comment_markers, line
                assert list(find_comment_markers(line)), line


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_run_all_answers_no_exercise(path: Path) -> None:
    """The committed outputs are a Run All with no answer typed (nbval runs every notebook top
    to bottom and compares with them): every exercise's check says Not yet, none Correct, and
    no solution is a cell that runs; each is collapsed markdown the learner opens."""
    cells = json.loads(path.read_text())["cells"]
    solutions = [c for c in cells if "solution" in c["metadata"].get("tags", [])]
    assert all(c["cell_type"] == "markdown" for c in solutions)
    assert all("".join(c["source"]).startswith("<details>") for c in solutions)
    said = "".join(
        "".join(o.get("text", "")) for c in cells if c["cell_type"] == "code" for o in c["outputs"]
    )
    checks = [c for c in cells if c["cell_type"] == "code" and "exercises." in "".join(c["source"])]
    assert "✔ Correct" not in said
    if solutions:
        assert said.count("✘ Not yet") >= len(solutions), "every exercise answers Not yet"
        assert checks
