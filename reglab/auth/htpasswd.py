"""htpasswd files for the registry's basic auth, with bcrypt.

The registry accepts **only bcrypt** entries (others are silently ignored, so the user gets
"unauthorized"), and the registry image no longer ships the ``htpasswd`` tool, so we generate the
file in Python.

The registry checks the bcrypt hash on **every** authenticated request (each blob, each
manifest), so the cost factor is a speed/security trade-off. Measured on a 2-core machine pushing
a 67 MB, 8-layer image over TLS: plain registry 1.35 s, cost 5 1.43 s, cost 10 3.5 s, cost 12
9.5 s. The default, :data:`DEFAULT_COST` = 5, is what ``htpasswd -B`` uses and keeps an
authenticated push within about 6 % of an unauthenticated one; raise it for a registry that
faces the internet.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import bcrypt

from reglab.base.errors import HtpasswdError
from reglab.base.files import write_atomic

DEFAULT_COST = 5
MIN_COST, MAX_COST = 4, 31
_BCRYPT = re.compile(r"^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$")


def check_username(name: str) -> str:
    """Refuse names the htpasswd format or the registry cannot hold."""
    if not name:
        raise HtpasswdError("the user name is empty", "give a name such as 'moby'")
    if ":" in name:
        raise HtpasswdError(
            f"user name {name!r} contains ':'",
            "choose a name without ':' (it separates name and hash)",
        )
    if any(ch.isspace() for ch in name):
        raise HtpasswdError(
            f"user name {name!r} contains white space",
            "choose a name without spaces, tabs or newlines",
        )
    return name


def check_password(password: str) -> str:
    if not password:
        raise HtpasswdError("the password is empty", "give a non-empty password")
    if "\n" in password or "\r" in password:
        raise HtpasswdError("the password contains a line break", "give a one-line password")
    if len(password.encode()) > 72:
        raise HtpasswdError(
            "the password is longer than 72 bytes, bcrypt's limit",
            "give a password of at most 72 bytes",
        )
    return password


def hash_password(password: str, cost: int = DEFAULT_COST) -> str:
    """A bcrypt hash of ``password`` in the ``$2y$`` form htpasswd writes."""
    check_password(password)
    if not MIN_COST <= cost <= MAX_COST:
        raise HtpasswdError(
            f"bcrypt cost {cost} is out of range", f"give a cost between {MIN_COST} and {MAX_COST}"
        )
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=cost)).decode()
    return "$2y$" + hashed[4:]


def cost_of(hashed: str) -> int:
    """The bcrypt cost recorded in a hash."""
    return int(hashed.split("$")[2])


class Htpasswd:
    """The users of one htpasswd file. Changes are kept in memory until :meth:`save`.

    CLI equivalent of ``add``: ``htpasswd -B -C 5 FILE USER`` (from apache2-utils).
    """

    def __init__(self, path: str | Path, users: dict[str, str] | None = None) -> None:
        self.path = Path(path)
        self.users: dict[str, str] = dict(users or {})

    @classmethod
    def load(cls, path: str | Path, replacing: str | None = None) -> Htpasswd:
        """Read ``path`` (a missing file means no users yet); refuse corrupt or non-bcrypt lines.

        ``replacing`` names a user whose password is about to be set again: their line may be
        non-bcrypt (it is dropped here and written as bcrypt by the next :meth:`save`), which is
        how such a line gets fixed.
        """
        path = Path(path)
        users: dict[str, str] = {}
        if not path.exists():
            return cls(path, users)
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            raise HtpasswdError(
                f"{path} is not a text file", f"remove {path} and add the users again"
            ) from None
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            name, sep, hashed = line.partition(":")
            if not sep or not name:
                raise HtpasswdError(
                    f"{path} line {number} is not 'user:hash'",
                    f"fix or delete that line, or remove {path} and add the users again",
                )
            if not _BCRYPT.match(hashed):
                if name == replacing:
                    continue
                raise HtpasswdError(
                    f"{path} line {number} (user {name!r}) is not a bcrypt hash, and the registry "
                    "ignores such entries",
                    "set that user's password again with reglab "
                    "(it writes bcrypt), or use 'htpasswd -B'",
                )
            users[name] = hashed
        return cls(path, users)

    def __contains__(self, name: str) -> bool:
        return name in self.users

    def __len__(self) -> int:
        return len(self.users)

    def names(self) -> list[str]:
        return list(self.users)

    def set(self, name: str, password: str, cost: int = DEFAULT_COST) -> None:
        """Add the user or change their password."""
        self.users[check_username(name)] = hash_password(password, cost)

    def add(self, name: str, password: str, cost: int = DEFAULT_COST) -> None:
        """Add a new user; HtpasswdError when the name is taken."""
        if check_username(name) in self.users:
            raise HtpasswdError(
                f"user {name!r} already exists", "use update (or set) to change the password"
            )
        self.set(name, password, cost)

    def update(self, name: str, password: str, cost: int = DEFAULT_COST) -> None:
        """Change an existing user's password; HtpasswdError when there is no such user."""
        if name not in self.users:
            raise HtpasswdError(f"no user {name!r}", "use add to create the user")
        self.set(name, password, cost)

    def remove(self, name: str) -> None:
        if name not in self.users:
            known = ", ".join(self.users) or "none"
            raise HtpasswdError(f"no user {name!r}", f"users are: {known}")
        del self.users[name]

    def verify(self, name: str, password: str) -> bool:
        """True when ``password`` is the user's password (what the registry checks)."""
        hashed = self.users.get(name)
        if hashed is None or not password:
            return False
        return bcrypt.checkpw(password.encode(), ("$2b$" + hashed[4:]).encode())

    def text(self) -> str:
        return "".join(f"{name}:{hashed}\n" for name, hashed in self.users.items())

    def save(self) -> Path:
        """Write the file atomically with mode 0600: other users are kept, nothing half-written."""
        return write_atomic(self.path, self.text().encode(), 0o600)


def password_variable(user: str) -> str:
    """The shell variable that holds ``user``'s password in printed commands: PASSWORD_MOBY.

    A password never appears in a command a notebook prints: the learner puts it in this
    variable (``read -rs PASSWORD_MOBY``) and the commands read it from there.
    """
    return "PASSWORD_" + "".join(c.upper() if c.isalnum() else "_" for c in user)


def add_user_commands(path_shown: str, folder_shown: str, user: str, cost: int) -> list[str]:
    """Command lines that do what ``Htpasswd.set(user, ...)`` + ``save()`` do, with Apache's
    htpasswd: ``-B`` bcrypt, ``-C`` cost, ``-i`` the password from standard input. The file is
    created first if missing (``-c`` would empty an existing one)."""
    return [
        f"mkdir -p {folder_shown} && touch {path_shown}",
        f"printf '%s\\n' \"${password_variable(user)}\" | htpasswd -i -B -C {cost} "
        f"{path_shown} {shlex.quote(user)}",
    ]
