"""``DATABASE_URL`` as the bot's drivers take it: an async driver, and for PostgreSQL only
what asyncpg's ``connect()`` takes, so that a wrong option is one line at start, with the
right spelling, instead of a traceback at the first connection. No message shows the URL:
it may hold a password (``database_passwords`` finds each, for the log filter).
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

ASYNC_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")


def check_database_url(value: str) -> str:
    """A URL the bot's driver can use, or ValueError saying in one line what to write
    instead."""
    try:
        url = make_url(value)
    except ArgumentError:
        raise ValueError("is not a database URL, e.g. sqlite+aiosqlite:///exalate-bot.db") from None
    except ValueError:  # SQLAlchemy reads the port as a number
        raise ValueError(f"has a port that is not a number: {_PORT_RANGE}") from None
    if url.drivername not in ASYNC_DRIVERS:
        raise ValueError(f"must use an async driver: {' or '.join(ASYNC_DRIVERS)}")
    if url.drivername == "postgresql+asyncpg" and (problems := _asyncpg_problems(url)):
        raise ValueError("; ".join(problems))
    return value


# What asyncpg's connect() takes that a URL can carry as text: SQLAlchemy hands it each
# query parameter as a keyword argument. Its number, flag and mapping options are left
# out, as a URL can give them only as text, which asyncpg refuses or misreads.
_ASYNCPG_OPTIONS = frozenset(
    {
        "host",
        "port",
        "user",
        "password",
        "database",
        "passfile",
        "ssl",
        "service",
        "servicefile",
        "target_session_attrs",
        "krbsrvname",
        "gsslib",
        "prepared_statement_cache_size",  # SQLAlchemy's own, which makes it a number
    }
)
_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_PORT_RANGE = "a port is a number from 1 to 65535 (PostgreSQL's is 5432)"
# libpq's certificate options (psql, psycopg): asyncpg reads them from the environment.
_CERTIFICATE_VARIABLES = {
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
}


def _asyncpg_problems(url: URL) -> list[str]:
    """What asyncpg would refuse in ``url``, with the right spelling where there is one:
    found here, a setting is refused before anything is created, where asyncpg would
    stop the first connection with a traceback."""
    problems = [
        problem for name, given in url.query.items() if (problem := _option_problem(name, given))
    ]
    return problems or _port_problems(url)


def _option_problem(name: str, given: str | tuple[str, ...]) -> str | None:
    """What is wrong with the query parameter ``name``; never shows a value but an SSL
    mode's."""
    takes = "which asyncpg does not take"
    if isinstance(given, tuple) and name != "host":  # several hosts: one host= each
        return f"gives {name}= more than once"
    if name == "sslmode":
        mode = given if given in _SSL_MODES else "require"
        return f"gives sslmode=, libpq's spelling: asyncpg takes ssl={mode} ({_modes()})"
    if name in _CERTIFICATE_VARIABLES:
        variable = _CERTIFICATE_VARIABLES[name]
        return f"gives {name}=, {takes}: set {variable} to the file's path instead"
    if name == "dbname":
        return f"gives dbname=, {takes}: name the database in the path (…:5432/exalate)"
    if name == "ssl" and given not in _SSL_MODES:
        return f"gives an ssl= asyncpg does not know: {_modes()}"
    if name not in _ASYNCPG_OPTIONS:
        return f"gives {name[:40]}=, {takes} (it takes {', '.join(sorted(_ASYNCPG_OPTIONS))})"
    return None


def _modes() -> str:
    return "one of " + ", ".join(_SSL_MODES)


def _port_problems(url: URL) -> list[str]:
    """Ports that are no port, as SQLAlchemy reads them for asyncpg (also several
    hosts' ports)."""
    try:
        options = url.get_dialect()().create_connect_args(url)[1]
    except (ArgumentError, ValueError) as error:
        if "non-integer port" in str(error):
            return [f"has a port that is not a number: {_PORT_RANGE}"]
        return [f"cannot be read for asyncpg: {error}"]
    given = options.get("port", url.port)  # SQLAlchemy leaves port 0 out
    ports = given if isinstance(given, list) else [given]
    wrong = [port for port in ports if port is not None and not 0 < port < 65536]
    return [f"has the port {port}: {_PORT_RANGE}" for port in wrong]


def database_passwords(url: str) -> list[str]:
    """Every password ``url`` gives: in its userinfo, and in its query (``password=``, or
    any parameter named like one), however often."""
    parsed = make_url(url)
    found = [parsed.password] if parsed.password else []
    for name, given in parsed.query.items():
        if "password" in name.lower():
            found += [given] if isinstance(given, str) else list(given)
    return [str(password) for password in found if password]
