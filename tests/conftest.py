"""Shared fixtures.

Docker-backed tests need a real engine. Outside CI they skip with a clear reason when none
answers; in CI (``CI=true``) or with ``REGLAB_REQUIRE_DOCKER=1`` a missing engine FAILS them,
and any skipped test at all fails the run: a green CI must have run every test.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest
from common import (
    MakeRegistry,
    engine_control,
    free_port,
    remove_test_stack,
    restart_our_engine,
    strict,
)
from docker import DockerClient

import reglab
from reglab import swarm
from reglab.auth.htpasswd import Htpasswd
from reglab.base import labels
from reglab.base.wait import NotYet, poll
from reglab.engine import transfer
from reglab.images import build as images
from reglab.registry.config import Stage
from reglab.swarm import cluster

#: Every container the suite creates is named with this prefix.
TEST_PREFIX = "reglab-test"

BEFORE = pytest.StashKey[set[str] | None]()
ALONE = pytest.StashKey[bool]()
STARTED = pytest.StashKey[float]()

#: Measurements tests report (load test wall times), printed at the end of the run.
REPORT: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT:
        terminalreporter.section("reglab measurements")
        for line in REPORT:
            terminalreporter.write_line(line)


SWARM_NOTEBOOK = "09-swarm-replicas.ipynb"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tiers (README, *Tests*) that a test shows by itself; its file marks the rest.

    nbval cells and tests parametrized by a notebook's file name run notebooks; a test that
    asks for the ``engine`` fixture (itself or through another fixture) needs Docker; the
    swarm tests and notebook 09 create a Docker Swarm.
    """
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = [v for v in callspec.params.values() if isinstance(v, str)] if callspec else []
        notebooks = [item.path.name] if item.path.suffix == ".ipynb" else []
        notebooks += [v for v in params if v.endswith(".ipynb")]
        if notebooks:
            item.add_marker(pytest.mark.notebooks)
            item.add_marker(pytest.mark.docker)
        if "engine" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.docker)
        if SWARM_NOTEBOOK in notebooks or item.path.name == "test_swarm.py":
            item.add_marker(pytest.mark.swarm)


def engine_state() -> set[str] | None:
    """Containers, networks, image names and volumes on the engine (None when no engine
    answers)."""
    try:
        engine = reglab.connect(timeout=10)
    except reglab.EngineError:
        return None
    # Listing asks for each object in turn: one removed meanwhile (by another user of the
    # engine) is a 404, and the listing is simply taken again.
    return poll("a listing of the engine's objects", lambda: _listing(engine), timeout=30)


def _listing(engine: DockerClient) -> set[str]:
    try:
        return _objects(engine)
    except docker.errors.NotFound as exc:
        raise NotYet(f"an object removed while listed: {exc.explanation}") from None


def _objects(engine: DockerClient) -> set[str]:
    return (
        {f"container {c.name}" for c in engine.containers.list(all=True)}
        | {f"network {n.name}" for n in engine.networks.list()}
        | {f"image {t}" for i in engine.images.list() for t in i.tags}
        # an image left with no name but a registry digest (``<none>`` in docker images)
        | {f"untagged image {i.id}" for i in engine.images.list() if not i.tags}
        | {f"volume {v.name}" for v in engine.volumes.list()}
        | {f"swarm {engine.info().get('Swarm', {}).get('LocalNodeState')}"}
        | {f"secret {s.name}" for s in _swarm_objects(engine.secrets)}
        | {f"config {c.name}" for c in _swarm_objects(engine.configs)}
    )


def _swarm_objects(collection: Any) -> list[Any]:
    try:
        return list(collection.list())
    except docker.errors.APIError:  # not a swarm manager: no secrets, no configs
        return []


def _created_before(attrs: dict[str, Any], started: float) -> bool:
    """True when the engine made the object before ``started`` (a time.time()): what an
    earlier run left, not what another session, started meanwhile, is using now."""
    created = str(attrs.get("Created") or attrs.get("CreatedAt") or "")[:19]
    try:
        made = dt.datetime.fromisoformat(created).replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        return False  # cannot tell: leave it
    return made < started


