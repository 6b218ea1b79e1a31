"""Each seed system, from its example stack config: the properties that seed asks for."""
from __future__ import annotations

import json
import shlex

from pgfleet.stacks import outputs
from tests.support.program import TEST_SECRETS, Run, exports, run_stack, stack_config

CONTAINER = "docker:index/container:Container"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"

#: What a libpq URL asks for to verify the server against the stack's CA (tls defaults).
VERIFY = "?sslmode=verify-full&sslrootcert=/etc/pgfleet/ca.crt"


def example(name: str) -> Run:
    config = stack_config(f"examples/{name}.yaml")
    return run_stack(config, TEST_SECRETS, collect=lambda _: exports(), stack=name)


def container_settings(outcome: Run, name: str) -> dict[str, str]:
    args = outcome.mocks.named(name, CONTAINER).inputs["command"]
    return dict(a.split("=", 1) for a in args if "=" in a)


def job_env(outcome: Run, name: str) -> dict[str, str]:
    """The environment a Docker cron job sources (cron itself starts jobs with none)."""
    job = outcome.mocks.named(name, CONTAINER)
    assert job.is_secret("uploads"), "the job env holds passwords"
    content = next(u["content"] for u in job.inputs["uploads"] if u["file"] == "/etc/pgfleet/job.env")
    return dict(shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in content.splitlines())


def database_owners(outcome: Run) -> dict[str, str]:
    return {d.inputs["name"]: d.provider.split("::")[-1].split("-provider")[0]
            for d in outcome.mocks.of_type("postgresql:index/database:Database")}


def test_seed_000_game_platform_dedicated_instances_and_short_lived_approles() -> None:
    outcome = example("game-platform")
    services = ["auth", "user", "chat", "game", "notification"]
    ports = {c.inputs["name"]: c.inputs["ports"][0]["external"]
             for c in outcome.mocks.of_type(CONTAINER) if c.inputs["name"] in services}
    assert ports == {"auth": 5433, "user": 5434, "chat": 5435, "game": 5436, "notification": 5437}
    # one database per instance, each on its own server's provider
    assert database_owners(outcome) == {f"{s}_db": s for s in services}
    for service in services:
        role = outcome.mocks.named(f"{service}-role").inputs
        assert (role["tokenTtl"], role["tokenMaxTtl"], role["secretIdTtl"], role["secretIdNumUses"]) == (300, 900, 3600, 3)
        health = outcome.mocks.named(service, CONTAINER).inputs["healthcheck"]["tests"]
        assert "pg_isready" in health
    # role_id and secret_id leave through two different outputs
    assert not outcome.values[outputs.SERVICES].secret and outcome.values[outputs.VAULT_SECRET_IDS].secret
    assert outcome.mocks.named("auth-app").inputs["statementTimeout"] == 10_000
    assert outcome.mocks.named("user-schema").inputs["name"] == "profiles"


def test_seed_001_shared_postgres_one_server_four_limited_users() -> None:
    outcome = example("shared-postgres")
    servers = [c.inputs["name"] for c in outcome.mocks.of_type(CONTAINER)
               if {lb["label"]: lb["value"] for lb in c.inputs["labels"]}["app.kubernetes.io/name"] == "postgres"]
    assert servers == ["shared-postgres"]
    assert database_owners(outcome) == {f"{s}_db": "shared_postgres" for s in ("auth", "l2p", "payment", "videovault")}
    app_roles = {r.inputs["name"]: r.inputs for r in outcome.mocks.of_type("postgresql:index/role:Role")
                 if r.name.endswith("-app")}
    assert set(app_roles) == {"auth_user", "l2p_user", "payment_user", "videovault_user"}
    assert all(r["connectionLimit"] == 20 for r in app_roles.values())
    settings = container_settings(outcome, "shared-postgres")
    assert settings["shared_preload_libraries"] == "pg_stat_statements"
    assert settings["pg_stat_statements.track"] == "all"
    assert settings["archive_mode"] == "on"
    urls = outcome.values[outputs.CONNECTION_URLS].value
    assert urls["payment"]["url"].startswith("postgresql://payment_user:")
    assert urls["payment"]["url"].endswith(f"@shared-postgres:5432/payment_db{VERIFY}")
    assert urls["l2p"]["pooled_url"].endswith(f"@shared-postgres-pooler:6432/l2p_db{VERIFY}")
    dump = outcome.mocks.named("shared-postgres-dump", CONTAINER)
    crontab = next(u["content"] for u in dump.inputs["uploads"] if u["file"] == "/etc/cron.d/pgfleet")
    assert crontab.startswith("0 0 * * * root")


def test_seed_002_quest_read_replica_and_backup_policy() -> None:
    outcome = example("quest-services")
    services = outcome.values[outputs.SERVICES].value
    for name in ("quest", "notification", "social"):
        assert services[name]["database"] == f"{name}_db"
        assert services[name]["write_host"] == "postgres" and services[name]["read_host"] == "postgres-read"
    assert outcome.mocks.named("postgres-read", CONTAINER).inputs["ports"][0] == {"internal": 5432, "external": 5433, "ip": "127.0.0.1"}
    settings = container_settings(outcome, "postgres")
    assert int(settings["archive_timeout"]) <= 300, "RPO < 5 minutes"
    env = job_env(outcome, "postgres-dump")
    assert env["PGBACKREST_REPO1_RETENTION_FULL"] == "30" and env["PGBACKREST_REPO1_CIPHER_TYPE"] == "aes-256-cbc"
    assert outcome.mocks.named("quest-app").inputs["connectionLimit"] == 25


