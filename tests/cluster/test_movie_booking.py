"""Seed 003 on the cluster as its example ships: five dedicated servers under the seed's Service
names, each reachable only from its own service's pods (which live beside the servers, as the
seed's do), and the connection strings in the seed's driver form."""
from __future__ import annotations

import secrets
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.support import live as checks
from tests.support.cluster import Cluster
from tests.support.engine import throwaway_stack, up_with_policies
from tests.support.prod import ClusterLive, external_vault, for_cluster, object_store, probe, secret_config
from tests.support.program import stack_config

PREFIX = f"movie-{secrets.token_hex(2)}-"
SERVICES = {"auth": "auth_db", "movie": "movies_db", "booking": "bookings_db", "payment": "payments_db",
            "notification": "notifications_db"}


@pytest.fixture(scope="module")
def movie(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterLive]:
    try:
        with external_vault() as vault, object_store(cluster, f"{PREFIX}s3") as store:
            config = for_cluster(stack_config("examples/movie-booking.yaml"), PREFIX, vault, store)
            with throwaway_stack(tmp_path_factory.mktemp("movie"), "movie", config, secret_config(vault, store),
                                 protected=True) as stack:
                yield ClusterLive(stack, up_with_policies(stack), f"{PREFIX}db")
    finally:
        cluster.core.delete_namespace(f"{PREFIX}db")


def test_the_seeds_service_names_and_connection_strings(cluster: Cluster, movie: ClusterLive) -> None:
    services = {s.metadata.name for s in cluster.core.list_namespaced_service(movie.namespace).items}
    assert {f"postgres-{name}-service" for name in SERVICES} <= services
    for name, database in SERVICES.items():
        url = urlsplit(movie.urls[name]["postgresql+asyncpg"])
        assert url.scheme == "postgresql+asyncpg" and url.username == f"{name}_user"
        assert (url.hostname, url.port, url.path) == (
            f"postgres-{name}-service.{movie.namespace}.svc.cluster.local", 5432, f"/{database}")


def test_each_service_reaches_only_its_own_server_both_ways(cluster: Cluster, movie: ClusterLive) -> None:
    targets = {name: f"postgres-{name}-service.{movie.namespace}.svc.cluster.local:5432" for name in SERVICES}
    who = {name: {"app": f"{name}-service"} for name in SERVICES} | {"unlabelled": {}}
    results = probe(cluster, movie.namespace, who, list(targets.values()))
    admitted = [(w, t) for w in results for t, target in targets.items() if results[w][target]]
    assert sorted(admitted) == sorted((name, name) for name in SERVICES)  # 5 admitted
    refused = [(w, t) for w in SERVICES for t, target in targets.items() if not results[w][target]]
    assert len(refused) == 20  # 5 x 4, each of them a port that its own service reaches
    assert not any(results["unlabelled"].values())


def test_no_service_opens_another_services_database(movie: ClusterLive) -> None:
    checks.check_apps_use_what_their_migrators_create(movie)
    assert checks.check_no_service_reaches_another(movie) == 20
    checks.check_public_has_no_connect(movie)


def test_a_second_preview_shows_no_change(movie: ClusterLive) -> None:
    checks.check_second_preview_is_empty(movie)


def test_secret_ids_reach_the_services_namespace(cluster: Cluster, movie: ClusterLive) -> None:
    names = {s.metadata.name for s in cluster.core.list_namespaced_secret(movie.namespace).items}
    assert {f"{name}-vault-secret-id" for name in SERVICES} <= names