def remove_leftovers(started: float) -> list[str]:
    """Remove what an earlier, interrupted run of this suite left: only objects with the
    suite's name prefix (``reglab-test``) AND reglab's owner label, never a learner's, and
    made before this session started (another session's live containers are newer)."""
    try:
        engine = reglab.connect(timeout=10)
    except reglab.EngineError:
        return []
    removed = []
    for container in engine.containers.list(all=True, filters={"label": labels.OWNER_LABEL}):
        if (
            container.name.startswith(TEST_PREFIX)
            and labels.is_owned(container.labels)
            and _created_before(container.attrs, started)
        ):
            container.remove(force=True, v=True)
            removed.append(f"container {container.name}")
    for volume in engine.volumes.list(filters={"label": labels.OWNER_LABEL}):
        if (
            volume.name.startswith(TEST_PREFIX)
            and labels.is_owned(volume.attrs.get("Labels"))
            and _created_before(volume.attrs, started)
        ):
            volume.remove(force=True)  # a small disk (reglab.registry.disk), its keeper gone above
            removed.append(f"volume {volume.name}")
    if swarm.swarm_state(engine) == "active":  # stacks of notebook 09 and its tests
        for service in engine.services.list():
            stack = service.attrs["Spec"].get("Labels", {}).get("com.docker.stack.namespace", "")
            if stack.startswith(TEST_PREFIX) and _created_before(service.attrs, started):
                remove_test_stack(engine, stack)
                removed.append(f"stack {stack}")
        try:
            if swarm.leave_swarm(engine):
                removed.append("the swarm reglab made")
        except swarm.StaleBridge:  # left; the stale bridge is ended with the session
            removed.append("the swarm reglab made")
    return removed


def end_stale_bridge(alone: bool) -> str:
    """An empty docker_gwbridge the engine will not remove (reglab.swarm.StaleBridge: its count
    is stale until it restarts) is the engine's, not a test's: when this session is the only
    one and this project started the engine, it is restarted and the bridge removed. Returns
    what was done, for the report ("" when there is no such bridge)."""
    engine = reglab.connect(timeout=10)
    if swarm.swarm_state(engine) != "inactive" or cluster.endpoints(engine, swarm.GWBRIDGE) != {}:
        return ""
    try:
        engine.api.remove_network(swarm.GWBRIDGE)
        return ""  # not stale after all: removed (the leftover report then has no bridge)
    except docker.errors.APIError:
        pass
    if not alone:
        return f"{swarm.GWBRIDGE} kept by the engine's stale count: the outer session ends it"
    try:
        restart_our_engine()
    except (engine_control.NotOurs, OSError) as exc:  # not ours, or not root: its owner's call
        return f"{swarm.GWBRIDGE} kept by the engine's stale count ({exc}): restart the engine"
    reglab.connect(timeout=60).api.remove_network(swarm.GWBRIDGE)
    return f"{swarm.GWBRIDGE} was kept by the engine's stale count: restarted our engine, removed"


