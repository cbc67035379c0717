"""Storage URLs: which database a command uses, and how it is named in messages.

URL: ``--storage``, else ``$VAE_SEARCH_STORAGE``, else ``sqlite:///vae_search.db``. A relative
SQLite path is relative to the current directory and is made absolute by :func:`resolve_url`, so
that workers started elsewhere and every log line name the same file. Accepted forms:
``sqlite:///PATH``, ``postgresql://`` / ``postgres://`` (both become ``postgresql+psycopg://``,
the psycopg 3 driver we install), ``postgresql+psycopg://`` and ``grpc://HOST:PORT`` (Optuna's
storage proxy; it has no heartbeats).

No message shows a password: URLs go through :func:`redact`, hosts through
:func:`server_address`.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path

from sqlalchemy.engine import make_url

from vae_search.errors import StorageError

ENV_VAR = "VAE_SEARCH_STORAGE"
DEFAULT_URL = "sqlite:///vae_search.db"
ACCEPTED = (
    "sqlite:///PATH, postgresql://USER[:PASSWORD]@HOST[:PORT]/DB (or postgresql+psycopg://), "
    "grpc://HOST:PORT"
)
CHECK_HINT = f"check --storage or {ENV_VAR}"
_SECRET_QUERY = re.compile(r"(?i)\b(password|passwd|pwd)=[^&;\s]*")


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (also for strings that do not parse)."""
    try:
        if url.count("@") > 1:  # a raw "@" in the password: parsers disagree where it ends
            raise ValueError(url)
        out = make_url(url).render_as_string(hide_password=True)
    except Exception:  # unparsable: cut everything between "user:" and the last "@"
        scheme, sep, rest = url.rpartition("://") if "://" in url else ("", "", url)
        if "@" in rest:
            userinfo, host = rest.rsplit("@", 1)
            user = userinfo.split(":", 1)[0]
            rest = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
        out = f"{scheme}{sep}{rest}"
    return _SECRET_QUERY.sub(lambda m: f"{m.group(1)}=***", out)


def server_address(url: str) -> str:
    """``host:port`` of a database URL for messages, never a part of its password.

    The host is what follows the last ``@`` of the authority, as a raw ``@`` in a password
    would otherwise make the parser take the password's tail for the host.
    """
    authority = url.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0]
    hostport = authority.rsplit("@", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not (sep and port.isdigit()):  # no port given ("[::1]" included)
        host, port = hostport, "5432"
    return f"{host or 'localhost'}:{port}"


def resolve_url(cli_value: str | None) -> str:
    """The storage URL to use: ``cli_value``, else ``$VAE_SEARCH_STORAGE``, else the default.

    Raises:
        StorageError: the URL is not one of the accepted forms.
    """
    url = cli_value or os.environ.get(ENV_VAR) or DEFAULT_URL
    return normalise(url)


def normalise(url: str) -> str:
    if url.startswith("grpc://"):
        host, _, port = url[len("grpc://") :].rstrip("/").rpartition(":")
        if not host or not port.isdigit():
            raise StorageError(f"malformed storage URL {redact(url)!r}: expected grpc://HOST:PORT")
        return url
    for alias in ("postgresql://", "postgres://"):
        if url.startswith(alias):
            url = "postgresql+psycopg://" + url[len(alias) :]
    if url.split("://", 1)[-1].split("/", 1)[0].count("@") > 1:
        raise StorageError(
            f"malformed storage URL {redact(url)!r}: a raw '@' in the user name or password; "
            "write it as %40"
        )
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018 - a non-numeric port raises here
    except Exception as e:
        raise StorageError(f"malformed storage URL {redact(url)!r}; accepted: {ACCEPTED}") from e
    if parsed.drivername == "sqlite":
        db = parsed.database
        if db and db != ":memory:" and not db.startswith("file:"):
            return parsed.set(database=str(Path(db).expanduser().absolute())).render_as_string(
                hide_password=False
            )
        return url
    if parsed.drivername == "postgresql+psycopg":
        if not parsed.database:
            raise StorageError(
                f"storage URL {redact(url)!r} names no database; accepted: {ACCEPTED}"
            )
        return url
    raise StorageError(
        f"unsupported storage URL {redact(url)!r} ({parsed.drivername}); accepted: {ACCEPTED}"
    )


def is_loopback(host: str) -> bool:
    """True when ``host`` is reachable only from this machine (what a service binds by default:
    the storage proxy and the dashboard have no authentication)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
