"""Samples from one round of a sentinel: per monitored primary (``{"master": name}``) whether it is up, its replicas
and sentinels (known and healthy), quorum and timing settings, and the config epoch (it grows with each failover);
process-wide the INFO sentinel fields."""

from __future__ import annotations

from datetime import datetime

from kubestack.contract.events import Sample
from kubestack.plugins.sentinel.checks import Observation

# INFO sentinel field, metric name
_INFO: tuple[tuple[str, str], ...] = (
    ("sentinel_masters", "sentinel_masters"), ("sentinel_tilt", "sentinel_tilt"),
    ("sentinel_running_scripts", "sentinel_running_scripts"),
    ("sentinel_scripts_queue_length", "sentinel_scripts_queue_length"),
)


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def samples(obs: Observation, ts: datetime) -> list[Sample]:
    out = [Sample(name=name, value=value, ts=ts) for key, name in _INFO
           if (value := _number(obs.info.get(key))) is not None]
    if obs.primaries:  # unlabelled: the config-risk rules see it (the most sentinels any primary has)
        out.append(Sample(name="sentinel_known_sentinels", ts=ts,
                          value=max(1 + len(obs.sentinels.get(p.name, [])) for p in obs.primaries)))
    for p in obs.primaries:
        labels = {"master": p.name}
        replicas, others = obs.replicas.get(p.name, []), obs.sentinels.get(p.name, [])
        values = (
            ("sentinel_primary_up", float(not {"s_down", "o_down"} & p.flags)),
            ("sentinel_primary_odown", float("o_down" in p.flags)),
            ("sentinel_failover_in_progress", float(p.failing_over)),
            ("sentinel_config_epoch", p.config_epoch),
            ("sentinel_replicas", len(replicas)),
            ("sentinel_replicas_healthy", sum(r.healthy for r in replicas)),
            ("sentinel_sentinels", 1 + len(others)),
            ("sentinel_sentinels_up", 1 + sum(s.up for s in others)),
            ("sentinel_quorum", p.quorum),
            ("sentinel_quorum_ok", float(obs.quorum.get(p.name) is None)),
            ("sentinel_down_after_seconds", p.down_after_ms / 1000),
            ("sentinel_failover_timeout_seconds", p.failover_timeout_ms / 1000),
            ("sentinel_primary_last_ok_ping_seconds", p.last_ok_ping_ms / 1000),
        )
        out += [Sample(name=name, value=value, ts=ts, labels=labels) for name, value in values]
        out += [Sample(name="sentinel_replica_offset", value=r.offset, ts=ts,
                       labels=labels | {"replica": r.address}) for r in replicas]
    return out
