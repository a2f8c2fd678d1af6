"""Samples from one round of ``show info`` and ``show stat``: the process, then each frontend, backend and server
labelled by name. Counters are sent as HAProxy's cumulative values (``_total``); times are HAProxy's averages
over its last 1024 requests, in seconds."""

from __future__ import annotations

from datetime import datetime

from kubestack.contract.events import Sample
from kubestack.plugins.haproxy.parse import StatRow, number

# (show info field, metric, scale)
_INFO: tuple[tuple[str, str, float], ...] = (
    ("Uptime_sec", "haproxy_uptime_seconds", 1),
    ("CurrConns", "haproxy_current_connections", 1),
    ("Maxconn", "haproxy_max_connections", 1),
    ("CumConns", "haproxy_connections_total", 1),
    ("CumReq", "haproxy_requests_total", 1),
    ("ConnRate", "haproxy_connection_rate", 1),
    ("SessRate", "haproxy_session_rate", 1),
    ("Idle_pct", "haproxy_idle_ratio", 0.01),
    ("Run_queue", "haproxy_run_queue", 1),
    ("Ulimit-n", "haproxy_max_fds", 1),
    ("DroppedLogs", "haproxy_dropped_logs_total", 1),
)
_FRONTEND: tuple[tuple[str, str, float], ...] = (
    ("scur", "haproxy_frontend_sessions", 1),
    ("slim", "haproxy_frontend_session_limit", 1),
    ("stot", "haproxy_frontend_sessions_total", 1),
    ("req_tot", "haproxy_frontend_requests_total", 1),
    ("ereq", "haproxy_frontend_request_errors_total", 1),
    ("dreq", "haproxy_frontend_denied_requests_total", 1),
    ("bin", "haproxy_frontend_bytes_in_total", 1),
    ("bout", "haproxy_frontend_bytes_out_total", 1),
)
_BACKEND: tuple[tuple[str, str, float], ...] = (
    ("act", "haproxy_backend_active_servers", 1),
    ("bck", "haproxy_backend_backup_servers", 1),
    ("qcur", "haproxy_backend_queue", 1),
    ("scur", "haproxy_backend_sessions", 1),
    ("stot", "haproxy_backend_sessions_total", 1),
    ("econ", "haproxy_backend_connection_errors_total", 1),
    ("eresp", "haproxy_backend_response_errors_total", 1),
    ("wretr", "haproxy_backend_retries_total", 1),
    ("wredis", "haproxy_backend_redispatches_total", 1),
    ("qtime", "haproxy_backend_queue_time_seconds", 1e-3),
    ("ctime", "haproxy_backend_connect_time_seconds", 1e-3),
    ("rtime", "haproxy_backend_response_time_seconds", 1e-3),
    ("ttime", "haproxy_backend_total_time_seconds", 1e-3),
)
_SERVER: tuple[tuple[str, str, float], ...] = (
    ("scur", "haproxy_server_sessions", 1),
    ("slim", "haproxy_server_session_limit", 1),
    ("qcur", "haproxy_server_queue", 1),
    ("stot", "haproxy_server_sessions_total", 1),
    ("weight", "haproxy_server_weight", 1),
    ("chkfail", "haproxy_server_check_failures_total", 1),
    ("chkdown", "haproxy_server_downs_total", 1),
    ("econ", "haproxy_server_connection_errors_total", 1),
    ("eresp", "haproxy_server_response_errors_total", 1),
    ("rtime", "haproxy_server_response_time_seconds", 1e-3),
)
_CODES = ("1xx", "2xx", "3xx", "4xx", "5xx", "other")
_RESPONSES = {"frontend": "haproxy_frontend_http_responses_total", "backend": "haproxy_backend_http_responses_total",
              "server": "haproxy_server_http_responses_total"}


def connections_used_ratio(info: dict[str, str]) -> float | None:
    current, limit = number(info.get("CurrConns")), number(info.get("Maxconn"))
    return current / limit if current is not None and limit else None


def info_samples(info: dict[str, str], ts: datetime) -> list[Sample]:
    samples = [Sample(name=name, value=value * scale, ts=ts)
               for key, name, scale in _INFO if (value := number(info.get(key))) is not None]
    ratio = connections_used_ratio(info)
    if ratio is not None:
        samples.append(Sample(name="haproxy_connections_used_ratio", value=ratio, ts=ts))
    return samples


def labels_of(row: StatRow) -> dict[str, str]:
    if row.kind == "frontend":
        return {"frontend": row.proxy}
    if row.kind == "backend":
        return {"backend": row.proxy}
    return {"backend": row.proxy, "server": row.name}


def stat_samples(rows: list[StatRow], ts: datetime) -> list[Sample]:
    samples = []
    for row in rows:
        table = {"frontend": _FRONTEND, "backend": _BACKEND, "server": _SERVER}.get(row.kind)
        if table is None:
            continue
        labels = labels_of(row)
        samples += [Sample(name=name, value=value * scale, ts=ts, labels=labels)
                    for key, name, scale in table if (value := row.num(key)) is not None]
        if row.kind == "backend":
            samples.append(Sample(name="haproxy_backend_up", value=float(row.up), ts=ts, labels=labels))
        if row.kind == "server":
            samples += [Sample(name="haproxy_server_up", value=float(row.up), ts=ts, labels=labels),
                        Sample(name="haproxy_server_maintenance", value=float(row.maint), ts=ts, labels=labels)]
        if row.fields.get("mode") == "http":
            samples += [Sample(name=_RESPONSES[row.kind], value=value, ts=ts, labels=labels | {"code": code})
                        for code in _CODES if (value := row.num(f"hrsp_{code}")) is not None]
    return samples
