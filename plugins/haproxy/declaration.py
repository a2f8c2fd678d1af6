"""What the HAProxy plugin declares: its rules, the words that name it in a question, and its actions, each with its
risk, typed parameters and the signals it answers (``plugins/remedy.py``)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from kubestack.contract.events import Risk
from kubestack.plugins.base import ActionParams, ActionSpec, WholeNumber
from kubestack.plugins.haproxy.risks import SERVER_KEY
from kubestack.plugins.remedy import Clue, Offer, Remedy

RULES = (
    # health
    "haproxy.backend_down", "haproxy.servers_down", "haproxy.queue_building", "haproxy.backend_5xx",
    "haproxy.sessions_near_limit",
    # config risks
    "haproxy.maxconn_lowered", "haproxy.server_maxconn_lowered", "haproxy.health_check_disabled",
    "haproxy.server_removed",
)
SYMPTOMS = frozenset({"haproxy.queue_building"})
KEYWORDS = ("load balancer", "lb", "负载均衡", "反向代理")

ProxyName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]
"""A backend or server name as haproxy.cfg allows it (letters, digits, '-', '_', '.', ':')."""
MAX_SERVER_MAXCONN = 1_000_000


class ServerRef(ActionParams):
    backend: ProxyName = Field(description="The backend's name (letters, digits, '-', '_', '.', ':')")
    server: ProxyName = Field(description="The server's name within the backend")


class SetServerState(ServerRef):
    state: Literal["ready", "drain", "maint"] = Field(
        description="ready: takes traffic; drain: no new sessions but health checks go on; maint: out entirely")


class SetServerMaxconn(ServerRef):
    maxconn: WholeNumber = Field(ge=0, le=MAX_SERVER_MAXCONN,
                                 description="Concurrent connections HAProxy opens to the server (0 = no limit)")


def take_out_failing(clue: Clue) -> Iterable[Offer]:
    """The server answering the 5xx, out of rotation, when others remain to take its share."""
    e = clue.evidence
    server, others = e.get("server"), [s for s in e.get("servers_up", []) if s != e.get("server")]
    if server and others:
        yield ({"backend": e["backend"], "server": server, "state": "maint"},
               f"stop sending {e['backend']} traffic to {server}, which answered {e.get('server_responses_5xx')} of "
               f"the {e.get('responses_5xx')} 5xx responses; {', '.join(others)} take its share")


def raise_server_maxconn(clue: Clue) -> Iterable[Offer]:
    """Half as many connections again to the server that is full, where the queue builds."""
    e = clue.evidence
    if e.get("server") and e.get("maxconn"):
        current = int(e["maxconn"])
        raised = max(current + 1, math.ceil(current * 1.5))
        yield ({"backend": e["backend"], "server": e["server"], "maxconn": raised},
               f"let {e['backend']}/{e['server']} take {raised} connections instead of {current}, so the "
               f"{e.get('queue')} queued request(s) reach it, if the server has the capacity")


def restore_server_maxconn(clue: Clue) -> Iterable[Offer]:
    key, old = str(clue.change.get("key", "")), clue.change.get("old")
    match = SERVER_KEY.match(key)
    if match and match["what"] == "maxconn" and old is not None:
        yield ({"backend": match["backend"], "server": match["server"], "maxconn": int(old or 0)},
               f"restore {match['backend']}/{match['server']}'s maxconn to {old or 'no limit'} (it was changed to "
               f"{clue.change.get('new')})")


ACTIONS = (
    ActionSpec(id="haproxy.set_server_state", title="Drain a server, put it in maintenance or back (set server state)",
               risk=Risk.MEDIUM, params=SetServerState,
               preconditions=["the backend and server exist", "drain or maint: another server of the backend is up "
                              "and in rotation to take its traffic", "the runtime API socket has level admin"],
               rollback="set server <backend>/<server> state <previous state>",
               answers=(Remedy(take_out_failing, findings=("haproxy.backend_5xx",)),)),
    ActionSpec(id="haproxy.set_server_maxconn", title="Set a server's connection limit (set maxconn server)",
               risk=Risk.LOW, params=SetServerMaxconn,
               preconditions=["the backend and server exist", "the new limit is not above the process's maxconn",
                              "the runtime API socket has level admin"],
               rollback="set maxconn server <backend>/<server> <previous value>",
               answers=(Remedy(restore_server_maxconn, changes=("*",)),
                        Remedy(raise_server_maxconn, findings=("haproxy.queue_building",)))),
    ActionSpec(id="haproxy.shutdown_sessions", title="Kill every session of a server (shutdown sessions server)",
               risk=Risk.FORBIDDEN,
               preconditions=["never automated: cuts requests in flight; drain the server instead"],
               rollback="none: the clients' requests are lost"),
)
