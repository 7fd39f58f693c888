"""``archivist-server``: run the team server, and administer its users, rights and audit log.

    archivist-server serve [--host 127.0.0.1] [--port 8700 | --uds PATH] [--certfile F --keyfile F] [--replica NAME]
    archivist-server add-user NAME [--admin] [--expires DATE|DAYS]   prints the token alone on its last line
    archivist-server new-token NAME [--expires DATE|DAYS]            a new token; the old ones stop working
    archivist-server remove-user NAME
    archivist-server users
    archivist-server grant NAME|@GROUP COLLECTION reader|editor|owner
    archivist-server revoke NAME|@GROUP COLLECTION
    archivist-server join GROUP NAME / leave GROUP NAME
    archivist-server audit [--user NAME] [--since DATE]
    archivist-server migrate            upgrade the database's schema; move the home's files into it once

Everything lives in the server's home folder (``--home``, ``ARCHIVIST_SERVER_HOME``):
``server.toml`` (the knowledge base's settings, as the desktop's, plus a ``[server]`` table),
``accounts.db``, ``audit.jsonl``, ``logs/<replica>/``, and the data. Several replicas may serve one home,
each under its own name (``--replica``, ``ARCHIVIST_REPLICA``, else the host's name), with its own log
folder and its own ``[replica.NAME]`` table of ``[server]`` keys. Administration works on the files directly,
with the server running or not; a change takes effect on the server's next request. Every file the
server or these commands write is readable by the server's account alone, whatever the umask.

With ``database_url`` in ``[server]`` (or ``ARCHIVIST_DATABASE_URL``, to keep a password out of the file),
the accounts, the audit log, each user's conversations, the check-ups and the followed folders live in
that database instead (PostgreSQL, shared by replicas on several machines): ``archivist-server migrate``
makes or upgrades its schema, and moves the home folder's files of each into it the first time. A URL's
password is never printed or logged.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import logging
import os
import re
import signal
import socket
import sys
import threading
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import platformdirs
from sqlalchemy.exc import SQLAlchemyError

from archivist import logs
from archivist.settings import Settings
from engine import ArchivistError
from server.accounts import Accounts, Role
from server.audit import AuditLog
from server.config import ServerConfig
from server.database import Database
from server.lease import FOLLOWED_FOLDERS, Lease, LeasedJob

log = logging.getLogger(__name__)

EXIT_OK, EXIT_ERROR = 0, 1
DEFAULT_PORT = 8700
T = TypeVar("T")
_ANSWER_WITHIN = 5.0  # seconds a served request waits for PostgreSQL before it is refused (see Database)
_REPLICA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
# The [server] keys, each of which a [replica.NAME] table may set for that replica alone.
_SERVER_KEYS = frozenset({"folders", "proxies", "proxy_header", "audit_questions", "anyone_creates", "max_upload_mb",
                          "max_body_kb", "max_calls_per_user", "watches_folders"})


def home_dir(given: Path | None = None) -> Path:
    """The server's home folder: ``--home``, else ``ARCHIVIST_SERVER_HOME``, else the platform's data folder."""
    if given is not None:
        return given
    override = os.environ.get("ARCHIVIST_SERVER_HOME")
    return Path(override) if override else Path(platformdirs.user_data_dir("Archivist Server", False))


def replica_name(given: str | None = None) -> str:
    """This replica's name: ``--replica``, else ``ARCHIVIST_REPLICA``, else the host's name. It names
    the replica's log folder and its table in ``server.toml``, and marks each line it logs."""
    name = given or os.environ.get("ARCHIVIST_REPLICA") or socket.gethostname().split(".")[0] or "server"
    if not _REPLICA_NAME.fullmatch(name):
        raise ArchivistError(f"{name!r} cannot name a replica: use up to 63 letters, digits, '.', '_' or '-', "
                             "starting with a letter or digit.")
    return name


