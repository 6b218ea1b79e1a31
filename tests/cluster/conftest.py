from __future__ import annotations

import pytest

from tests.support.cluster import Cluster, kubeconfig


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    return Cluster(kubeconfig())
