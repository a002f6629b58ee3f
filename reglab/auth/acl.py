"""The access list of reglab's token server, in docker_auth's format and with its semantics.

The access list is docker_auth's (cesanta/docker_auth, ``auth_server/authz/acl.go``), format
and matching alike, so a list written here grants the same there: a YAML list of rules, each
``match`` on ``account``, ``type``, ``name`` and ``service`` and the ``actions`` it allows. A
pattern is a glob as Go's ``path.Match`` reads it (``*`` and ``?`` never cross a ``/``: ``team/*``
is not ``team/a/b``), or a regular expression between slashes, searched unanchored (``/foo/``
matches ``xfoox``). ``${account}``, ``${type}``, ``${name}`` and ``${service}`` stand for the
request's values (quoted), ``${account:1}`` for a group of the account's regular expression;
``""`` is the anonymous account; a field left out matches anything. For each requested scope
the **first** matching rule decides; no rule, no access. ``["*"]`` alone allows whatever was
asked; otherwise the requested actions the rule lists (``[]`` denies). A changed list is read
again at the next request, as docker_auth reloads its configuration (an unusable one is logged
and the old one kept). docker_auth's ``ip`` and ``labels`` matches are refused, not ignored.

Standard library and ``yaml`` only: the token server's container runs this file beside
``tokenserver.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

#: What a rule may allow. ``*`` grants whatever was asked (the catalog asks for ``*``).
ACTIONS = frozenset({"pull", "push", "delete", "*"})


class AclError(ValueError):
    """An access list that cannot be used; the message is one line naming the rule."""


#: The fields a rule matches on; Go's regexp.QuoteMeta's special characters.
FIELDS = ("account", "type", "name", "service")
_GO_META = set("\\.+*?()|[]{}^$")


@dataclass(frozen=True)
class Rule:
    """One access-list rule: patterns for the request's fields (None: any) and ``actions``."""

    account: str | None
    type: str | None
    name: str | None
    actions: tuple[str, ...]
    service: str | None = None

    def matches(self, account: str, type_: str, name: str, service: str = "") -> bool:
        """docker_auth's ``MatchConditions.Matches``: each pattern given matches its field, after
        ``${field}`` is replaced by the request's value, quoted as Go's ``regexp.QuoteMeta``
        does, and ``${field:N}`` by group N of that field's regular expression (unquoted)."""
        request = {"account": account, "type": type_, "name": name, "service": service}
        patterns = {key: getattr(self, key) for key in FIELDS}
        values = {
            f"${{{k}}}": "".join("\\" + c if c in _GO_META else c for c in v)
            for k, v in request.items()
        }
        given = " ".join(p for p in patterns.values() if p)
        for whole, key, group in re.findall(r"(\$\{(.+?):(\d+)\})", given):
            key = key[:1].lower() + key[1:]  # Go finds the field by strings.Title(key)
            source = patterns.get(key) or ""
            found = re.search(source[1:-1], request[key]) if _is_regex(source) else None
            if found and 1 <= int(group) <= len(found.groups()):
                values[whole] = found.group(int(group)) or ""
        keys = "|".join(map(re.escape, values))  # one pass, as Go's strings.Replacer
        return all(
            pattern is None
            or match_pattern(re.sub(keys, lambda m: values[m.group()], pattern), request[key])
            for key, pattern in patterns.items()
        )

    def allows(self, wanted: list[str]) -> list[str]:
        """The requested actions it allows: all for ``["*"]`` alone (docker_auth tests exactly
        that), else those it lists (``*`` among others grants only the catalog's ``*``)."""
        return list(wanted) if self.actions == ("*",) else [a for a in wanted if a in self.actions]


def _is_regex(pattern: str) -> bool:
    return len(pattern) > 2 and pattern[0] == "/" and pattern[-1] == "/"  # "//" is a glob


def match_pattern(pattern: str, value: str) -> bool:
    """docker_auth's ``matchString``: a regular expression between slashes, searched (not
    anchored), or a glob matching all of ``value`` as Go's ``path.Match``; a malformed
    pattern matches nothing."""
    if _is_regex(pattern):
        try:
            return re.search(pattern[1:-1], value) is not None
        except re.error:
            return False
    regex = glob_regex(pattern)
    return regex is not None and re.fullmatch(regex, value, re.DOTALL) is not None


