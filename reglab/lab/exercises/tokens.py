"""Notebook 08's exercises: predict what an access list grants in cases the notebook has not
shown, and find and fix a rule order that gives a user less than her rule says.

Each attempt goes through the real token flow (reglab.lab.access.can): the token server's
grant and the registry's answer decide, never a copy of the matching logic.
"""

from __future__ import annotations

from collections.abc import Iterable

from reglab.lab.access import add_rule, can
from reglab.lab.exercises.verdict import verdict
from reglab.lab.workshop import Workshop
from reglab.registry.container import Registry
from reglab.registry.login import Credentials
from reglab.registry.token import token_server_name

#: Exercise 1's attempts: who (None: anonymous), what, where. None of them is made before it.
NEW_CASES = {
    "a": ("bob", "pull", "public/hello"),
    "b": ("bob", "push", "team/app/tools"),
    "c": ("admin", "push", "team/app/tools"),
    "d": ("bob", "push", "team/tools"),
}


def predict_access(
    registry: Registry, users: dict[str, Credentials], answer: Iterable[str]
) -> bool:
    """08, predict: which of :data:`NEW_CASES` does the access list of Step 2 allow? The check
    makes each attempt through the token flow and shows what the registry said."""
    chosen = {str(a).strip().lower().strip("()") for a in answer}
    if not chosen <= set(NEW_CASES):
        return verdict(False, "", 'answer with letters, for example answer = {"a", "d"}')
    allowed = set()
    for choice, (user, action, repository) in NEW_CASES.items():
        ok = can(registry, users[user] if user else None, action, repository)
        said = "allowed" if ok else "refused"
        print(f"({choice}) {user or 'anonymous'} {action} {repository}: {said}")
        allowed |= {choice} if ok else set()
    return verdict(
        chosen == allowed,
        'bob has no rule for public/* (the anonymous rule is for the account "" only); '
        "team/* stops at a slash, so team/app/tools is not in it; admin's rule names no "
        "repository, so it matches every name; team/tools is in team/*",
        "for each attempt find the FIRST rule whose account and name match: a * never "
        'crosses a /, a rule without name matches every name, and "" is only anonymous',
    )


def break_rule_order(ws: Workshop, registry: Registry) -> Credentials:
    """08, the setup of the diagnosis: a new user, carol, and two rules added at the end of the
    list: every logged-in user may pull everything, and carol may push her own namespace.
    Her push to ``carol/app`` is then refused. Returns her credentials."""
    carol = Credentials.generate("carol")
    ws.add_user(carol)
    add_rule(ws, {"account": "/.+/"}, ["pull"])  # any logged-in user: pull
    add_rule(ws, {"account": "carol", "name": "carol/*"}, ["pull", "push"])
    ws.login(carol)
    ws.tag("hello-world", registry.ref("carol/app"))
    ws.try_push(registry.ref("carol/app"))
    ws.logout()
    return carol


def rule_order_fixed(registry: Registry, users: dict[str, Credentials], carol: Credentials) -> bool:
    """08, the check of the diagnosis: carol pushes ``carol/app``, and nothing else changed:
    she still only pulls ``team/app``, every logged-in user still pulls, bob still pushes
    ``team/app``, anonymous clients still cannot pull it."""
    expected = [
        (carol, "push", "carol/app", True, "carol still cannot push carol/app"),
        (carol, "push", "team/app", False, "carol may now push team/app: too much"),
        (carol, "pull", "team/app", True, "carol no longer pulls team/app"),
        (users["bob"], "push", "team/app", True, "bob no longer pushes team/app"),
        (None, "pull", "team/app", False, "anonymous clients may now pull team/app"),
    ]
    for who, action, repository, allowed, problem in expected:
        if can(registry, who, action, repository) != allowed:
            server = token_server_name(registry.config)
            return verdict(
                False,
                "",
                f"{problem}. `docker logs {server} 2>&1 | tail -3` says what each token "
                "granted; access.show_acl(ws) shows the order: which rule matches carol first?",
            )
    return verdict(
        True,
        "carol's own rule now comes before the rule for every logged-in user: the first "
        "rule that matches decides, so a narrow rule must precede a broad one",
        "",
    )


__all__ = ["NEW_CASES", "break_rule_order", "predict_access", "rule_order_fixed"]
