"""What the Nginx plugin declares: its rules, the words that name it in a question, and its actions, each with its
risk, typed parameters and the signals it answers (``plugins/remedy.py``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from kubestack.contract.events import Risk
from kubestack.plugins.base import ActionParams, ActionSpec, NoParams
from kubestack.plugins.nginx.risks import UPSTREAM_SERVER
from kubestack.plugins.remedy import Clue, Offer, Remedy

RULES = (
    # health
    "nginx.http_5xx_high", "nginx.http_4xx_high", "nginx.upstream_unreachable", "nginx.upstream_slow",
    "nginx.connections_near_limit",
    # config risks
    "nginx.worker_connections_lowered", "nginx.upstream_server_removed", "nginx.proxy_timeout_lowered",
    "nginx.body_size_lowered",
)
SYMPTOMS = frozenset({"nginx.http_5xx_high", "nginx.http_4xx_high"})
KEYWORDS = ("web server", "reverse proxy", "反向代理", "网关")


SERVER_ADDRESS = r"^(unix:/[^\s;{}]+|[A-Za-z0-9_.-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?)$"
"""An upstream server's address: host or IP with an optional port, [IPv6]:port, or unix:/path."""


class SetUpstreamServer(ActionParams):
    upstream: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,128}$")] = Field(
        description="The upstream block's name (upstream <name> { ... })")
    server: Annotated[str, StringConstraints(pattern=SERVER_ADDRESS)] = Field(
        description="The server's address as the upstream block writes it (10.0.0.5:8080, app.local, unix:/path)")
    state: Literal["down", "up"] = Field(description="down: marked down, out of rotation; up: back in rotation")


def _take_out(clue: Clue) -> Iterable[Offer]:
    e = clue.evidence
    if e.get("upstream") not in (None, "-") and e.get("server") and e.get("servers_up"):
        yield ({"upstream": e["upstream"], "server": e["server"], "state": "down"},
               f"mark {e['server']} down in upstream {e['upstream']} and reload: {', '.join(e['servers_up'])} "
               "take its requests, which stop paying for its failures")


def _bring_back(clue: Clue) -> Iterable[Offer]:
    key, new = str(clue.change.get("key", "")), clue.change.get("new")
    match = UPSTREAM_SERVER.search(key)
    if match and new is not None and "down" in str(new).split():
        yield ({"upstream": match["upstream"], "server": match["server"], "state": "up"},
               f"put {match['server']} back in upstream {match['upstream']} (it was marked down)")


ACTIONS = (
    ActionSpec(id="nginx.set_upstream_server", title="Mark an upstream server down or back up (edit, nginx -t, reload)",
               risk=Risk.MEDIUM, params=SetUpstreamServer,
               preconditions=["the upstream block and its server are in the configuration nginx -T shows",
                              "down: another server of the upstream is in rotation (not down, not backup)",
                              "the edited configuration passes nginx -t (else the file is restored)",
                              "the configuration file is writable"],
               rollback="the same action with the other state (the file edit is undone, nginx reloaded)",
               answers=(Remedy(_take_out, findings=("nginx.upstream_unreachable", "nginx.http_5xx_high")),
                        Remedy(_bring_back, changes=("*",)))),
    ActionSpec(id="nginx.reload", title="Reload the configuration (nginx -t, then nginx -s reload)", risk=Risk.LOW,
               params=NoParams, preconditions=["the configuration passes nginx -t"],
               rollback="restore the previous configuration files and reload again"),
    ActionSpec(id="nginx.stop", title="Stop nginx (nginx -s stop)", risk=Risk.FORBIDDEN,
               preconditions=["never automated: every site it serves goes away"],
               rollback="start nginx again"),
)
