"""pgfleet-recover's decisions that need no live stack: what is kept, what is refused, and
from when an unrecorded secret_id counts as the killed run's."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pgfleet.operations.recover import _last_completed, _plain, plan, repair_checkpoint_files


def pending(type_: str, urn_name: str, **inputs: object) -> dict[str, object]:
    return {"type": "creating",
            "resource": {"type": type_, "urn": f"urn:pulumi:s::pgfleet::{type_}::{urn_name}", "inputs": inputs}}


def test_objects_whose_create_adopts_are_kept_and_nothing_is_done() -> None:
    decided = plan({"resources": [], "pending_operations": [
        pending("postgresql:index/role:Role", "orders-owner", name="orders_owner"),
        pending("postgresql:index/database:Database", "orders-database", name="orders_db"),
        pending("random:index/randomPassword:RandomPassword", "orders-password"),
        pending("docker:index/volume:Volume", "shared-data", name="shared-data"),
        pending("vault:kv/secretV2:SecretV2", "orders-secret"),
    ]}, [])
    assert decided.actions == [] and decided.refused == []
    assert len(decided.kept) == 5 and all("taken over by the next up" in k for k in decided.kept)


def test_a_provider_killed_while_created_is_cleared_and_nothing_is_done() -> None:
    # a kill that lands between a provider's create and its first resource (seen in CI under load)
    decided = plan({"resources": [], "pending_operations": [
        pending("pulumi:providers:postgresql", "shared-provider", host="127.0.0.1"),
    ]}, [])
    assert decided.actions == [] and decided.refused == []
    assert decided.kept == ["pulumi:providers:postgresql shared-provider: a provider, nothing outside the state; "
                            "made again by the next up"]


def test_an_unknown_kind_or_a_vault_object_without_a_provider_is_refused() -> None:
    decided = plan({"resources": [], "pending_operations": [
        pending("kubernetes:apps/v1:StatefulSet", "shared"),
        pending("vault:index/mount:Mount", "kv", path="services"),
    ]}, [])
    assert decided.actions == []
    assert any("kubernetes:apps/v1:StatefulSet shared" in r and "does not know" in r for r in decided.refused)
    assert any("no Vault provider" in r for r in decided.refused)


def test_only_deletes_and_updates_pending_need_no_decision() -> None:
    decided = plan({"resources": [], "pending_operations": [
        {"type": "updating", "resource": {"type": "kubernetes:apps/v1:StatefulSet", "urn": "u::x", "inputs": {}}},
    ]}, [])
    assert (decided.actions, decided.kept, decided.refused) == ([], [], [])


def test_orphans_count_from_the_end_of_the_last_update_not_of_a_refresh() -> None:
    history = [
        {"kind": "refresh", "endTime": "2026-12-02T03:00:00.000Z"},
        {"kind": "update", "endTime": "2026-12-02T02:00:00.000Z"},
        {"kind": "update", "endTime": "2026-12-02T01:00:00.000Z"},
        {"kind": "update"},  # the killed one: no end
    ]
    assert _last_completed(history) == datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
    assert _last_completed([]) == datetime.fromtimestamp(0, UTC)


def test_secrets_of_an_export_with_show_secrets_are_unwrapped() -> None:
    wrapped = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "plaintext": '"s3cr3t"'}
    assert _plain(wrapped) == "s3cr3t"
    assert _plain("http://127.0.0.1:8200") == "http://127.0.0.1:8200"


def test_a_half_written_checkpoint_sidecar_is_removed_and_a_sound_one_kept(tmp_path: Path) -> None:
    """What a kill in a file backend's checkpoint write leaves (seen in a crash drill): the
    checkpoint whole, its `.attrs` sidecar empty, a temporary file; the backup's sidecar sound."""
    folder = tmp_path / ".pulumi" / "stacks" / "pgfleet"
    folder.mkdir(parents=True)
    (folder / "dev.json").write_text('{"version": 3}')
    (folder / "dev.json.attrs").write_text("")
    (folder / "dev.json.18ed54abcd07c765.tmp").write_text('{"vers')
    (folder / "dev.json.bak").write_text('{"version": 3}')
    (folder / "dev.json.bak.attrs").write_text('{"md5": "Q2GhDm8Dm3MezDv2WWoSlA=="}')
    (folder / "other.json.attrs").write_text("")  # another stack's: not this recovery's business

    removed = repair_checkpoint_files(f"file://{tmp_path}", "pgfleet", "dev")

    assert removed == ["dev.json.18ed54abcd07c765.tmp", "dev.json.attrs"]
    assert sorted(p.name for p in folder.iterdir()) == ["dev.json", "dev.json.bak", "dev.json.bak.attrs",
                                                        "other.json.attrs"]
