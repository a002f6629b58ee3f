"""The table of images, the stages that need them, and the decisions ensure_images takes (kept,
pulled, built, refused) without a Docker engine: a fake engine and a folder as the machine."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import docker.errors
import pytest
from docker import DockerClient

from reglab.base import settings
from reglab.base.errors import ConfigError, ImageError
from reglab.base.labels import BUILT_LABEL
from reglab.base.progress import ProgressCallback
from reglab.base.versions import V2, V3
from reglab.images import build, debian, recipes
from reglab.images.context import SOURCE_LABEL

FOUNDATION = [V3.image, settings.HELLO_IMAGE, settings.TOOLS_IMAGE]
TOKEN = [*FOUNDATION, settings.PYTHON_IMAGE, settings.TOKEN_IMAGE]

DEBIAN_SOURCES = """\
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
"""
UBUNTU_LIST = "deb http://archive.ubuntu.com/ubuntu jammy main restricted\n"


class FakeImage:
    def __init__(self, labels: dict[str, str], image_id: str = "sha256:old") -> None:
        self.labels, self.id = labels, image_id


class FakeEngine:
    """Just enough of docker.DockerClient for ensure_images: images by name."""

    def __init__(self, present: dict[str, dict[str, str]]) -> None:
        self.present = {ref: FakeImage(labels) for ref, labels in present.items()}
        self.images = self
        self.removed: list[str] = []

    def get(self, ref: str) -> FakeImage:
        if ref not in self.present:
            raise docker.errors.ImageNotFound(ref)
        return self.present[ref]

    def remove(self, image_id: str) -> None:
        self.removed.append(image_id)


def current(ref: str) -> dict[str, str]:
    recipe = next(r for r in recipes.RECIPES if r.ref == ref)
    return {BUILT_LABEL: "offline", SOURCE_LABEL: recipe.digest()}


def machine(tmp_path: Path, sources: dict[str, str], dpkg: bool = True) -> Path:
    """A folder laid out like a machine's root: its apt sources, and dpkg or not."""
    for name, text in sources.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    if dpkg:
        (tmp_path / "usr/bin").mkdir(parents=True)
        (tmp_path / "usr/bin/dpkg").write_text("")
    return tmp_path


