"""HAProxy series that fill up towards a limit: the process's connections (global ``maxconn``), a frontend's
sessions (its ``maxconn``) and a server's connections (its ``maxconn``; none set: not forecast)."""

from kubestack.plugins.base import Capacity

CAPACITIES = (
    Capacity(used="haproxy_current_connections", limit="haproxy_max_connections", title="HAProxy connections"),
    Capacity(used="haproxy_frontend_sessions", limit="haproxy_frontend_session_limit", match_labels=("frontend",),
             title="HAProxy frontend sessions"),
    Capacity(used="haproxy_server_sessions", limit="haproxy_server_session_limit",
             match_labels=("backend", "server"), title="HAProxy server connections"),
)
