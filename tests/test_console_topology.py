"""The console's topology of an incident in headless Chromium against the running API: the incident's resources and
the resources the learned graph links them to (an application calling the cache, a replica of it, a database of the
same service), with the ranked causes marked; the page's address selects the incident, as notifications link it.
A screenshot goes to the test artifacts (``KUBESTACK_ARTIFACTS``, default the pytest temp folder)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from kubestack.contract.base import ResourceRef
from kubestack.contract.events import HealthReport, Peer, PeerRole
from kubestack.contract.topics import HEALTH, INCIDENTS, RCA_REPORTS
from tests.services.kubestack_api import SOURCE, ApiServer, incident, rca
from tests.test_console import browser, open_console  # noqa: F401 (the module's Chromium fixture)
from tests.test_silences_console import artifacts

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio(loop_scope="session")]

COORDINATOR_COPY = Path("/work/helpers/B-console-topology.png")
"""Where the coordinator's note picks the screenshot up, when that folder exists (not in CI)."""


def health(resource: ResourceRef, *peers: Peer) -> HealthReport:
    return HealthReport(source=SOURCE, resource=resource, peers=list(peers))


async def test_an_incident_shows_its_resources_links_and_ranked_causes(api_server: ApiServer,  # noqa: F811
                                                                       browser: Browser, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:6]
    cache = ResourceRef(kind="redis", name=f"cache-{tag}", host=f"db-{tag}", labels={"address": f"db-{tag}:6379"})
    shop = ResourceRef(kind="http", name=f"shop-{tag}", host=f"app-{tag}", labels={"service": f"shop-{tag}"})
    replica = ResourceRef(kind="redis", name=f"replica-{tag}", host=f"db2-{tag}")
    orders = ResourceRef(kind="mysql", name=f"orders-{tag}", host=f"db3-{tag}", labels={"service": f"shop-{tag}"})
    await api_server.publish(HEALTH, health(cache), health(orders),
                             health(shop, Peer(role=PeerRole.SERVER, address=f"db-{tag}:6379")),
                             health(replica, Peer(role=PeerRole.PRIMARY, address=f"db-{tag}:6379")))
    inc = incident(title=f"Checkout slow {tag}", res=cache).model_copy(update={"resources": [cache, shop]})
    report = rca(inc)
    second = report.hypotheses[1].model_copy(update={"component": shop.key, "cause": "upstream latency"})
    report = report.model_copy(update={"hypotheses": [report.hypotheses[0], second]})
    other = incident(title=f"Another incident {tag}")
    await api_server.publish(INCIDENTS, inc, other)
    await api_server.publish(RCA_REPORTS, report)
    await api_server.wait_for(f"/api/v1/incidents/{inc.incident_id}", lambda r: r.status_code == 200 and r.json()["rca"])
    await api_server.wait_for("/api/v1/topology/neighbours?resource=" + shop.key,
                              lambda r: len(r.json()["neighbours"]) == 2)

    page = await open_console(browser, api_server, "vera")
    card = page.locator(f"article.incident[data-incident-id='{inc.incident_id}']")
    await card.locator("a.topo-link").click()  # the incident's page: #/incidents/<id>
    graph = page.locator(f"#topology svg.topology-graph[data-incident-id='{inc.incident_id}']")
    await expect(graph).to_be_visible()
    nodes = graph.locator("g.topo-node")
    await expect(nodes).to_have_count(4)
    assert set(await nodes.evaluate_all("(ns) => ns.map((n) => n.dataset.resource)")) == {
        cache.key, shop.key, replica.key, orders.key}
    await expect(graph.locator("g.topo-node.incident")).to_have_count(2)
    causes = graph.locator("g.topo-node.cause")
    await expect(causes).to_have_count(2)
    await expect(graph.locator(f"g.topo-node[data-resource='{cache.key}'] .topo-rank")).to_have_text("#1")
    await expect(graph.locator(f"g.topo-node[data-resource='{shop.key}'] .topo-rank")).to_have_text("#2")
    await expect(graph.locator(f"g.topo-node[data-resource='{replica.key}'] .topo-rank")).to_have_count(0)
    edges = await graph.locator("g.topo-edge").evaluate_all(
        "(es) => es.map((e) => [e.dataset.from, e.dataset.to, e.dataset.relation])")
    assert sorted(map(tuple, edges)) == sorted([
        (shop.key, cache.key, "server"),  # the shop calls the cache: an arrow towards it
        (replica.key, cache.key, "primary"),
        (shop.key, orders.key, "service"),  # configured: the same service label, no direction
    ]), edges
    await expect(page.locator("#topology")).not_to_contain_text("null")
    await expect(page.locator("#topology .topo-causes li")).to_have_count(2)
    await expect(page.locator("#topology .topo-causes li").first).to_contain_text(
        f"#1 maxmemory lowered below used memory — redis/cache-{tag}")
    shot = artifacts(tmp_path) / "incident-topology.png"
    await page.locator("#topology").screenshot(path=str(shot))
    if COORDINATOR_COPY.parent.is_dir():
        shutil.copy(shot, COORDINATOR_COPY)

    await page.goto(f"{api_server.url}/#/incidents/{other.incident_id}")  # another incident's page
    await expect(page.locator(f"#topology svg[data-incident-id='{other.incident_id}']")).to_be_visible()
    await page.close()
