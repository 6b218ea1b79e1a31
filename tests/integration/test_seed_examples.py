"""Every seed system that runs on Docker, for real, each with its cross-access matrix: one shared
server (seed 001), one server per service (seed 000), a read replica with WAL archiving and
encrypted 30-day dumps (seed 002), the five movie-booking servers under the seed's host names
(seed 003, local), and one server plus Redis with an ACL user per project (seed 004). Seed 003
on Kubernetes is tests/cluster/test_movie_booking.py."""
from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.support import live as checks
from tests.support.live import Live, connect, docker_stack, isolated
from tests.support.program import stack_config

# example -> (port offset, the servers it must run)
EXAMPLES = {
    "shared-postgres": (10500, {"shared_postgres"}),
    "game-platform": (10600, {"auth", "user", "chat", "game", "notification"}),
    "quest-services": (10700, {"postgres"}),
    "movie-booking-local": (10800, {"auth", "movie", "booking", "payment", "notification"}),
    "db-server": (10900, {"db_server"}),
}


def prefix_of(name: str) -> str:
    return f"pgfleet-it-{name}-"


#: Made at import, so a port one of them shares with another test stack stops the collection.
CONFIGS = {name: isolated(stack_config(f"examples/{name}.yaml"), prefix_of(name), offset)
           for name, (offset, _) in EXAMPLES.items()}


@pytest.fixture(scope="module", params=sorted(EXAMPLES))
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    name = request.param
    with docker_stack(tmp_path_factory.mktemp(name), f"it-{name}", CONFIGS[name], prefix_of(name)) as live:
        yield live


def example_of(live: Live) -> str:
    return live.prefix.removeprefix("pgfleet-it-").rstrip("-")


def test_topology_is_the_seeds(live: Live) -> None:
    assert set(live.servers) == EXAMPLES[example_of(live)][1]
    assert {info["server"] for info in live.services.values()} == EXAMPLES[example_of(live)][1]


def test_isolation_on_the_live_system(live: Live) -> None:
    checks.check_apps_use_what_their_migrators_create(live)
    n = len(live.services)
    assert checks.check_no_service_reaches_another(live) == n * (n - 1)
    checks.check_app_roles_are_least_privileged(live)
    checks.check_public_has_no_connect(live)
    checks.check_no_secret_in_container_config(live)


def test_each_approle_reads_only_its_own_path(live: Live) -> None:
    checks.check_approles_read_only_their_own_path(live)


def test_second_preview_shows_no_changes(live: Live) -> None:
    checks.check_second_preview_is_empty(live)


def job(live: Live, name: str, script: str) -> str:
    """A shell script as postgres in one of the stack's job containers, with the job's settings."""
    result = subprocess.run(["docker", "exec", "-u", "postgres", f"{live.prefix}{name}", "sh", "-c",
                             f". /etc/pgfleet/job.env && {script}"], capture_output=True, text=True, timeout=600,
                            check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("live", ["quest-services"], indirect=True)
def test_seed_002_reads_on_the_replica_archived_wal_and_encrypted_30_day_dumps(live: Live) -> None:
    with connect(live.url("quest", "migration_url")) as migrator:
        migrator.execute("CREATE TABLE IF NOT EXISTS quests (title text)")
        migrator.execute("INSERT INTO quests VALUES ('written on the primary')")
    read_host = live.servers["postgres"]["read_host"]
    assert live.urls["quest"]["read_url"].split("@")[1].startswith(f"{read_host}:")  # DB_READ_HOST
    with connect(live.url("quest", "read_url")) as reader:
        assert reader.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    with connect(live.admin("quest")) as admin:
        settings = dict(admin.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN ('archive_mode', 'archive_timeout')").fetchall())
        assert settings == {"archive_mode": "on", "archive_timeout": "60"}
        admin.execute("SELECT pg_switch_wal()")
    # the dump job as configured: daily at 00:00 UTC, 30 days, AES-256; and a dump run now
    assert job(live, "postgres-dump", "cat /etc/cron.d/pgfleet").startswith("0 0 * * * ")
    assert job(live, "postgres-dump", "echo $PGFLEET_RETENTION_DAYS $PGBACKREST_REPO1_RETENTION_FULL "
                                      "$PGBACKREST_REPO1_CIPHER_TYPE").split() == ["30", "30", "aes-256-cbc"]
    job(live, "postgres-dump", "pgfleet-backup dump")
    listing = job(live, "postgres-dump", "pgfleet-backup list")
    for database in ("quest_db", "notification_db", "social_db"):
        dumps = listing.split(f"dumps of {database}:")[1].split("dumps of")[0]
        assert ".dump.enc" in dumps, listing
    assert "cipher: aes-256-cbc" in listing
    with connect(live.admin("quest")) as admin:
        (archived,) = admin.execute("SELECT archived_count FROM pg_stat_archiver").fetchone()
        assert archived > 0


@pytest.mark.parametrize("live", ["db-server"], indirect=True)
def test_seed_004_each_projects_redis_user_reaches_only_its_own_keys(live: Live) -> None:
    assert checks.check_redis_users_reach_only_their_own_keys(live, 6379 + EXAMPLES["db-server"][0]) == 12
    assert live.servers["db_server"]["admin_username"] == "dbadmin"
    checks.check_ports_on_loopback_only(live, {p + EXAMPLES["db-server"][0] for p in (5432, 5433, 6432, 9187, 6379, 8200)})


@pytest.mark.parametrize("live", ["movie-booking-local"], indirect=True)
def test_seed_003_locally_under_its_host_names_on_5433_to_5437(live: Live) -> None:
    offset = EXAMPLES["movie-booking-local"][0]
    for port, service in enumerate(("auth", "movie", "booking", "payment", "notification"), start=5433):
        assert live.servers[service]["host"] == f"postgres-{service}"
        assert live.servers[service]["local_port"] == port + offset
        assert live.urls[service]["postgresql+asyncpg"].split("@")[1].startswith(f"postgres-{service}:5432/")
    assert checks.check_redis_users_reach_only_their_own_keys(live, 6379 + offset) == 4
