"""Nginx through the whole pipeline: one upstream server refusing connections under steady traffic (a real nginx
before real HTTP backends; nginx retries the other, so clients still get answers) becomes an incident naming the
nginx resource, a root-cause report ranking it first with the unreachable upstream, and a proposal to mark that
server down."""

from __future__ import annotations

from tests.services.nginx import NginxServer
from tests.services.pipeline import RHYTHM, Pipeline
from tests.services.traffic import Traffic


async def test_an_unreachable_upstream_is_found_ranked_first_and_answered(pipeline: Pipeline,
                                                                          nginx_server: NginxServer) -> None:
    server = nginx_server
    target = {"type": "nginx", "name": "web", **RHYTHM,
              "config": {"port": server.port, "prefix": str(server.prefix), "config_path": str(server.config_path),
                         "access_log": str(server.access_log), "error_log": str(server.error_log)}}
    traffic = Traffic(server.url("/fault/cart"))
    s1 = server.backends["fault"]["s1"]

    def inject() -> None:
        s1.stop()
        traffic.start()

    def restore() -> None:
        traffic.stop()
        s1.reset()

    async with pipeline.agent([target]) as resources:
        run = await pipeline.fault(resources["web"], inject, restore, causes=("nginx.upstream_unreachable",),
                                   action="nginx.set_upstream_server")
    assert run.incident and run.ranked_first and run.proposals, pipeline.diagnosis()
    assert run.proposals[0].params == {"upstream": "fault", "server": s1.address, "state": "down"}
    assert set(traffic.statuses) == {200}, traffic.statuses
