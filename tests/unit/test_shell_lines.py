"""Lines a terminal types that write a file naming an absolute path: the shell fills the path
in (``$PWD/...``, ``$REGLAB_WORKDIR/...``), so the line is the same on every machine, and bash
writes exactly what reglab writes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from reglab.base.shell import PathStyle, absolute_in_shell, printf_line


def typed(line: str, cwd: Path, env: dict[str, str] | None = None) -> None:
    subprocess.run(["bash", "-c", line], cwd=cwd, env={**os.environ, **(env or {})}, check=True)


def test_a_path_in_the_working_folder_is_filled_in_by_the_shell(tmp_path: Path) -> None:
    workdir = tmp_path / "workdir"
    store = workdir / "sign" / "lookaside"
    text = f'docker:\n  127.0.0.1:5000:\n    lookaside: file://{store}\n    it\'s: "$HOME"\n'
    for style, env in (
        (PathStyle(workdir, tmp_path), {}),  # relative: $PWD/workdir/...
        (PathStyle(workdir, tmp_path, from_env=True), {"REGLAB_WORKDIR": str(workdir)}),
    ):
        shown = absolute_in_shell(store, style)
        assert str(tmp_path) not in shown  # the same line on every machine
        line = printf_line(text, "out.yaml", {str(store): shown})
        typed(line, tmp_path, env)
        assert (tmp_path / "out.yaml").read_text() == text  # quotes and $HOME kept as text


def test_a_path_elsewhere_is_written_as_it_is_and_quoted(tmp_path: Path) -> None:
    odd = tmp_path / 'a "b" $c'
    shown = absolute_in_shell(odd, PathStyle(tmp_path / "workdir", tmp_path / "workdir"))
    typed(printf_line(f"key: {odd}", "out.txt", {str(odd): shown}), tmp_path)
    assert (tmp_path / "out.txt").read_text() == f"key: {odd}\n"
    below = tmp_path / "keys" / "release.pub"  # below the terminal's folder: $PWD/...
    assert absolute_in_shell(below, PathStyle(tmp_path / "w", tmp_path)) == "$PWD/keys/release.pub"