def load_config(home: Path, replica: str = "") -> tuple[Settings, ServerConfig]:
    """``home/server.toml``: the knowledge base's settings, and the ``[server]`` table, with the keys
    of ``[replica.<replica>]`` in place of its own for that replica (``watches_folders`` above all)."""
    path = home / "server.toml"
    values = _settings_file(path)
    table = values.pop("server", {})
    replicas = values.pop("replica", {})
    if not isinstance(replicas, dict) or not all(isinstance(t, dict) for t in replicas.values()):
        raise ArchivistError(f"{path}: [replica] holds one table a replica, [replica.NAME].")
    for name, own in replicas.items():  # every replica's table, so that a typo shows on whichever starts
        if unknown := sorted(set(own) - _SERVER_KEYS):
            raise ArchivistError(f"{path}: [replica.{name}] sets {', '.join(unknown)}, which no replica may set; "
                                 f"it may set {', '.join(sorted(_SERVER_KEYS))}.")
    table = {**table, **replicas.get(replica, {})} if replica else table
    folders = [Path(f).expanduser() for f in table.get("folders", [])]
    for folder in folders:  # an offered folder holding the server's own files would offer its accounts and uploads
        if home.resolve().is_relative_to(folder.resolve()) or folder.resolve().is_relative_to(home.resolve()):
            raise ArchivistError(f"{home / 'server.toml'}: the offered folder {folder} and the server's home {home} "
                                 "overlap; offer folders outside the home.")
    given = _typed(path, table, "uploads_folder", str, "")  # a share every replica mounts at this path; relative: in home
    uploads = home / Path(given).expanduser() if given else home / "uploads"
    for folder in folders:  # an offered folder holding the uploads would offer every user's files to its editors
        if uploads.resolve().is_relative_to(folder.resolve()) or folder.resolve().is_relative_to(uploads.resolve()):
            raise ArchivistError(f"{path}: the offered folder {folder} and the uploads folder {uploads} overlap; "
                                 "keep them apart.")
    settings = Settings.from_dict(values)
    if not settings.data_dir:
        settings.data_dir = str(home / "data")
    config = ServerConfig(
        folders=folders,
        proxies=frozenset(table.get("proxies", [])),
        proxy_header=str(table.get("proxy_header", "X-Remote-User")),
        audit_questions=bool(table.get("audit_questions", True)),
        anyone_creates=bool(table.get("anyone_creates", False)),
        max_upload_mb=int(table.get("max_upload_mb", 512)),
        max_body_kb=int(table.get("max_body_kb", 1024)),
        max_calls_per_user=int(table.get("max_calls_per_user", 8)),
        watches_folders=bool(table.get("watches_folders", True)),
        watch_lease_seconds=float(_typed(path, table, "watch_lease_seconds", (int, float), 30.0)),
        uploads_folder=uploads,
        home=home,
        replica=replica,
        database_url=database_url(home),
        secure_cookies=_typed(path, table, "secure_cookies", bool, False),
        web_answer_tokens=_typed(path, table, "web_answer_tokens", int, None),
        public_url=_typed(path, table, "public_url", str, "").rstrip("/"),
    )
    oidc = table.get("oidc", {})
    if not isinstance(oidc, dict):
        raise ArchivistError(f"{path}: [server.oidc] is a table.")
    where = Path(f"{path} [server.oidc]")
    config.oidc_issuer = _typed(where, oidc, "issuer", str, "").rstrip("/")
    config.oidc_client_id = _typed(where, oidc, "client_id", str, "")
    config.oidc_client_secret = _typed(where, oidc, "client_secret", str, os.environ.get("ARCHIVIST_OIDC_CLIENT_SECRET", ""))
    config.oidc_user_claim = _typed(where, oidc, "user_claim", str, "preferred_username")
    config.oidc_label = _typed(where, oidc, "label", str, "")
    config.oidc_session_hours = float(_typed(where, oidc, "session_hours", (int, float), 8.0))
    if not 1 <= config.watch_lease_seconds <= 3600:
        raise ArchivistError(f"{path}: watch_lease_seconds is a number of seconds, from 1 to 3600.")
    if config.web_answer_tokens is not None and config.web_answer_tokens < 1:
        raise ArchivistError(f"{path}: web_answer_tokens is a number of tokens, at least 1.")
    if config.oidc_issuer and not (config.oidc_client_id and config.public_url):
        raise ArchivistError(f"{path}: signing in with OpenID Connect needs [server.oidc] client_id and "
                             "[server] public_url (the address browsers reach this server at).")
    return settings, config