def only_test_session() -> bool:
    """True when no other test session runs on this machine: this one now holds the lock.

    Only then are reglab-test* containers leftovers of an interrupted run; while another
    session runs (a second suite, or the parent of an nbval run started by a test) they are
    its own, live. The lock is released when the process ends.
    """
    global _LOCK
    try:  # read-only is enough for flock, and works on a file another user created
        _LOCK = os.open(LOCK_FILE, os.O_RDONLY | os.O_CREAT, 0o666)
        fcntl.flock(_LOCK, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # held by another session, or not ours to open: remove nothing
    return True


LOCK_FILE = Path(tempfile.gettempdir()) / "reglab-tests.lock"
_LOCK: int | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[STARTED] = time.time()
    session.config.stash[ALONE] = only_test_session()
    session.config.stash[BEFORE] = engine_state()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if reporter and strict() and skipped and session.exitstatus == 0:
        reporter.write_line(
            f"FAILED: {skipped} test(s) skipped; in CI every test must run", red=True
        )
        session.exitstatus = 1
    before, ended = session.config.stash.get(BEFORE, None), ""
    if before is not None and f"network {swarm.GWBRIDGE}" not in before:
        ended = end_stale_bridge(session.config.stash.get(ALONE, False))
        if ended and reporter:
            reporter.write_line(ended, yellow=True)
    after = engine_state()
    if ended.startswith(f"{swarm.GWBRIDGE} kept"):  # the engine's, and named above
        after = (after or set()) - {f"network {swarm.GWBRIDGE}"}
    # Images the suite builds once and keeps: the workshop's own.
    kept = {f"image {ref}" for ref in images.WORKSHOP_IMAGES}
    left = sorted((after or set()) - (before or set()) - kept) if before is not None else []
    if left and reporter:
        reporter.write_line(f"left behind by the tests: {', '.join(left)}", red=True)
        if strict() and session.exitstatus == 0:
            session.exitstatus = 1


@pytest.fixture(scope="session")
def engine(request: pytest.FixtureRequest) -> DockerClient:
    try:
        client = reglab.connect()
    except reglab.EngineError as exc:
        if strict():
            pytest.fail(f"Docker tests must run here: {exc}")
        pytest.skip(f"no Docker engine: {exc}")
    # Only a session that runs Docker tests, and the only one running, clears what an
    # interrupted run left: unit tests never touch the engine.
    if request.config.stash.get(ALONE, False):
        left = remove_leftovers(request.config.stash[STARTED])
        if left:
            print(f"removed what an interrupted earlier run left: {', '.join(left)}")
    return client


@pytest.fixture(scope="session")
def workshop_images(engine: DockerClient) -> dict[str, str]:
    """Every workshop image (the tests cover every stage), built offline when missing or made
    from other versions of reglab's files (never contacts Docker Hub)."""
    return images.ensure_images(engine, images.ALL, offline=True)


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def registry_version() -> str:
    """The registry version ``make_registry`` starts: 3, the workshop's. A test module that
    checks a stage on both versions overrides this fixture with ``params=["3", "2"]``."""
    return "3"


@pytest.fixture
def make_registry(
    engine: DockerClient, workshop_images: dict[str, str], tmp_path: Path, registry_version: str
) -> Iterator[MakeRegistry]:
    """Factory: a started registry with a unique name; every one is removed afterwards.

    ``users`` (Credentials) are written to the working folder's htpasswd first, for the auth
    stage.
    """
    made: list[reglab.Registry] = []

    def make(
        stage: Stage | str = Stage.LOCAL,
        start: bool = True,
        users: Iterable[reglab.Credentials] = (),
        **kwargs: Any,
    ) -> reglab.Registry:
        kwargs.setdefault("port", free_port())
        kwargs.setdefault("workdir", tmp_path / "workdir")
        kwargs.setdefault("name", f"reglab-test-{uuid.uuid4().hex[:8]}")
        kwargs.setdefault("version", registry_version)
        registry = reglab.Registry(
            reglab.RegistryConfig(stage=Stage.parse(stage), **kwargs), engine
        )
        if users:
            htpasswd = Htpasswd.load(registry.config.paths.htpasswd)
            for credentials in users:
                htpasswd.set(credentials.user, credentials.password)
            htpasswd.save()
        made.append(registry)
        return registry.start() if start else registry

    yield make
    for registry in made:
        registry.remove()


@pytest.fixture
def unique_repo() -> str:
    return f"test-{uuid.uuid4().hex[:8]}/hello-world"


@pytest.fixture
def cleanup_images(engine: DockerClient) -> Iterator[list[str]]:
    """Image names a test adds; removed afterwards."""
    refs: list[str] = []
    yield refs
    for ref in refs:
        transfer.remove(engine, ref)