def glob_regex(pattern: str) -> str | None:
    """Go's ``path.Match`` pattern as a Python regular expression; None for Go's ErrBadPattern.
    ``*`` is any run of characters but ``/``, ``?`` one of them, ``[a-z]``/``[^a-z]`` a class
    (which may match ``/``), ``\\c`` the character c."""
    out, i = [], 0
    while i < len(pattern):
        char, i = pattern[i], i + 1
        if char == "\\":
            if i == len(pattern):
                return None
            char, i = pattern[i], i + 1
        elif char in "*?":
            out.append("[^/]*" if char == "*" else "[^/]")
            continue
        elif char == "[":
            negated = pattern.startswith("^", i)
            i, ranges, count = i + negated, "", 0
            while not (pattern.startswith("]", i) and count):
                lo, i = _class_char(pattern, i)
                hi, i = _class_char(pattern, i + 1) if lo and pattern[i] == "-" else (lo, i)
                if lo is None or hi is None:
                    return None
                count += 1  # Go: a range from high to low is allowed, and matches nothing
                ranges += f"{re.escape(lo)}-{re.escape(hi)}" if lo <= hi else ""
            i += 1
            out.append(f"[{'^' * negated}{ranges}]" if ranges else "." if negated else "(?!)")
            continue
        out.append(re.escape(char))
    return "".join(out)


def _class_char(pattern: str, i: int) -> tuple[str | None, int]:
    """Go's ``getEsc``: one character of a class, maybe escaped, with more after it."""
    if i >= len(pattern) or pattern[i] in "-]":
        return None, i
    i += pattern[i] == "\\"
    return (None, i) if i + 1 >= len(pattern) else (pattern[i], i + 1)


def parse_acl(text: str, where: str = "the access list") -> list[Rule]:
    """Rules from docker_auth's YAML format; AclError (one line) for anything else."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark else ""
        raise AclError(f"{where} is not valid YAML{line}") from None
    if isinstance(data, dict) and "acl" in data:  # docker_auth's config file: the acl key
        data = data["acl"]
    if not isinstance(data, list):
        raise AclError(f"{where} must be a YAML list of rules (- match: ..., actions: [...])")
    rules = []
    for n, entry in enumerate(data, start=1):
        if not isinstance(entry, dict) or not isinstance(entry.get("match"), dict):
            raise AclError(f"rule {n} of {where} has no 'match:' mapping")
        match, actions = entry["match"], entry.get("actions", [])
        unknown = sorted(set(match) - set(FIELDS))
        if unknown:  # docker_auth also matches ip and labels: said, not ignored
            raise AclError(f"rule {n} of {where} matches on {unknown[0]!r}, unsupported")
        patterns = {k: None if match.get(k) is None else str(match[k]) for k in FIELDS}
        for key, pattern in patterns.items():  # docker_auth refuses such a list at load too
            try:
                re.compile(pattern[1:-1]) if pattern and _is_regex(pattern) else None
            except re.error as exc:
                raise AclError(f"rule {n} of {where}: {key} {pattern} is not a regular "
                               f"expression: {exc}") from None  # fmt: skip
        if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
            raise AclError(f"rule {n} of {where}: 'actions' must be a list, e.g. [pull]")
        bad = [a for a in actions if a not in ACTIONS]
        if bad:
            raise AclError(f"rule {n} of {where} names an unknown action {bad[0]!r} "
                           f"(known: {', '.join(sorted(ACTIONS))})")  # fmt: skip
        rules.append(Rule(actions=tuple(actions), **patterns))
    return rules


def load_acl(path: str | Path) -> list[Rule]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise AclError(f"cannot read the access list {path}: {exc.strerror}") from None
    return parse_acl(text, str(path))


def parse_scope(scope: str) -> tuple[str, str, list[str]] | None:
    """``repository:team/app:pull,push`` -> ("repository", "team/app", ["pull", "push"]).
    The name may hold a ``:`` (a registry host with a port); the actions follow the last one."""
    type_, sep, rest = scope.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not type_ or not name:
        return None
    return type_, name, [a for a in actions.split(",") if a]


def grant(
    rules: Iterable[Rule], account: str, scopes: Iterable[str], service: str = ""
) -> list[dict[str, Any]]:
    """The ``access`` claim: for each scope, the requested actions the first matching rule
    allows (scopes that get nothing are left out).

    One ``scope`` parameter may hold several scopes separated by spaces (RFC 6749, 3.3): a
    client mounting a blob asks for push here and pull where it mounts from in one."""
    rules = list(rules)
    access = []
    for scope in [s for value in scopes for s in value.split()]:
        parsed = parse_scope(scope)
        if parsed is None:
            continue
        type_, name, wanted = parsed
        rule = next((r for r in rules if r.matches(account, type_, name, service)), None)
        allowed = rule.allows(wanted) if rule is not None else []
        if allowed:
            access.append({"type": type_, "name": name, "actions": allowed})
    return access
