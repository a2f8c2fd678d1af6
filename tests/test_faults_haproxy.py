"""HAProxy through the whole pipeline: one server of a backend answering 500 under steady traffic (a real HAProxy
before real HTTP backends) becomes an incident naming the HAProxy resource, a root-cause report ranking it first
with the backend's 5xx, and a proposal to put that server in maintenance while the other carries the traffic."""

from __future__ import annotations

from tests.services.haproxy import HAProxyServer
from tests.services.pipeline import RHYTHM, Pipeline
from tests.services.traffic import Traffic


async def test_a_failing_server_is_found_ranked_first_and_answered(pipeline: Pipeline,
                                                                   haproxy_server: HAProxyServer) -> None:
    server = haproxy_server
    target = {"type": "haproxy", "name": "edge-lb", **RHYTHM,
              "config": {"socket": str(server.socket), "config_path": str(server.config_path),
                         "log_path": str(server.log_path)}}
    traffic = Traffic(server.url("fault", "/checkout"))

    def inject() -> None:
        server.backends["fault"]["s1"].failing = True
        traffic.start()

    def restore() -> None:
        traffic.stop()
        server.restore("fault")

    async with pipeline.agent([target]) as resources:
        run = await pipeline.fault(resources["edge-lb"], inject, restore, causes=("haproxy.backend_5xx",),
                                   action="haproxy.set_server_state")
    assert run.incident and run.ranked_first and run.proposals, pipeline.diagnosis()
    assert run.proposals[0].params == {"backend": "be_fault", "server": "s1", "state": "maint"}
    assert traffic.statuses.get(500), traffic.statuses