def test_seed_003_movie_booking_five_statefulsets_each_reachable_only_by_its_service() -> None:
    outcome = example("movie-booking")
    primaries = {s.inputs["metadata"]["name"]: s for s in outcome.mocks.of_type(STATEFULSET)
                 if s.inputs["metadata"]["labels"]["app.kubernetes.io/name"] == "postgres"}
    # the seed's Service names, and its connection strings in its driver's form
    assert set(primaries) == {f"postgres-{s}-service" for s in ("auth", "movie", "booking", "payment", "notification")}
    assert all(s.protect for s in primaries.values())
    assert all(s.inputs["metadata"]["namespace"] == "movie-booking" for s in primaries.values())
    expected_users = {"auth": ("auth_db", "auth_user"), "movie": ("movies_db", "movie_user"),
                      "booking": ("bookings_db", "booking_user"), "payment": ("payments_db", "payment_user"),
                      "notification": ("notifications_db", "notification_user")}
    for service, (database, user) in expected_users.items():
        assert outcome.mocks.named(f"{service}-database").inputs["name"] == database
        assert outcome.mocks.named(f"{service}-app").inputs["name"] == user
        peers = outcome.mocks.named(f"{service}-netpol").inputs["spec"]["ingress"][0]["from"]
        app_peers = [p["podSelector"]["matchLabels"] for p in peers if "app" in p["podSelector"]["matchLabels"]]
        assert app_peers == [{"app": f"{service}-service"}]
    assert outcome.mocks.named("booking-read-statefulset").inputs["spec"]["replicas"] == 1
    urls = outcome.values[outputs.CONNECTION_URLS].value
    for service, (database, user) in expected_users.items():
        url = urls[service]["postgresql+asyncpg"]
        assert url.startswith(f"postgresql+asyncpg://{user}:")
        assert url.endswith(f"@postgres-{service}-service.movie-booking.svc.cluster.local:5432/{database}?ssl=verify-full")
    metrics = ({s.inputs["metadata"]["name"] for s in outcome.mocks.of_type(STATEFULSET)}
               & {f"postgres-{s}-service-metrics" for s in expected_users})
    assert len(metrics) == 5, "each database exports Prometheus metrics"
    assert len(outcome.mocks.of_type("kubernetes:batch/v1:CronJob")) == 10
    redis_urls = outcome.values[outputs.CONNECTION_URLS].value
    assert redis_urls["movie"]["redis_url"].endswith("/1") and "redis_url" not in redis_urls["booking"]


def test_seed_003_locally_ports_5433_to_5437_on_loopback() -> None:
    outcome = example("movie-booking-local")
    names = {c.inputs["name"] for c in outcome.mocks.of_type(CONTAINER)}
    assert {f"postgres-{s}" for s in ("auth", "movie", "booking", "payment", "notification")} <= names
    url = outcome.values[outputs.CONNECTION_URLS].value["auth"]["postgresql+asyncpg"]
    assert url.startswith("postgresql+asyncpg://auth_user:") and url.endswith("@postgres-auth:5432/auth_db?ssl=verify-full")
    published = sorted((p["external"], p["ip"]) for c in outcome.mocks.of_type(CONTAINER) for p in c.inputs.get("ports") or [])
    assert published == [(5433, "127.0.0.1"), (5434, "127.0.0.1"), (5435, "127.0.0.1"), (5436, "127.0.0.1"),
                         (5437, "127.0.0.1"), (6379, "127.0.0.1"), (8200, "127.0.0.1")]


def test_seed_004_db_server_admin_user_and_per_project_users() -> None:
    outcome = example("db-server")
    primary = outcome.mocks.named("db-server", CONTAINER)
    assert "POSTGRES_USER=dbadmin" in primary.inputs["envs"]
    assert outcome.mocks.named("db_server-provider").inputs["username"] == "dbadmin"
    assert outcome.mocks.named("crypto_ai-database").inputs["name"] == "crypto_ai_agent"
    assert outcome.mocks.named("crypto_ai-app").inputs["name"] == "crypto"
    assert outcome.mocks.named("pgfleet-network").inputs["name"] == "nginx-network"
    ports = sorted(p["external"] for c in outcome.mocks.of_type(CONTAINER) for p in c.inputs.get("ports") or [])
    assert ports == [5432, 5433, 6379, 6432, 8200, 9187]
    redis_args = " ".join(outcome.mocks.named("pgfleet-redis", CONTAINER).inputs["command"])
    for project in ("crypto_ai", "project2", "project3"):
        assert f"~{project}:*" in redis_args
    urls = outcome.values[outputs.CONNECTION_URLS].value
    assert urls["project2"]["redis_url"].endswith("@pgfleet-redis:6379/1")
    vault_data = json.loads(outcome.mocks.named("crypto_ai-secret").inputs["dataJson"])
    assert vault_data["DB_USER"] == "crypto" and vault_data["REDIS_URL"].startswith("redis://crypto_ai:")
    env = job_env(outcome, "db-server-dump")
    assert env["PGBACKREST_REPO1_RETENTION_FULL"] == "14"
