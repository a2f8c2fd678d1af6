"""The configuration snapshot of a running HAProxy, from the runtime API (what ``set`` commands change, which no
file shows) and, when given, its ``haproxy.cfg``. Keys:

- ``global maxconn``, ``global nbthread``, ``global ulimit-n``, ``version``;
- ``frontend <name> maxconn``;
- ``server <backend>/<server> address | maxconn | weight | check`` (``check``: enabled, disabled or none);
- ``file: <section> | <directive>`` for the lines of the file.
"""

from __future__ import annotations

from kubestack.plugins.haproxy.parse import ServerState, StatRow, parse_config_file


def server_key(backend: str, server: str, what: str) -> str:
    return f"server {backend}/{server} {what}"


def runtime_snapshot(info: dict[str, str], rows: list[StatRow], states: list[ServerState]) -> dict[str, str]:
    config = {"version": info.get("Version", ""), "global maxconn": info.get("Maxconn", ""),
              "global nbthread": info.get("Nbthread", ""), "global ulimit-n": info.get("Ulimit-n", "")}
    for row in rows:
        if row.kind == "frontend":
            config[f"frontend {row.proxy} maxconn"] = row.fields.get("slim", "")
        elif row.kind == "server":
            config[server_key(row.proxy, row.name, "address")] = row.fields.get("addr", "")
            config[server_key(row.proxy, row.name, "maxconn")] = row.fields.get("slim", "")
    for state in states:
        config[server_key(state.backend, state.server, "weight")] = str(state.weight)
        check = state.check_enabled
        config[server_key(state.backend, state.server, "check")] = (
            "none" if check is None else "enabled" if check else "disabled")
    return {k: v for k, v in config.items() if v != "" or k.endswith("maxconn")}


def file_snapshot(text: str) -> dict[str, str]:
    return {f"file: {key}": value for key, value in parse_config_file(text).items()}
