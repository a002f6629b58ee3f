"""The learner's copy of the notebooks: the same cells, no stored outputs.

The committed notebooks keep their outputs, because the tests compare every run with them. A
learner opening those would see every checkpoint already green and every solution's answer
before trying. So the workshop opens copies with all outputs and execution counts removed.
A solution is a collapsed markdown cell (``<details>``): only the learner's own click opens
it, and neither Run All nor Shift+Enter ever runs it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from reglab.base.errors import ConfigError
from reglab.base.files import write_atomic

#: Beside the committed notebooks (git-ignored), so links between notebooks and images/ work.
LEARNER_FOLDER = "learner"


def learner_copy(notebook: dict[str, object]) -> dict[str, object]:
    """``notebook`` (nbformat JSON) without outputs or execution counts."""
    copy: dict[str, object] = json.loads(json.dumps(notebook))
    cells = copy.get("cells", [])
    for cell in cells if isinstance(cells, list) else []:
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
            cell.get("metadata", {}).pop("execution", None)
    return copy


def make_learner_copies(source: Path, dest: Path, reset: bool = False) -> list[Path]:
    """Write learner copies of ``source``'s numbered notebooks to ``dest``; return those
    written. An existing copy holds the learner's work: it is kept unless ``reset``."""
    notebooks = sorted(source.glob("[0-9][0-9]-*.ipynb"))
    if not notebooks:
        raise ConfigError(f"no workshop notebooks in {source}", "give the notebooks/ folder")
    written = []
    for path in notebooks:
        target = dest / path.name
        if target.exists() and not reset:
            continue
        try:
            notebook = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"{path} is not a notebook ({exc})", "check out the file again"
            ) from None
        write_atomic(target, (json.dumps(learner_copy(notebook), indent=1) + "\n").encode())
        written.append(target)
    images = source / "images"
    if images.is_dir():
        shutil.copytree(images, dest / "images", dirs_exist_ok=True)
    return written
