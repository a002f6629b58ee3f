"""scripts/setup.sh never leaves the default engine stopped after a second-engine pass.

scripts/test stops the default engine to test Debian 13's in turn; whatever happens next (the
second engine fails to start or to stop, the tests fail), its EXIT trap must start the default
again. Here ``ENGINE_CONTROL`` is a fake command that records its calls, so nothing is stopped.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FAKE_ENGINE_CONTROL = """#!/bin/sh
echo "$1 $2" >> "$CALLS"
[ "$1 $2" != "$FAIL" ]
"""

# What scripts/test does around its second pass, with the machine left alone: no download,
# no /run/reglab, the fake engine_control.py.
SCRIPT = """
source scripts/setup.sh
ENGINE_CONTROL=("$FAKE")
fetch_second_engine() { :; }
mkdir() { :; }
trap restore_engines EXIT
swap_to_second_engine
echo "the second pass runs" >&2
"$@"
"""

SWAP = ["stop default", "start debian13"]
RESTORE = ["owned debian13", "stop debian13", "resume default"]


def run(tmp_path: Path, fail: str, *then: str) -> tuple[int, list[str], str]:
    """Run the swap, then the command ``then``; return the exit status, the engine_control
    calls made and stderr."""
    fake, calls = tmp_path / "engine_control", tmp_path / "calls"
    fake.write_text(FAKE_ENGINE_CONTROL)
    fake.chmod(0o755)
    env = {**os.environ, "FAKE": str(fake), "CALLS": str(calls), "FAIL": fail}
    result = subprocess.run(
        ["bash", "-c", SCRIPT, "swap", *then],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result.returncode, calls.read_text().splitlines(), result.stderr


def test_a_pass_that_ends_well_restores_the_default_engine_once(tmp_path: Path) -> None:
    status, calls, _ = run(tmp_path, "", "restore_engines")
    assert status == 0
    assert calls == SWAP + RESTORE


@pytest.mark.parametrize(
    "fail, then, ran, failed",
    [
        ("start debian13", "true", False, True),  # the second engine does not start
        ("", "false", True, True),  # the pass fails, and set -e ends the script
        # the second engine does not stop: said, and the default runs again all the same
        ("stop debian13", "restore_engines", True, False),
    ],
)
def test_every_way_out_starts_the_default_engine_again(
    tmp_path: Path, fail: str, then: str, ran: bool, failed: bool
) -> None:
    status, calls, stderr = run(tmp_path, fail, then)
    assert (status != 0) is failed
    assert calls[:2] == SWAP
    assert calls[-1] == "resume default"
    assert ("the second pass runs" in stderr) is ran
