"""Notebooks 01 and 02: a registry on this machine, and where it keeps what it stores."""

from __future__ import annotations

from reglab.base.errors import ReglabError, docker_errors
from reglab.base.labels import owner_labels
from reglab.engine.spec import ContainerSpec
from reglab.lab.exercises.verdict import letter, verdict
from reglab.lab.workshop import Workshop
from reglab.registry.container import Registry

# --- 01 -------------------------------------------------------------------------------------


def why_refused(answer: str) -> bool:
    """01, diagnose: why Docker refuses a plain-HTTP registry at the gateway address."""
    choice = letter(answer)
    hints = {
        "a": "the registry does listen there: its port is published on the gateway address "
        "too (look for -p GATEWAY:PORT:5000 in the docker run line)",
        "c": "the name is right: GATEWAY:PORT/hello-world:latest names this registry, as "
        "127.0.0.1:PORT/... did",
    }
    if choice not in ("a", "b", "c"):
        return verdict(False, "", 'answer with one letter, for example answer = "a"')
    return verdict(
        choice == "b",
        "outside 127.0.0.0/8 Docker speaks HTTPS unless the registry is listed in "
        '"insecure-registries" (daemon.json, then a Docker restart). The real fix is TLS: '
        "notebook 03.",
        hints.get(choice, ""),
    )


def pushed(registry: Registry, repository: str, tag: str, like: str = "hello-world") -> bool:
    """01, typed in a terminal: ``repository:tag`` is in the registry, the same image as
    ``like`` (the check asks the registry, so a push from any terminal counts)."""
    try:
        with registry.client() as api:
            want = api.manifest_digest(like, "latest")
            got = api.manifest_digest(repository, tag)
    except ReglabError as exc:
        return verdict(
            False,
            "",
            f"the registry does not serve {repository}:{tag} yet ({exc.problem}); in a terminal: "
            f"docker tag {like} {registry.ref(repository, tag)} && docker push "
            f"{registry.ref(repository, tag)}",
        )
    return verdict(
        got == want,
        f"the registry serves {repository}:{tag} with {like}'s digest {got}",
        f"{repository}:{tag} has digest {got}, {like} has {want}: push {like} itself",
    )


# --- 02 -------------------------------------------------------------------------------------


def leftover_volumes(ws: Workshop, answer: int | None) -> bool:
    """02, predict then run: how many volumes ``docker rm -f`` (without ``-v``) leaves of a
    local-stage registry. The check runs it, shows what was left, and removes it."""
    if not isinstance(answer, int) or isinstance(answer, bool) or answer < 0:
        return verdict(False, "", "answer with a number, for example answer = 0")
    name = f"{ws.name}-predict"
    try:
        left = _volumes_left_by_rm(ws, name)
    except ReglabError as exc:
        return verdict(False, "", f"the experiment could not run: {exc}")
    image = ws.config("local").image
    return verdict(
        answer == len(left),
        f"{len(left)}: {image} declares VOLUME /var/lib/registry, so without a bind mount "
        "the engine makes an anonymous volume, and docker rm keeps it unless you add -v",
        f"you said {answer}, the engine left {len(left)}. Look at the image: docker image "
        f"inspect --format '{{{{.Config.Volumes}}}}' {image}",
    )


def _volumes_left_by_rm(ws: Workshop, name: str) -> list[str]:
    """Run a local-stage registry, remove it without -v, return the volumes left (then remove
    them: the experiment leaves nothing behind)."""
    engine = ws.engine
    with docker_errors("the local-stage registry did not start"):
        for old in engine.containers.list(all=True, filters={"name": f"^{name}$"}):
            old.remove(force=True, v=True)
        local = ContainerSpec(ws.config("local").image, name=name, labels=owner_labels())
        ws.cli(local.shell())
        container = engine.containers.run(**local.run_kwargs())
        names_of_mounts = "'{{range .Mounts}}{{.Name}}{{end}}'"
        ws.cli(f"VOLUME=$(docker inspect --format {names_of_mounts} {name})")
        volumes = [m["Name"] for m in container.attrs["Mounts"] if m["Type"] == "volume"]
    ws.cli(f"docker rm -f {name}")
    ws.cli('docker volume ls --quiet --filter "name=$VOLUME"')
    with docker_errors("the registry could not be removed"):
        container.remove(force=True)  # no v=True: what docker rm -f does
        left = [v for v in volumes if engine.volumes.list(filters={"name": v})]
    for volume in left:
        print(volume)
    if left:
        ws.cli('docker volume rm "$VOLUME"')
    for volume in left:
        with docker_errors(f"cannot remove volume {volume}"):
            engine.volumes.get(volume).remove()
    return left
