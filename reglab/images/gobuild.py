"""Go programs built from the module proxy at a pinned version: the registry 3 server and the
OCI conformance suite. No Docker Hub needed, so an air-gapped room with a module proxy (or a
filled module cache) can make them too.

Each program is built once per version into reglab's cache folder
(``$XDG_CACHE_HOME/reglab/go``, default ``~/.cache/reglab/go``) and reused after that: a
``go install`` of the registry takes a minute or two, the second call takes no time.
``CGO_ENABLED=0`` makes static binaries, so an image ``FROM scratch`` runs them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from reglab.base.errors import ImageError

#: The oldest Go that builds both programs (distribution v3.1's go.mod says go 1.25).
GO_MINIMUM = (1, 25)
_GO_FIX = (
    "install Go 1.25 or later and make sure it reaches a Go module proxy (go env GOPROXY), "
    "or load a saved tarball: reglab images --load FILE.tar"
)


@dataclass(frozen=True)
class GoProgram:
    """One Go program at one version, and how to build it."""

    #: The file name in the cache (the version is part of it).
    name: str
    #: ``MODULE/PATH@VERSION`` for ``go install``; for a test binary, the module's package.
    package: str
    version: str
    #: ``-X`` settings and the like, passed as ``-ldflags``.
    ldflags: str = "-s -w"
    #: A test binary (``go test -c``) instead of a command (``go install``).
    test: bool = False


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "reglab" / "go"


#: Where Go's own installer and Debian's package put it, when it is not on PATH.
GO_CANDIDATES = ("/usr/local/go/bin/go", "/usr/lib/go/bin/go")


def find_go(purpose: str = "build registry 3") -> Path:
    """The ``go`` program, checked to be new enough to ``purpose``; one line naming the fix
    if not."""
    found = shutil.which("go") or next((p for p in GO_CANDIDATES if Path(p).is_file()), None)
    if found is None:
        raise ImageError(f"Go is not installed, so reglab cannot {purpose} here", _GO_FIX)
    out = subprocess.run([found, "env", "GOVERSION"], capture_output=True, text=True, check=False)
    version = out.stdout.strip().removeprefix("go")
    try:
        numbers = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        numbers = (0, 0)
    if numbers < GO_MINIMUM:
        raise ImageError(f"Go {version or '(unknown)'} is too old to {purpose}", _GO_FIX)
    return Path(found)


def build(program: GoProgram) -> Path:
    """The program's binary, built now unless the cache has it; return its path."""
    target = cache_dir() / f"{program.name}-{program.version}"
    if target.is_file() and os.access(target, os.X_OK):
        return target
    go = find_go(f"build {program.name} {program.version}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")  # never a half-written binary
    env = {**os.environ, "CGO_ENABLED": "0"}
    env.pop("AWS_CA_BUNDLE", None)
    if program.test:
        # A test binary is built inside its own module's folder, which `go mod download` fetches.
        folder = _module_dir(go, program, env)
        command = [str(go), "test", "-c", "-trimpath", "-ldflags", program.ldflags]
        command += ["-o", str(partial), "."]
    else:
        # `go install pkg@version` builds outside any module; a private GOBIN catches the result.
        folder = target.parent
        env["GOBIN"] = str(target.with_name(target.name + ".bin"))
        command = [str(go), "install", "-trimpath", "-ldflags", program.ldflags]
        command.append(f"{program.package}@{program.version}")
    result = subprocess.run(
        command, cwd=folder, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise ImageError(f"building {program.name} {program.version} failed: {last}", _GO_FIX)
    if not program.test:
        (Path(env["GOBIN"]) / Path(program.package).name).replace(partial)
        shutil.rmtree(env["GOBIN"], ignore_errors=True)
    partial.replace(target)
    return target


def install_beside_python(program: GoProgram) -> Path:
    """The program, built once (cached) and copied beside reglab's Python, where a terminal
    that runs ``reglab`` finds it too (its typed lines call it by name)."""
    target = Path(sys.executable).parent / program.name
    built = build(program)
    if not target.is_file() or target.read_bytes() != built.read_bytes():
        partial = target.with_name(f".{target.name}.partial")
        shutil.copyfile(built, partial)
        partial.chmod(0o755)
        partial.replace(target)
    return target


def _module_dir(go: Path, program: GoProgram, env: dict[str, str]) -> Path:
    """Download the program's module and return its folder in the module cache."""
    result = subprocess.run(
        [str(go), "mod", "download", "-json", f"{program.package}@{program.version}"],
        env=env,
        capture_output=True,
        text=True,
        cwd=cache_dir(),
        check=False,
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise ImageError(f"downloading {program.package} failed: {last}", _GO_FIX)
    return Path(json.loads(result.stdout)["Dir"])


__all__ = ["GO_MINIMUM", "GoProgram", "build", "cache_dir", "find_go", "install_beside_python"]
