"""The bundled demo's second release (namespace `shop`): each injected fault is
found under its rule id, on the object that carries it."""

from __future__ import annotations

import pytest

from aiops.diagnose import diagnose
from aiops.sources import open_source


@pytest.fixture(scope="module")
def shop():
    diag = diagnose(open_source("demo"), namespace="shop")
    assert diag.failures == []
    return diag


def _hits(diag, rule: str) -> list:
    return [f for f in diag.findings if f.rule == rule]


@pytest.mark.parametrize(("rule", "owner", "text"), [
    ("missing-configmap", "Deployment/shop-payments", "shop-payments-config"),
    ("bad-command", "Deployment/shop-search-indexer", "search-indexer"),
    ("liveness-probe-failed", "Deployment/shop-cart", "cart"),
    ("init-container-failed", "Deployment/shop-checkout", "'migrate'"),
    ("pvc-pending", "PersistentVolumeClaim/shop-reports-data", "fast-ssd"),
    ("unschedulable-pvc", "Deployment/shop-reports", "shop-reports-data"),
    ("image-pull-auth", "Deployment/shop-fraud-check", "fraud-check"),
    ("hpa-metrics-unavailable", "HorizontalPodAutoscaler/shop-storefront", "cpu"),
    ("ingress-backend-missing", "Ingress/shop", "shop-search"),
    ("rbac-forbidden", "Deployment/shop-inventory", "system:serviceaccount:shop:inventory"),
    ("dns-failure", "Deployment/shop-storefront", "shop-search.shop.svc.cluster.local"),
    ("evicted", "Deployment/shop-storefront", "ephemeral-storage"),
    ("quota-exceeded", "Deployment/shop-ads", "shop-quota"),
])
def test_each_shop_fault_is_found_on_its_object(shop, rule: str, owner: str,
                                                text: str) -> None:
    hits = _hits(shop, rule)
    assert hits, f"{rule} did not fire"
    assert any(f.owner == owner and text in f.summary for f in hits), \
        [(f.owner, f.summary) for f in hits]
    assert all(f.namespace == "shop" for f in hits)


def test_shop_findings_stay_in_the_shop_namespace(shop) -> None:
    assert shop.findings
    assert {f.namespace for f in shop.findings} == {"shop"}


def test_the_todo_findings_do_not_change() -> None:
    todo = diagnose(open_source("demo"), namespace="todo")
    assert all(f.namespace == "todo" for f in todo.findings)
    assert not any(f.rule in ("missing-configmap", "bad-command", "quota-exceeded")
                   for f in todo.findings)
