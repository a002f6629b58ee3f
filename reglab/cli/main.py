"""The ``reglab`` command: doctor, images, up, status, down, swarm, ...

Every user error ends with a non-zero exit and one line on stderr naming the problem and the fix;
never a traceback: :func:`main` hands whatever reached it to ``reglab.base.errors.at_boundary``.
The settings are resolved once, there too (:func:`resolve`), and reach every command as
``args.settings``. The commands that act on a running registry (down, delete, gc) read its
working folder from its container, so they need no ``--workdir`` to find it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict

from reglab.auth.htpasswd import Htpasswd, check_username
from reglab.base import settings
from reglab.base.errors import MAPPED, ConfigError, at_boundary
from reglab.base.progress import TextProgress
from reglab.base.shell import PathStyle
from reglab.cli import conformance as conformance_command
from reglab.cli import listen as listen_command
from reglab.cli import node as node_command
from reglab.cli import supply as supply_command
from reglab.cli import swarm as swarm_command
from reglab.cli import upgrade as upgrade_command
from reglab.cli.args import build_parser
from reglab.cli.login import login_for, read_password
from reglab.engine.connection import EngineInfo, connect
from reglab.engine.network import NETWORK, project_network
from reglab.images import archive, recipes
from reglab.images import build as images
from reglab.registry import gc, mirror, signing
from reglab.registry import token as tokenauth
from reglab.registry.config import RegistryConfig, Stage, check_notify_url, check_ttl
from reglab.registry.container import Registry, owned_registries
from reglab.registry.gate import Gate, remove_gate
from reglab.registry.login import Credentials
from reglab.registry.preflight import preflight
from reglab.registry.status import image_version, registry_workdir


def resolve(args: argparse.Namespace) -> settings.Settings:
    """This run's settings: the options given on the command line, else ``REGLAB_*``, else the
    defaults. The one place the command line reads the environment."""
    return settings.Settings.from_env().merged(
        port=getattr(args, "port", None),
        workdir=getattr(args, "workdir", None),
        name=getattr(args, "name", None) or None,
        offline=getattr(args, "offline", False) or None,  # --offline adds to REGLAB_OFFLINE
        registry=getattr(args, "registry", None),
    )


def _config(args: argparse.Namespace, stage: str = "local") -> RegistryConfig:
    """The registry's configuration, from this run's settings (the token server's port from
    reglab.base.ports)."""
    env: settings.Settings = args.settings
    parsed = Stage.parse(stage)
    return RegistryConfig(
        stage=parsed,
        port=env.port,
        workdir=env.workdir,
        name=env.name,
        token_port=env.ports.token_server if parsed.token else None,
        version=env.version,
    )


def _running_config(args: argparse.Namespace) -> RegistryConfig:
    """For the commands that act on a running registry: its working folder as its container
    says (its data folder, certificate or users), unless ``--workdir`` names one."""
    cfg = _config(args)
    if getattr(args, "workdir", None) is not None:
        return cfg
    found = registry_workdir(connect(), cfg.name)
    return dataclasses.replace(cfg, workdir=found) if found else cfg


def _doctor(args: argparse.Namespace) -> int:
    cfg = _config(args)
    stage = args.stage
    problems = preflight(cfg.port, cfg.workdir, cfg.name, stage, (cfg.version.major,))
    for problem in problems:
        print(f"problem: {problem}")
    if not problems:
        release = image_version(connect(), cfg.image)
        print(
            f"ready: {EngineInfo.of(connect())} answers, the {stage} images present "
            f"({cfg.image} is registry {release}), port {cfg.port} free, {cfg.workdir} writable"
        )
    return 1 if problems else 0


def _images(args: argparse.Namespace) -> int:
    engine = connect()
    if args.load:
        names = archive.load_images(engine, args.load)
        print(f"loaded {', '.join(names) or 'no named images'} from {args.load}")
        return 0
    # The tarball holds every image: a room without network may run any notebook.
    stage = recipes.ALL if args.all or args.save else args.stage
    how = images.ensure_images(
        engine,
        stage,
        registries=(args.settings.registry,),
        offline=args.settings.offline,
        registry_binary=args.registry_binary,
        progress=TextProgress(),
    )
    for ref, way in how.items():
        print(f"{ref}: {way}")
    if args.save:
        archive.save_images(engine, args.save)
        print(
            f"saved {', '.join(recipes.WORKSHOP_IMAGES)} to {args.save} "
            f"(load it elsewhere with: reglab images --load {args.save.name})"
        )
    return 0


#: A mirror's default container name (its upstream is usually reglab-registry).
MIRROR_NAME = "reglab-mirror"


def _up_mirror(args: argparse.Namespace) -> int:
    if not args.upstream:
        raise ConfigError(
            "reglab up mirror needs the registry to mirror",
            "add --upstream NAME (a reglab registry) or --upstream http://HOST:PORT",
        )
    env: settings.Settings = args.settings
    port = args.port if args.port is not None else env.ports.mirror  # beside its upstream
    name = args.name or MIRROR_NAME
    notify, ttl = _notify_url(args), check_ttl(args.ttl) if args.ttl else None
    if args.password_stdin and not args.user:
        raise ConfigError("--password-stdin needs --user", "add --user NAME")
    if args.user:
        check_username(args.user)  # before asking for a password
    login = Credentials(args.user, read_password(args)) if args.user else None
    registry = mirror.start_mirror(
        connect(), args.upstream, port, env.workdir, name, notify, env.version, login, ttl
    )
    print(f"mirror {name} of {registry.config.upstream} answers at {registry.url}")
    print(f"pull through it: docker pull {registry.address}/REPOSITORY:TAG (pushes are refused)")
    print("equivalent commands:")
    style = PathStyle.here(registry.config.workdir)
    for command in [
        *registry.config.folder_commands(style),
        *(mirror.login_step(login, registry.config.workdir, style).lines if login else ()),
        registry.config.docker_run_command(style),
    ]:
        print(command)
    return 0


def _notify_url(args: argparse.Namespace) -> str | None:
    return check_notify_url(args.notify) if args.notify is not None else None


def _up(args: argparse.Namespace) -> int:
    if args.stage == Stage.MIRROR.value:
        return _up_mirror(args)
    if args.upstream:
        raise ConfigError("--upstream only applies to a mirror", "reglab up mirror --upstream NAME")
    if args.ttl:
        raise ConfigError(
            "--ttl only applies to a mirror", "reglab up mirror --upstream NAME --ttl"
        )
    cfg = _config(args, args.stage)
    notify = _notify_url(args)  # checked before any password is read
    gated = _gate(args, cfg)  # a bad key or stage: one line, before anything starts
    if args.acl is not None and not cfg.stage.token:
        raise ConfigError("--acl only applies to the token stage", "reglab up token --acl FILE")
    if cfg.stage.token:
        tokenauth.use_acl(cfg.paths, args.acl)  # a bad file: one line, nothing changed
    if notify:  # on the workshop network, the registry reaches its gateway and containers
        project_network(connect())
        cfg = dataclasses.replace(cfg, notify=notify, network=NETWORK)
    if args.password_stdin and not args.user:
        raise ConfigError("--password-stdin needs --user", "add --user NAME")
    if args.user:
        if not (cfg.stage.auth or cfg.stage.token):
            raise ConfigError(
                "--user only applies to the auth and token stages",
                "run: reglab up auth --user NAME --password-stdin",
            )
        check_username(args.user)  # before asking for a password
        # refuses a corrupt file before any change; only this user's line may be non-bcrypt
        users = Htpasswd.load(cfg.paths.htpasswd, replacing=args.user)
        users.set(args.user, read_password(args))
        users.save()
    registry = Registry(cfg).start(timeout=args.timeout)
    # Paths as this terminal reaches them ("$REGLAB_WORKDIR/..." when that named the folder).
    style = PathStyle.here(cfg.workdir, args.settings.workdir_from_env)
    gate_lines: list[str] = []
    gate: Gate | None = None
    if gated is None:  # "reglab up" replaces: a gate of an earlier --require-signed goes
        remove_gate(registry.engine, cfg.name)
    else:
        gate, keys = gated
        trust = signing.trust_step(keys, gate.files, style)
        trust.run()
        gate.start(timeout=args.timeout)
        gate_lines = [*trust.lines, gate.docker_run_command(style)]
    print(f"registry {cfg.name} (stage {cfg.stage.value}) answers at {registry.url}")
    if cfg.notify:
        print(f"its events go to {cfg.notify}")
    if cfg.stage.tls:
        print(f"CA certificate for clients: {style.show(cfg.paths.ca_cert)}")
    commands = [*cfg.folder_commands(style), cfg.docker_run_command(style)]
    if cfg.stage.token:
        server = tokenauth.TokenServer(cfg, registry.engine)
        print(f"token server {server.name} answers at {server.url}")
        print(f"access list: {style.show(cfg.paths.acl)} (the first matching rule decides)")
        commands.insert(0, server.docker_run_command(style))
    if gate is not None:
        print(f"gate {gate.name} answers at {gate.url}: a manifest is served there only when "
              f"a key of {style.show(gate.files.trust)} signed it")  # fmt: skip
        for pattern in gate.immutable:
            print(f"immutable there: {pattern}")
        commands += gate_lines
    print("equivalent commands:")
    for command in commands:
        print(command)
    return 0


def _gate(args: argparse.Namespace, cfg: RegistryConfig) -> tuple[Gate, list[signing.Key]] | None:
    """The gate ``--require-signed`` asks for and the keys it is to trust, or None."""
    if not args.require_signed:
        if args.immutable:
            raise ConfigError(
                "--immutable needs --require-signed",
                "reglab up local --require-signed KEY --immutable PATTERN",
            )
        return None
    gate = Gate(cfg, connect(), tuple(args.immutable))
    return gate, [signing.read_key(path, secret=False) for path in args.require_signed]


def _user(args: argparse.Namespace) -> int:
    paths = RegistryConfig(workdir=args.settings.workdir).paths
    check_username(args.user)  # before asking for a password
    users = Htpasswd.load(paths.htpasswd, replacing=args.user)  # a corrupt file: changed not
    existed = args.user in users.names()
    users.set(args.user, read_password(args))
    users.save()
    print(f"{'changed the password of' if existed else 'added'} {args.user} in {paths.htpasswd}")
    print("the auth stage reads it on every request; the token stage's server per token")
    return 0


def _status(args: argparse.Namespace) -> int:
    found = [r for r in owned_registries() if args.name in (None, r.name)]
    if args.json:
        print(json.dumps([asdict(r) for r in found], indent=1))
    elif not found:
        print("no reglab registry" + (f" named {args.name}" if args.name else ""))
    for r in [] if args.json else found:
        ports = ", ".join(r.ports) or "-"
        print(
            f"{r.name}: {r.state}, "
            + (f"registry {r.version}, " if r.version else "")
            + f"stage {r.stage}, port {ports}, "
            f"tls {'on' if r.tls else 'off'}, auth {'on' if r.auth else 'off'}"
            + (f", folder {r.workdir}" if r.workdir else "")
        )
    return 0 if found or args.json else 1


def _down(args: argparse.Namespace) -> int:
    cfg = _running_config(args)
    removed = Registry(cfg).remove(purge=args.purge)
    print(f"removed {cfg.name}" if removed else f"no container named {cfg.name}")
    if args.purge:
        print(f"deleted {cfg.workdir}")
    elif cfg.paths.data.exists():
        print(f"data kept in {cfg.paths.data}")
    return 0


def _delete(args: argparse.Namespace) -> int:
    cfg = _running_config(args)
    registry = Registry.attach(connect(), cfg.name, cfg.workdir)
    repository, _, tag = args.image.rpartition(":")
    if not repository or "/" in tag:
        raise ConfigError(f"{args.image!r} is not REPO:TAG", "give a tag, e.g. hello-world:latest")
    auth = login_for(registry.config, args)
    with registry.client(auth=auth) as api:
        if args.image_and_tags:
            deleted = gc.delete_image(api, repository, tag)
        else:
            deleted = gc.delete_tag(api, repository, tag, registry.config.version)
    for line in deleted.describe():
        print(line)
    print("the blobs stay on disk until garbage collection")
    return 0


def _gc(args: argparse.Namespace) -> int:
    name = args.settings.name
    if Registry(RegistryConfig(name=name), connect()).container is None and (
        swarm_command.stack_runs(name)
    ):  # a swarm's replicas behind their front: the same collection, through the stack
        args.action = "gc"
        return swarm_command.run(args)
    cfg = _running_config(args)
    registry = Registry.attach(connect(), cfg.name, cfg.workdir)
    if not args.dry_run:
        print(f"registry {cfg.name}: read-only while the collector runs (pushes are refused)")
    done = gc.collect(registry, dry_run=args.dry_run, delete_untagged=args.delete_untagged)
    if done.dry_run:
        print(
            f"dry run: {len(done.eligible)} blob(s) would be deleted; nothing changed "
            f"({done.before:,} bytes of blobs)"
        )
        return 0
    print(f"collected: {len(done.eligible)} blob(s) deleted")
    print(
        f"bytes of blobs: before {done.before:,}, after {done.after:,}, "
        f"reclaimed {done.reclaimed:,}"
    )
    print(f"registry {cfg.name}: read-write again (restarted, so its blob cache starts empty)")
    return 0


def _notebooks(args: argparse.Namespace) -> int:
    # Imported here: the other commands need none of the notebook layer.
    from reglab.lab.copies import LEARNER_FOLDER, make_learner_copies

    dest = args.dest or args.source / LEARNER_FOLDER
    written = make_learner_copies(args.source, dest, reset=args.reset)
    print(
        f"{len(written)} learner cop{'y' if len(written) == 1 else 'ies'} written to {dest}"
        + ("" if written or args.reset else " (existing copies kept: --reset overwrites)")
    )
    return 0


COMMANDS = {
    "doctor": _doctor,
    "images": _images,
    "up": _up,
    "status": _status,
    "down": _down,
    "notebooks": _notebooks,
    "delete": _delete,
    "gc": _gc,
    "user": _user,
    "swarm": swarm_command.run,
    "node": node_command.run,
    "sbom": lambda args: supply_command.sbom(args, _running_config(args)),
    "referrers": lambda args: supply_command.referrers(args, _running_config(args)),
    "sign": lambda args: supply_command.sign(args, _running_config(args)),
    "verify": lambda args: supply_command.verify(args, _running_config(args)),
    "upgrade": upgrade_command.run,
    "conformance": conformance_command.run,
    "listen": listen_command.run,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.settings = resolve(args)
        return COMMANDS[args.command](args)
    except MAPPED as exc:  # reglab's errors, and the SDK's, HTTP's and the OS's mapped to one line
        print(f"reglab: error: {at_boundary(exc) or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("reglab: interrupted; run the same command again to finish", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
