"""What the restore drills on Docker and on Kubernetes write, read and check, the same way on
both: an `items` table per service, read and written through the service's own URLs."""
from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import psycopg
import pytest

from .live import Live, connect


def rows(live: Live, service: str, kind: str = "url") -> list[int]:
    with connect(live.url(service, kind)) as app:
        return [r[0] for r in app.execute("SELECT id FROM items ORDER BY id").fetchall()]


def write(live: Live, service: str, *ids: int) -> None:
    with connect(live.url(service)) as app:
        for i in ids:
            app.execute("INSERT INTO items VALUES (%s, %s)", (i, f"{service}-{i}"))


def server_now(live: Live, service: str = "orders") -> str:
    with connect(live.admin(service)) as admin:
        return admin.execute("SELECT clock_timestamp()::text").fetchone()[0]


def check_restored_database_keeps_owner_and_grants(live: Live, service: str, neighbour: str) -> None:
    """After a dump restore: the app still writes, the owner and PUBLIC's grants are as
    declared, no renamed copy is left, and the neighbour on the same server stays out."""
    database = live.services[service]["database"]
    write(live, service, 13)
    with connect(live.admin(service)) as admin:
        public, owner = admin.execute(
            "SELECT has_database_privilege('public', %(db)s, 'CONNECT'), pg_get_userbyid(datdba) "
            "FROM pg_database WHERE datname = %(db)s", {"db": database}).fetchone()
        assert public is False and owner == f"{service}_owner"
        leftovers = admin.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                  (f"{database}%",)).fetchall()
        assert leftovers == [(database,)]
    other = urlsplit(live.urls[neighbour]["url"])
    server = live.services[service]["server"]
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        connect(live.server_url(server, other.username or "", other.password or "", database)).close()


def check_a_target_beyond_the_archive_puts_the_data_back(
        live: Live, read: Callable[[Live, str], list[int]] = rows) -> list[int]:
    """`pgfleet-restore pitr` to a time the archive does not reach fails with the server's
    reason, and the server serves the rows it had (`read`: how they are read back after the
    server's restart). Returns those rows."""
    before = rows(live, "orders")
    with connect(live.admin("orders")) as admin:
        tomorrow = admin.execute("SELECT (now() + interval '1 day')::text").fetchone()[0]
    result = live.restore("pitr", "--server", live.services["orders"]["server"], tomorrow)
    assert result.returncode == 1
    assert "recovery ended before configured recovery target was reached" in result.stderr
    assert "the previous data is back in place" in result.stderr
    assert read(live, "orders") == before
    return before


def restore_to_a_noted_time(live: Live, take_base_backup: Callable[[], object]) -> None:
    """The point-in-time drill up to its restore: rows 1-3, a base backup, rows 4 and 5, the
    time noted, row 6, then the mistake (every row deleted), then `pgfleet-restore pitr` to the
    noted time, which must succeed. The caller checks what came back, as its platform reads it."""
    write(live, "orders", 1, 2, 3)
    take_base_backup()
    write(live, "orders", 4, 5)
    target = server_now(live)
    write(live, "orders", 6)
    with connect(live.url("orders", "migration_url")) as migrator:
        migrator.execute("DELETE FROM items")  # the mistake the restore undoes
    result = live.restore("pitr", "--server", live.services["orders"]["server"], target)
    assert result.returncode == 0, result.stderr