@pytest.fixture
def ubuntu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This process sees an Ubuntu machine with nothing debootstrapped yet."""
    root = machine(tmp_path / "root", {"etc/apt/sources.list": UBUNTU_LIST})
    monkeypatch.setattr(debian, "HOST_ROOT", root)
    monkeypatch.setattr(debian, "CACHE", tmp_path / "cache")
    return root


#: The node notebook's two images (the node on Debian's containerd), then the gate, last.
NODE = (settings.CONTAINERD_IMAGE, settings.NODE_IMAGE)
SUPPLY = (settings.GATE_IMAGE,)


@pytest.mark.parametrize(
    ("stage", "refs"),
    [
        ("foundation", FOUNDATION),
        ("tls", FOUNDATION),
        ("mirror", FOUNDATION),
        ("07", FOUNDATION),
        ("token", TOKEN),
        ("08-token-auth", TOKEN),
        ("swarm", [r for r in recipes.WORKSHOP_IMAGES if r not in (V2.image, *NODE, *SUPPLY)]),
        ("node", [ref for ref in recipes.WORKSHOP_IMAGES if ref not in (V2.image, *SUPPLY)]),
        ("11", [ref for ref in recipes.WORKSHOP_IMAGES if ref not in (V2.image, *SUPPLY)]),
        ("supply", [ref for ref in recipes.WORKSHOP_IMAGES if ref != V2.image]),
        ("12-supply-chain", [ref for ref in recipes.WORKSHOP_IMAGES if ref != V2.image]),
        ("all", list(recipes.WORKSHOP_IMAGES)),
    ],
)
def test_a_stage_asks_for_its_images_only_bases_first(stage: str, refs: list[str]) -> None:
    assert [r.ref for r in recipes.recipes_for(stage)] == refs


def test_each_registry_version_brings_its_own_server_image() -> None:
    assert [r.ref for r in recipes.recipes_for("tls", ["2"])][0] == V2.image
    assert V3.image not in [r.ref for r in recipes.recipes_for("tls", ["2"])]
    both = [r.ref for r in recipes.recipes_for("local", ["3", "2"])]
    assert both[:2] == [V3.image, V2.image]
    with pytest.raises(ConfigError, match="registry version '4'"):
        recipes.recipes_for("local", ["4"])


def test_an_unknown_stage_is_one_line_naming_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="no images for stage 'tokens'.*foundation, local"):
        recipes.recipes_for("tokens")


@pytest.mark.parametrize(
    ("stage", "level"),
    [
        ("08-token-auth", "token"),
        ("09", "swarm"),
        ("11-kubernetes-nodes", "node"),
        ("12-supply-chain", "supply"),
        ("00-preflight", "foundation"),
        ("tls", "foundation"),
    ],
)
def test_a_notebook_or_stage_names_its_level(stage: str, level: str) -> None:
    assert recipes.stage_level(stage) == level


def test_every_image_made_from_reglab_files_has_its_own_source_hash() -> None:
    digests = [recipe.digest() for recipe in recipes.RECIPES]
    assert len(set(digests)) == len(digests)  # redis and haproxy differ by their CMD
    assert digests == [recipe.digest() for recipe in recipes.RECIPES]  # stable


LIST, DEB822 = "etc/apt/sources.list", "etc/apt/sources.list.d/debian.sources"
FR = "http://ftp.fr.debian.org/debian"
SECURITY = "deb http://security.debian.org/debian-security bookworm-security main\n"
UBUNTU_DEB822 = {
    "etc/apt/sources.list.d/ubuntu.sources": "URIs: http://archive.ubuntu.com/ubuntu\n"
}


@pytest.mark.parametrize(
    ("sources", "dpkg", "mirror"),
    [
        ({DEB822: DEBIAN_SOURCES}, True, "http://deb.debian.org/debian"),
        ({LIST: f"deb [arch=amd64] {FR} bookworm main\n"}, True, FR),
        ({LIST: SECURITY}, True, None),  # updates only: not a mirror
        ({LIST: UBUNTU_LIST}, True, None),
        (UBUNTU_DEB822, True, None),
        ({DEB822: DEBIAN_SOURCES}, False, None),  # no dpkg
    ],
)  # fmt: skip
def test_debian_mirror_only_on_a_machine_whose_apt_is_debian(
    tmp_path: Path, sources: dict[str, str], dpkg: bool, mirror: str | None
) -> None:
    assert debian.debian_mirror(machine(tmp_path, sources, dpkg)) == mirror


def test_debootstrap_images_are_refused_on_ubuntu_in_one_line_naming_the_tarball(
    ubuntu: Path,
) -> None:
    engine = FakeEngine({ref: current(ref) for ref in FOUNDATION})
    with pytest.raises(ImageError) as err:
        build.ensure_images(engine, "token", offline=True)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{settings.PYTHON_IMAGE} is made with debootstrap")
    assert "reglab images --save FILE.tar" in message
    assert "reglab images --load FILE.tar" in message


def test_the_foundation_needs_no_debian(ubuntu: Path) -> None:
    engine = FakeEngine({ref: current(ref) for ref in FOUNDATION})
    how = build.ensure_images(engine, offline=True)
    assert how == dict.fromkeys(FOUNDATION, "present")


def test_a_cached_file_system_is_imported_without_debian(ubuntu: Path) -> None:
    debian.CACHE.mkdir()
    (debian.CACHE / "reglab-python-12-0123456789abcdef.tar").write_text("")
    packages = list(recipes.RECIPES[3].debootstrap)
    assert debian.host_problem(settings.PYTHON_IMAGE, packages) is not None  # another key
    key = debian._cache_key(packages)
    (debian.CACHE / f"reglab-python-12-{key}.tar").write_text("")
    assert debian.host_problem(settings.PYTHON_IMAGE, packages) is None


def test_an_outdated_image_that_cannot_be_made_here_is_kept_with_a_notice(
    ubuntu: Path,
) -> None:
    stale = {BUILT_LABEL: "debootstrap", SOURCE_LABEL: "an older recipe"}
    present = {ref: current(ref) for ref in TOKEN} | {settings.PYTHON_IMAGE: stale}
    notices: list[str] = []
    how = build.ensure_images(FakeEngine(present), "token", notice=notices.append)
    assert how[settings.PYTHON_IMAGE] == "present (outdated)"
    assert len(notices) == 1 and "kept" in notices[0] and "--load FILE.tar" in notices[0]


def test_a_failed_pull_says_why_in_one_line_then_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []

    def refused(
        client: DockerClient, ref: str, progress: ProgressCallback | None = None
    ) -> NoReturn:
        raise ImageError(f"pull of {ref} failed: dial tcp: lookup registry-1.docker.io", "x")

    monkeypatch.setattr(build, "pull", refused)

    def make(client: DockerClient, options: recipes.BuildOptions) -> str:
        built.append("registry")
        return "registry:2"

    recipe = recipes.Recipe(V3.image, "foundation", make, list, pullable=True)
    monkeypatch.setattr(build, "recipes_for", lambda stage, registries: [recipe, recipe])
    notices: list[str] = []
    how = build.ensure_images(FakeEngine({}), notice=notices.append)
    assert how == {V3.image: "built"}
    assert built == ["registry", "registry"]
    # Docker Hub is asked once: the second image is built without waiting for it again
    assert notices == [
        "pull of registry:3 failed: dial tcp: lookup registry-1.docker.io; "
        "building registry:3 here instead"
    ]


def test_a_pulled_image_is_current_and_a_changed_source_is_not() -> None:
    engine = FakeEngine({V3.image: {}, settings.TOOLS_IMAGE: {BUILT_LABEL: "x"}})
    registry, _, _, tools = recipes.RECIPES[:4]
    assert build.image_current(engine, registry)
    assert not build.image_current(engine, tools)
    engine.present[settings.TOOLS_IMAGE].labels = current(settings.TOOLS_IMAGE)
    assert build.image_current(engine, tools)


@pytest.mark.parametrize(
    ("setting", "other"),
    [("SUITE", "trixie"), ("VARIANT", "buildd"), ("LEFTOVERS", ("var/lib/apt/lists",))],
)
def test_whatever_decides_a_debian_file_system_changes_its_hash_and_cache(
    monkeypatch: pytest.MonkeyPatch, setting: str, other: object
) -> None:
    """A debootstrap image is made again, from a new file system, when anything that decides
    it changes: the suite, the variant, what is emptied, the packages, the Dockerfile lines."""
    packages, changes = ["python3-minimal"], ['CMD ["python3"]']
    before = (debian.sources_of(packages, changes), debian._cache_key(packages))
    assert debian.sources_of(packages, ['CMD ["sh"]']) != before[0]
    assert debian._cache_key([*packages, "redis-server"]) != before[1]
    monkeypatch.setattr(debian, setting, other)
    assert debian.sources_of(packages, changes) != before[0]
    assert debian._cache_key(packages) != before[1]
