"""Check that committed notebooks keep what nbval compares: every code cell executed, in order,
with its outputs, and no error outputs.

    python scripts/check_notebooks.py notebooks/*.ipynb      (also run by pre-commit and tests)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def problems(path: Path) -> list[str]:
    notebook = json.loads(path.read_text())
    found = []
    counts = []
    for number, cell in enumerate(notebook.get("cells", []), 1):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("execution_count") is None:
            found.append(f"{path}: code cell {number} was never run")
            continue
        counts.append(cell["execution_count"])
        if any(out.get("output_type") == "error" for out in cell.get("outputs", [])):
            found.append(f"{path}: code cell {number} holds an error")
    if counts != sorted(counts) or len(set(counts)) != len(counts):
        found.append(f"{path}: cells were not run top to bottom in one go")
    return found


def main(paths: list[str]) -> int:
    found = [p for path in paths for p in problems(Path(path))]
    for problem in found:
        print(
            f"{problem} - fix: run the notebook top to bottom and save it "
            "(or: jupyter nbconvert --to notebook --execute --inplace FILE)"
        )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
