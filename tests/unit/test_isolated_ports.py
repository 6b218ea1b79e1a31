"""The host ports the live tiers publish (tests/support/live.py isolated): clear of the ranges a
machine hands out by itself."""
import pytest

from tests.support.live import isolated

CONFIG = {"platform": "docker", "servers": [{"name": "main", "port": 5432}], "services": [{"name": "orders"}]}


def test_an_offset_into_the_ephemeral_range_is_refused_naming_the_port() -> None:
    refusal = r"port_offset 25000 of 'pgfleet-ut-high-' puts a port on 30432, not below 30000"
    with pytest.raises(ValueError, match=refusal):
        isolated(CONFIG, "pgfleet-ut-high-", 25000)


def test_a_port_another_test_stack_took_is_refused_and_the_same_stack_may_ask_again() -> None:
    first = isolated(CONFIG, "pgfleet-ut-a-", 1100)
    assert isolated(CONFIG, "pgfleet-ut-a-", 1100) == first
    assert first["servers"][0]["port"] == 6532 and first["vault"]["port"] == 9300
    with pytest.raises(ValueError, match=r"6532, taken by the test stack 'pgfleet-ut-a-'"):
        isolated(CONFIG, "pgfleet-ut-b-", 1100)
