"""RedisCache alone: ACL users per service, default user off, no plaintext password."""
from __future__ import annotations

import hashlib

import pulumi
import pytest

from pgfleet.components import RedisCache, RedisCacheArgs
from pgfleet.components.redis_cache import acl_rule
from tests.support.platforms import make_platform
from tests.support.program import Run, run


@pytest.fixture(scope="module")
def cache() -> Run:
    def program() -> RedisCache:
        return RedisCache("cache", RedisCacheArgs(
            platform=make_platform("docker"), image="redis:7", services=[("crypto", 0), ("project2", 1)],
            host_port=6379,
        ))

    return run(program, lambda c: {f"url.{k}": v for k, v in c.urls.items()})


def test_each_service_is_confined_to_its_key_prefix(cache: Run) -> None:
    args = cache.mocks.named("cache", "docker:index/container:Container").inputs["command"]
    # each --user rule runs up to the next option; every token is its own argument
    rules, current = [], None
    for token in args:
        if token == "--user":
            current = []
            rules.append(current)
        elif token.startswith("--"):
            current = None
        elif current is not None:
            current.append(token)
    assert rules[0] == ["default", "off"]
    assert all(" " not in token for rule in rules for token in rule)
    crypto = " ".join(next(r for r in rules if r[0] == "crypto"))
    assert "~crypto:* &crypto:*" in crypto and "-@dangerous" in crypto and "-@admin" in crypto
    assert "~*" not in crypto


def test_passwords_reach_redis_only_as_sha256(cache: Run) -> None:
    container = cache.mocks.named("cache", "docker:index/container:Container")
    password = "mock-cache-crypto-password-xxxxxxxx"
    joined = " ".join(container.inputs["command"])
    assert password not in joined
    assert f"#{hashlib.sha256(password.encode()).hexdigest()}" in joined
    assert container.is_secret("command")


def test_urls_are_secret_and_keep_the_database_index(cache: Run) -> None:
    url = cache.values["url.project2"]
    assert url.secret
    assert url.value == "redis://project2:mock-cache-project2-password-xxxxxxxx@cache:6379/1"


def test_acl_rule_for_admin_sees_everything() -> None:
    outcome = run(lambda: acl_rule("admin", "ab", None), lambda rule: {"rule": pulumi.Output.all(*rule)})
    assert outcome.values["rule"].value == ["admin", "on", "#ab", "resetchannels", "~*", "&*", "+@all"]
