"""The configuration snapshot: what changes a broker's behaviour, flattened to text keys so that the generic
config diff sees each change apart. Password hashes are never read into it.

Keys: ``cluster_name``, ``rabbitmq_version``, ``erlang_version``; the local node's limits (``mem_limit``,
``disk_free_limit``, ``fd_total``, ``enabled_plugins``); ``policy/<vhost>/<name>`` and
``operator_policy/<vhost>/<name>`` (their pattern, target, priority and definition as JSON);
``vhost_limits/<vhost>``; ``user/<name>`` (its tags); ``permission/<vhost>/<user>``."""

from __future__ import annotations

import json
from typing import Any

from kubestack.plugins.rabbitmq.parse import items, num


def _policy(row: dict[str, Any]) -> str:
    return json.dumps({"pattern": row.get("pattern"), "apply-to": row.get("apply-to"),
                       "priority": row.get("priority"), "definition": row.get("definition") or {}}, sort_keys=True)


def flatten(overview: dict[str, Any], node: dict[str, Any], sections: dict[str, Any]) -> dict[str, str]:
    """``sections``: the replies of ``policies``, ``operator-policies``, ``vhost-limits``, ``users`` and
    ``permissions`` that the user may read (the last two need the administrator tag)."""
    config = {key: str(overview[key]) for key in ("cluster_name", "rabbitmq_version", "erlang_version")
              if overview.get(key) is not None}
    for key in ("mem_limit", "disk_free_limit", "fd_total"):
        if key in node:
            config[key] = str(int(num(node[key])))
    if node.get("enabled_plugins") is not None:
        config["enabled_plugins"] = ",".join(sorted(map(str, node["enabled_plugins"])))
    for row in items(sections.get("policies")):
        config[f"policy/{row.get('vhost')}/{row.get('name')}"] = _policy(row)
    for row in items(sections.get("operator-policies")):
        config[f"operator_policy/{row.get('vhost')}/{row.get('name')}"] = _policy(row)
    for row in items(sections.get("vhost-limits")):
        config[f"vhost_limits/{row.get('vhost')}"] = json.dumps(row.get("value") or {}, sort_keys=True)
    for row in items(sections.get("users")):
        config[f"user/{row.get('name')}"] = ",".join(sorted(map(str, row.get("tags") or [])))
    for row in items(sections.get("permissions")):
        config[f"permission/{row.get('vhost')}/{row.get('user')}"] = (
            f"configure={row.get('configure')} write={row.get('write')} read={row.get('read')}")
    return config
