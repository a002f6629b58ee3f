"""Commands a learner can type: how the working folder's paths are written in them.

Every command the workshop prints must work when typed into a terminal in the notebook's folder
(or wherever ``reglab`` runs), so paths of the working folder are written the way that terminal
reaches them:

- ``"workdir/certs/ca.crt"``: the folder lies below the current directory (the default);
- ``"$REGLAB_WORKDIR/certs/ca.crt"``: the learner chose the folder with ``REGLAB_WORKDIR``;
- the absolute path otherwise.

A bind mount (``docker run -v``) needs an absolute path, so there a relative path becomes
``"$PWD/workdir/..."``: the shell fills in the absolute path, and the line stays the same on
every machine.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

_SAFE_IN_DOUBLE_QUOTES = frozenset('$`"\\!')


@dataclass(frozen=True)
class PathStyle:
    """Writes paths of one working folder as a terminal in ``cwd`` reaches them."""

    workdir: Path
    #: The terminal's folder; None writes absolute paths.
    cwd: Path | None = None
    #: True when the learner named the folder with REGLAB_WORKDIR (it is then in their shell).
    from_env: bool = False

    @classmethod
    def here(cls, workdir: Path, from_env: bool = False) -> PathStyle:
        return cls(Path(workdir), Path.cwd().resolve(), from_env)

    def _root(self, mount: bool) -> tuple[str, bool]:
        """How the working folder itself is written, and whether it can go in double quotes."""
        if self.from_env:
            return "$REGLAB_WORKDIR", True
        if self.cwd is None:
            return str(self.workdir), False
        try:
            relative = self.workdir.relative_to(self.cwd)
        except ValueError:
            return str(self.workdir), False
        text = relative.as_posix()
        if _SAFE_IN_DOUBLE_QUOTES & set(text):
            return str(self.workdir), False
        # Quoted like the other forms, so a path reads the same whichever form it takes.
        return (f"$PWD/{text}", True) if mount else (text, True)

    def expanded(self, path: Path) -> str | None:
        """``path`` (of the working folder) as an absolute path the shell fills in, unquoted
        (``$PWD/workdir/...``, ``$REGLAB_WORKDIR/...``); None when the folder is written as it
        is."""
        try:
            inner = Path(path).relative_to(self.workdir).as_posix()
        except ValueError:
            return None
        root, expands = self._root(mount=True)
        if not expands:
            return None
        return root if inner == "." else f"{root}/{inner}"

    def show(self, path: Path, mount_to: str | None = None) -> str:
        """``path`` as typed in a command; with ``mount_to``, as ``-v`` wants ``SOURCE:TARGET``."""
        path = Path(path)
        try:
            inner = path.relative_to(self.workdir).as_posix()
        except ValueError:  # not in the working folder: as it is
            text = str(path) + (f":{mount_to}" if mount_to else "")
            return shlex.quote(text)
        root, expands = self._root(mount=mount_to is not None)
        text = root if inner == "." else f"{root}/{inner}"
        if mount_to:
            text += f":{mount_to}"
        if expands:  # a variable the shell must expand: double quotes
            return f'"{text}"'
        return shlex.quote(text)


def absolute_in_shell(path: Path, style: PathStyle | None) -> str:
    """``path`` as an absolute path the shell fills in, for inside double quotes: a file's
    contents that must name it absolutely (a ``file://`` URL) still type the same on every
    machine: ``$PWD/workdir/sign/lookaside``, ``$REGLAB_WORKDIR/sign/lookaside``, else the
    absolute path itself."""
    expanded = style.expanded(path) if style is not None else None
    if expanded is not None:
        return expanded
    if style is not None and style.cwd is not None:  # below the terminal's folder: $PWD/...
        try:
            inner = Path(path).resolve().relative_to(style.cwd).as_posix()
        except ValueError:
            inner = None
        if inner is not None and not _SAFE_IN_DOUBLE_QUOTES & set(inner):
            return f"$PWD/{inner}"
    return re.sub(r'([\\"$`])', r"\\\1", str(Path(path).resolve()))


def show_path(path: Path, style: PathStyle | None) -> str:
    """``path`` as a typed line writes it: in the terminal's ``style``, else absolute and
    quoted (a caller with no terminal in mind, such as a test)."""
    return style.show(path) if style is not None else shlex.quote(str(path))


def printf_line(text: str, shown_path: str, expand: dict[str, str] | None = None) -> str:
    """The line that writes ``text`` to a file: ``printf '%s\\n' 'LINE' ... > PATH`` (each line
    single-quoted: nothing in it is expanded). ``expand`` maps text to the shell expression
    typed instead (:func:`absolute_in_shell`): a line holding it goes in double quotes."""
    words = []
    for line in text.strip("\n").splitlines():
        found = next((key for key in (expand or {}) if key in line), None)
        if found is None:
            words.append(shlex.quote(line))
            continue
        head, _, tail = line.partition(found)
        quoted = [re.sub(r'([\\"$`])', r"\\\1", part) for part in (head, tail)]
        words.append(f'"{quoted[0]}{(expand or {})[found]}{quoted[1]}"')
    return f"printf '%s\\n' {' '.join(words)} > {shown_path}"
