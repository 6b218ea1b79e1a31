"""Server settings and preload libraries, checked against what the server's image accepts.

A server started with an unknown setting, a bad value or a library its image lacks exits at
once, so `pulumi up` fails half-way with a crash-looping container or pod. What is checked
depends on the image (README "Config reference" says the same):

- `images.postgres` is an image with a catalogue (`pgfleet/postgres:15`, postgres15.json, read
  from the image itself): every setting name, value and library;
- another image of a major version with a catalogue (a registry's `postgres:15`): the built-in
  settings, which belong to the PostgreSQL version; module settings (`auto_explain.*`) and
  libraries are the image's own and are not checked;
- a major version with no catalogue: only the settings pgfleet manages itself.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterator

from .catalogue import BACKEND_SETTINGS, Catalogue, backends_problem, catalogue, value_problem
from .models import StackConfig
from .names import PlacedServer, placed_servers
from .problem import Problem

#: Majors the config accepts (ServerSettings.version); a catalogue may exist for each.
MAJORS = (15, 16, 17)
#: Settings pgfleet sets from other keys or the image's layout: a value here would fight them.
MANAGED = {
    "max_connections": "set the server's max_connections key (checked against its services' connection limits)",
    "shared_preload_libraries": "list the libraries under the server's extensions key",
    "listen_addresses": "pgfleet listens on every address of the container or pod (the platform bounds access)",
    "port": "the server listens on 5432 in its container or pod; set the server's port key for the host port",
    "data_directory": "the image keeps its data in PGDATA on the server's volume",
    "config_file": "the image's own postgresql.conf is used, with settings given here",
    "hba_file": "pgfleet writes pg_hba.conf (tls.require), or the image does at initdb",
    "ident_file": "the image writes pg_ident.conf at initdb",
}
#: Settings TLS sets when it is on.
TLS = {"ssl": "tls.enabled", "ssl_cert_file": "tls", "ssl_key_file": "tls"}
#: Settings the backups set when WAL archiving is on.
ARCHIVING = {
    "archive_mode": "backup.wal_archiving", "archive_command": "backup.target",
    "archive_library": "backup.target", "archive_timeout": "backup.archive_timeout",
}


def _image_catalogue(image: str) -> Catalogue | None:
    return next((c for c in map(catalogue, MAJORS) if c is not None and c.image == image), None)


def _hint(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def _managed(config: StackConfig, path: str, name: str, value: str) -> Problem | None:
    lowered = name.lower()
    if lowered in MANAGED:
        return Problem(path, f"pgfleet sets {name!r} itself: {MANAGED[lowered]}")
    if config.tls.enabled and lowered in TLS:
        return Problem(path, f"TLS sets {name!r} (the stack's CA issues the certificate): set {TLS[lowered]} instead")
    archiving = config.backup.enabled and config.backup.wal_archiving
    if archiving and lowered in ARCHIVING:
        return Problem(path, f"the backups set {name!r} (WAL archiving is on): set {ARCHIVING[lowered]} instead")
    if lowered == "wal_level" and value.lower() == "minimal":
        return Problem(path, "'minimal' stops the server from starting: pgfleet streams WAL to replicas and "
                             "backups (max_wal_senders >= 10); use replica (the default) or logical")
    return None


def _setting(full: Catalogue | None, same_major: Catalogue, path: str, name: str, value: str) -> Problem | None:
    if "." in name:
        module = name.split(".", 1)[0]
        # a setting of a module the image has is dropped, with only a warning in the log, when
        # its name or value is wrong; any other prefix is a custom setting the server keeps
        if full is None or module not in full.modules:
            return None
        known = [n for n in full.settings if n.startswith(module + ".")]
        if name not in full.settings:
            return Problem(path, f"{module} has no setting {name!r}{_hint(name, known)}: the server would drop it; "
                                 f"its settings: {', '.join(known)}")
        problem = value_problem(full.settings[name], value)
        return Problem(path, f"{problem} (the server would drop it)") if problem else None
    builtin = {n.lower(): s for n, s in same_major.settings.items() if "." not in n}
    settable = [n for n, s in builtin.items() if s.context != "internal"]
    setting = builtin.get(name.lower())
    if setting is None:
        return Problem(path, f"PostgreSQL {same_major.major} has no setting {name!r}, and a server given one does "
                             f"not start{_hint(name.lower(), settable)}")
    problem = value_problem(setting, value)
    return Problem(path, problem) if problem else None


def _server(config: StackConfig, server: PlacedServer) -> Iterator[Problem]:
    image = config.images.postgres
    full = _image_catalogue(image)
    if full is not None and full.major != server.settings.version:
        yield Problem(f"{server.path}.version", f"images.postgres {image!r} runs PostgreSQL {full.major}; "
                                                f"set version {full.major} or name a PostgreSQL "
                                                f"{server.settings.version} image")
        return
    for j, library in enumerate(server.settings.extensions):
        if full is not None and library not in full.libraries:
            # the encoding conversions (utf8_and_big5, ...) load too, but nobody preloads them
            preloadable = sorted(lib for lib in full.libraries if "_and_" not in lib)
            yield Problem(f"{server.path}.extensions[{j}]",
                          f"the image {image!r} has no library {library!r}, and a server told to preload it does "
                          f"not start{_hint(library, preloadable)}; it has: {', '.join(preloadable)} and the "
                          "encoding conversions")
    same_major = catalogue(server.settings.version)
    found = False
    for name, value in server.settings.settings.items():
        path = f"{server.path}.settings.{name}"
        problem = _managed(config, path, name, value)
        if problem is None and same_major is not None:
            problem = _setting(full, same_major, path, name, value)
        if problem is not None:
            found = True
            yield problem
    if same_major is not None and not found:
        yield from _backends(same_major, server)


def _backends(major: Catalogue, server: PlacedServer) -> Iterator[Problem]:
    """The connection and worker counts together, as the server counts them at start."""
    given = {name.lower(): (name, value) for name, value in server.settings.settings.items()}
    values = {name: major.number(name, given[name][1]) if name in given else major.number(name)
              for name in BACKEND_SETTINGS}
    values["max_connections"] = float(server.settings.max_connections)
    if "max_wal_senders" not in given:  # what SharedServer sets
        values["max_wal_senders"] = float(max(10, server.settings.replicas * 2 + 2))
    problem = backends_problem(values)
    if problem:
        name = next((given[n][0] for n in BACKEND_SETTINGS if n in given), None)
        yield Problem(f"{server.path}.settings.{name}" if name else f"{server.path}.max_connections",
                      f"{problem}; lower them")


def _backup_image(config: StackConfig, servers: list[PlacedServer]) -> Iterator[Problem]:
    """pg_dump and pgBackRest refuse a server newer than themselves."""
    backup = _image_catalogue(config.images.backup)
    if not config.backup.enabled or backup is None or not servers:
        return
    newest = max(servers, key=lambda server: server.settings.version)
    if backup.major < newest.settings.version:
        yield Problem(f"{config.platform}.images.backup",
                      f"{config.images.backup!r} has PostgreSQL {backup.major}'s pg_dump, which refuses "
                      f"{newest.path}'s PostgreSQL {newest.settings.version}: name a PostgreSQL "
                      f"{newest.settings.version} image (as images.postgres)")


def settings_problems(config: StackConfig) -> list[Problem]:
    servers = list(placed_servers(config))
    return [*(problem for server in servers for problem in _server(config, server)),
            *_backup_image(config, servers)]
