from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.cluster import Cluster, kubeconfig
from tests.support.prod import ExternalVault, external_vault


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    return Cluster(kubeconfig())


@pytest.fixture(scope="module")
def vault() -> Iterator[ExternalVault]:
    """A Vault server of the module's own, as an operator's existing Vault would be."""
    with external_vault() as server:
        yield server