def _typed(path: Path, table: dict[str, object], key: str, kind: type[T] | tuple[type, ...], default: T) -> T:
    """``table[key]`` if it is a ``kind`` (``default`` when absent): a setting of the wrong shape
    (``secure_cookies = "false"``, which ``bool()`` would read as true) stops the server with its name."""
    value = table.get(key, default)
    if value is not default and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
        raise ArchivistError(f"{path}: {key} = {value!r} is not a setting of the right kind.")
    return value  # type: ignore[return-value]


def database_url(home: Path) -> str:
    """Where the accounts and the audit log live: ``ARCHIVIST_DATABASE_URL``, else ``database_url`` in
    ``server.toml``'s ``[server]`` table; "" for the home folder's own files (SQLite and JSON lines)."""
    if url := os.environ.get("ARCHIVIST_DATABASE_URL", ""):
        return url
    table = _settings_file(home / "server.toml").get("server", {})
    url = table.get("database_url", "") if isinstance(table, dict) else ""
    if not isinstance(url, str):
        raise ArchivistError(f"{home / 'server.toml'}: database_url is a URL in quotes.")
    return url


@contextlib.contextmanager
def open_state(home: Path, answer_within: float | None = None, replica: str = "") -> Iterator[
        tuple[Accounts, AuditLog, str, Database | None]]:
    """The accounts and the audit log, in the database of ``database_url`` (at this version's schema,
    else ``DatabaseError``: run migrate) or in the home folder's files; where, said for a log line;
    and the shared database (None without one). ``answer_within``: see ``Database``; a server's
    requests are bounded, an administrator's command is not. ``replica``: the serving replica, named
    in each audit line it writes."""
    if not (url := database_url(home)):
        accounts = Accounts(home / "accounts.db")
        try:
            yield (accounts, AuditLog(home / "audit.jsonl", replica), f"{home / 'accounts.db'} and {home / 'audit.jsonl'}",
                   None)
        finally:
            accounts.close()
        return
    database = Database(url, answer_within)
    try:
        database.require_current()
        yield Accounts(database), AuditLog(database, replica), database.shown, database
    finally:
        database.close()


def _settings_file(path: Path) -> dict[str, Any]:  # TOML's values: tables, lists, strings, numbers
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ArchivistError(f"Cannot read {path}: {exc}") from exc


