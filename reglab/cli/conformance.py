"""``reglab conformance``: the OCI conformance suite against a running reglab registry.

A second opinion on the registry of any stage: the same spec, whatever stands in front of it
(TLS, a login, a token server). A mirror refuses pushes, so against one only the pull workflow
runs, reading what it mirrors. The exit status is 1 only when a failure has no known reason
(reglab.registry.conformance.CAUSES): distribution departs from the spec in known ways.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from reglab.cli.login import add_login_options, login_for
from reglab.engine.connection import connect
from reglab.registry import conformance
from reglab.registry.container import Registry
from reglab.registry.status import registry_workdir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--name", default=None, help="the registry's container (default: REGLAB_NAME or "
        "reglab-registry)",
    )  # fmt: skip
    parser.add_argument(
        "--workflows",
        default=None,
        metavar="LIST",
        help=f"comma-separated, of {','.join(conformance.WORKFLOWS)} (default: all; "
        "pull alone for a mirror)",
    )
    parser.add_argument(
        "--namespace",
        default="conformance",
        help="where the suite pushes: NAMESPACE/repo1 and /repo2 (default: conformance; on "
        "the token stage, one the user may push to: team for bob, whose rule team/* covers "
        "team/repo1, as a * never crosses a /)",
    )
    parser.add_argument(
        "--repository",
        default="hello-world",
        help="without push: the repository whose tags are pulled (default: hello-world)",
    )
    add_login_options(parser)
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        metavar="DIR",
        help="where the suite's reports go (junit.xml, report.html; default: a new temporary "
        "folder)",
    )


def run(args: argparse.Namespace) -> int:
    name = args.name or args.settings.name
    engine = connect()
    registry = Registry.attach(
        engine, name, registry_workdir(engine, name) or args.settings.workdir
    )
    default = "pull" if registry.config.upstream else ",".join(conformance.WORKFLOWS)
    workflows = conformance.parse_workflows(args.workflows or default)
    auth = login_for(registry.config, args)
    content = None
    if conformance.Workflow.PUSH not in workflows:
        content = conformance.content_of(registry, args.repository, auth)
    report = conformance.run(
        registry,
        namespace=args.namespace,
        auth=auth,
        workflows=workflows,
        content=content,
        results=args.results,
    )
    print(report.table())
    print(f"every request and answer: {report.folder / 'report.html' if report.folder else '-'}")
    return 1 if report.unexplained() else 0