def _when(text: str) -> float:
    """A date (``2027-01-31``) or a number of days from now, as a Unix time."""
    if text.isdigit():
        return (datetime.datetime.now() + datetime.timedelta(days=int(text))).timestamp()
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a date (YYYY-MM-DD) nor a number of days") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="archivist-server", description="Archivist's knowledge base for a team.")
    parser.add_argument("--home", type=Path, help="the server's folder (default: ARCHIVIST_SERVER_HOME or the "
                                                   "platform's data folder)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="serve the knowledge base (on loopback unless told otherwise)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    serve.add_argument("--uds", type=Path, help="listen on this Unix socket instead (for a reverse proxy on the same "
                                               "machine; list \"unix\" in proxies to trust its header)")
    serve.add_argument("--certfile", type=Path, help="TLS certificate (PEM); with --keyfile, serve HTTPS")
    serve.add_argument("--keyfile", type=Path, help="TLS private key (PEM)")
    serve.add_argument("--replica", help="this replica's name, for its log folder (logs/NAME/) and its [replica.NAME] "
                                         "table in server.toml (default: ARCHIVIST_REPLICA, else the host's name)")
    add = commands.add_parser("add-user", help="create a user; prints their token (shown only now)")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="may do everything, on every collection")
    add.add_argument("--expires", type=_when, help="the token stops working then (a date, or a number of days)")
    token = commands.add_parser("new-token", help="give a user a new token; their old ones stop working")
    token.add_argument("name")
    token.add_argument("--expires", type=_when, help="the token stops working then (a date, or a number of days)")
    commands.add_parser("remove-user", help="remove a user: their tokens and rights go at once").add_argument("name")
    commands.add_parser("users", help="list the users")
    grant = commands.add_parser("grant", help="give a user (or @group) a role on a collection")
    grant.add_argument("name", help="a user, or @group")
    grant.add_argument("collection")
    grant.add_argument("role", choices=[r.name.lower() for r in Role])
    revoke = commands.add_parser("revoke", help="take a user's (or @group's) role on a collection away")
    revoke.add_argument("name", help="a user, or @group")
    revoke.add_argument("collection")
    for verb, words in (("join", "add a user to a group"), ("leave", "take a user out of a group")):
        group = commands.add_parser(verb, help=words)
        group.add_argument("group")
        group.add_argument("name")
    audit = commands.add_parser("audit", help="who ingested, removed, granted or asked what, and when")
    audit.add_argument("--user", help="only this user (? for refused sign-ins)")
    audit.add_argument("--since", type=_when, help="from this date on (or this many days back: use a date)")
    commands.add_parser("migrate", help="upgrade the database's schema (database_url, else accounts.db); the first "
                                        "time, move the home folder's accounts and audit log into database_url")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.umask(0o077)  # accounts, audit, conversations, uploads: the server's account's alone
    args = _parser().parse_args(argv)
    home = home_dir(args.home)
    try:
        if args.command == "serve":
            return _serve(home, replica_name(args.replica), args.host, args.port, args.uds, args.certfile, args.keyfile)
        if args.command == "migrate":
            return _migrate(home)
        with open_state(home) as (accounts, audit, _, _):
            if args.command == "audit":
                for entry in audit.entries(args.user, args.since):
                    print(entry.line())
                return EXIT_OK
            return _administer(accounts, audit, args)
    except ArchivistError as exc:
        print(f"archivist-server: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except SQLAlchemyError as exc:  # its words name statements and hosts, never a URL's password
        print(f"archivist-server: the database failed: {str(exc).splitlines()[0]}", file=sys.stderr)
        return EXIT_ERROR


def _migrate(home: Path) -> int:
    """Upgrade the schema in use; with ``database_url``, move the home folder's files into it once."""
    from server.migrations.home_folder import move_home_folder

    url = database_url(home)
    database = Database(url, answer_within=None) if url else Database.sqlite(home / "accounts.db")
    try:
        before = database.revision()
        database.upgrade()
        after = database.revision()
        was = f"revision {before}" if before else "no revision (empty, or accounts.db of the first versions)"
        print(f"{database.shown}: " + (f"upgraded from {was} to revision {after}." if before != after
                                        else f"at revision {after}, the newest."))
        if url:
            settings, _ = load_config(home, "")
            for moved in move_home_folder(home, database, settings.data_path):
                print(moved.sentence())
    finally:
        database.close()
    return EXIT_OK


def _administer(accounts: Accounts, audit: AuditLog, args: argparse.Namespace) -> int:
    admin = os.environ.get("USER") or os.environ.get("USERNAME") or "administrator"
    if args.command == "add-user":
        token = accounts.add_user(args.name, args.admin, args.expires)
        audit.record(f"({admin})", "add-user", detail=args.name + (" as administrator" if args.admin else ""))
        print(f"Created {args.name}. Their token, shown only now:")
        print(token)
    elif args.command == "new-token":
        token = accounts.new_token(args.name, args.expires, replace=True)
        audit.record(f"({admin})", "new-token", detail=args.name)
        print(f"New token for {args.name} (the old ones no longer work):")
        print(token)
    elif args.command == "remove-user":
        accounts.remove_user(args.name)
        audit.record(f"({admin})", "remove-user", detail=args.name)
        print(f"Removed {args.name}.")
    elif args.command == "users":
        for name, is_admin in accounts.users():
            print(name + ("  (administrator)" if is_admin else ""))
    elif args.command == "grant":
        accounts.grant(args.name, args.collection, Role.named(args.role))
        audit.record(f"({admin})", "grant", args.collection, f"{args.name} {args.role}")
        print(f"{args.name} is now {args.role} of {args.collection!r}.")
    elif args.command == "revoke":
        if not accounts.revoke(args.name, args.collection):
            print(f"{args.name} had no role on {args.collection!r}.", file=sys.stderr)
            return EXIT_ERROR
        audit.record(f"({admin})", "revoke", args.collection, args.name)
        print(f"{args.name} no longer has a role on {args.collection!r}.")
    elif args.command in ("join", "leave"):
        (accounts.join if args.command == "join" else accounts.leave)(args.group, args.name)
        audit.record(f"({admin})", args.command, detail=f"{args.name} @{args.group.removeprefix('@')}")
    return EXIT_OK


def _serve(home: Path, replica: str, host: str, port: int, uds: Path | None, certfile: Path | None,
           keyfile: Path | None) -> int:
    import uvicorn

    from archivist.composition import KeptState, open_knowledge_base
    from server.app import create_app, uvicorn_options
    from server.collection_state import CheckupRows, ConversationRows, FollowRows

    settings, config = load_config(home, replica)
    logs.configure(home / "logs" / replica, process="server", label=replica)
    log.info("replica %s (process %d) serving %s on %s; %s", replica, os.getpid(), home, uds or f"{host}:{port}",
             "watching the followed folders while it holds their lease" if config.watches_folders
             else "not watching the followed folders")
    with open_state(home, _ANSWER_WITHIN, replica) as (accounts, audit, kept, shared):
        log.info("accounts, audit log%s in %s", ", conversations, check-ups and followed folders" if shared else "", kept)
        # Shared by replicas on several machines: conversations, check-ups and followed folders in the database
        # too. On one machine they stay in the home folder's files, each user's conversations apart.
        state = KeptState(ConversationRows(shared), CheckupRows(shared), FollowRows(shared)) if shared else None
        kb = open_knowledge_base(settings, confine_folders=True, kept=state)
        # Replicas that may watch take turns by a lease in the database (the shared one, else accounts.db):
        # one at a time watches the followed folders, and another takes over when it dies.
        database = shared or Database.sqlite(home / "accounts.db")
        watching = LeasedJob(Lease(database, FOLLOWED_FOLDERS, replica, config.watch_lease_seconds),
                             kb.following.start, kb.following.stop, "watching the followed folders")
        if threading.current_thread() is threading.main_thread():
            # uvicorn ends on SIGTERM (systemctl stop) and then raises it again, which would end the process here
            # at once: ending it by SystemExit instead runs what follows, so the lease is given back at once.
            signal.signal(signal.SIGTERM, _terminated)
        try:
            if config.watches_folders:
                watching.begin()
            app = create_app(kb, accounts, audit, config, settings.cache_redis_url,
                             conversations=state.conversations if state else None)
            where = {"uds": str(uds)} if uds else {"host": host, "port": port}
            uvicorn.run(app, **where, ssl_certfile=certfile, ssl_keyfile=keyfile,  # type: ignore[arg-type]
                        log_level="info", timeout_graceful_shutdown=5, **uvicorn_options())
        finally:
            watching.end()
            if database is not shared:
                database.close()
            kb.close()
    return EXIT_OK


def _terminated(_signal: int, _frame: FrameType | None) -> None:
    raise SystemExit(EXIT_OK)


if __name__ == "__main__":
    sys.exit(main())
