"""Samples from one round of parsed ``stats``: fields by a table (counters as raw cumulative ``_total``), the memory
and connection ratios, and per slab class pages, chunks and evictions."""

from __future__ import annotations

from datetime import datetime

from kubestack.contract.events import Sample
from kubestack.plugins.memcached.parse import number

# (stats key, metric name)
_FIELDS: tuple[tuple[str, str], ...] = (
    ("uptime", "memcached_uptime_seconds"),
    ("curr_connections", "memcached_curr_connections"),
    ("max_connections", "memcached_max_connections"),
    ("total_connections", "memcached_connections_total"),
    ("rejected_connections", "memcached_rejected_connections_total"),
    ("listen_disabled_num", "memcached_listen_disabled_total"),
    ("connection_structures", "memcached_connection_structures"),
    ("cmd_get", "memcached_cmd_get_total"),
    ("cmd_set", "memcached_cmd_set_total"),
    ("cmd_flush", "memcached_cmd_flush_total"),
    ("cmd_touch", "memcached_cmd_touch_total"),
    ("get_hits", "memcached_get_hits_total"),
    ("get_misses", "memcached_get_misses_total"),
    ("get_expired", "memcached_get_expired_total"),
    ("delete_hits", "memcached_delete_hits_total"),
    ("delete_misses", "memcached_delete_misses_total"),
    ("store_too_large", "memcached_store_too_large_total"),
    ("store_no_memory", "memcached_store_no_memory_total"),
    ("bytes_read", "memcached_read_bytes_total"),
    ("bytes_written", "memcached_written_bytes_total"),
    ("limit_maxbytes", "memcached_limit_bytes"),
    ("bytes", "memcached_bytes"),
    ("curr_items", "memcached_curr_items"),
    ("total_items", "memcached_items_total"),
    ("evictions", "memcached_evictions_total"),
    ("evicted_unfetched", "memcached_evicted_unfetched_total"),
    ("expired_unfetched", "memcached_expired_unfetched_total"),
    ("reclaimed", "memcached_reclaimed_total"),
    ("slabs_moved", "memcached_slabs_moved_total"),
    ("conn_yields", "memcached_conn_yields_total"),
    ("threads", "memcached_threads"),
    ("rusage_user", "memcached_cpu_user_seconds_total"),
    ("rusage_system", "memcached_cpu_system_seconds_total"),
)


def memory_used_ratio(stats: dict[str, str]) -> float | None:
    used, limit = number(stats, "bytes"), number(stats, "limit_maxbytes")
    return used / limit if used is not None and limit else None


def stats_samples(stats: dict[str, str], ts: datetime) -> list[Sample]:
    samples = [Sample(name=name, value=value, ts=ts) for key, name in _FIELDS
               if (value := number(stats, key)) is not None]
    ratio = memory_used_ratio(stats)
    if ratio is not None:
        samples.append(Sample(name="memcached_memory_used_ratio", value=ratio, ts=ts))
    connections, limit = number(stats, "curr_connections"), number(stats, "max_connections")
    if connections is not None and limit:
        samples.append(Sample(name="memcached_connections_used_ratio", value=connections / limit, ts=ts))
    samples.append(Sample(name="memcached_accepting_connections", value=float(stats.get("accepting_conns") == "1"),
                          ts=ts))
    return samples


def slab_samples(slabs: dict[str, dict[str, str]], items: dict[str, dict[str, str]], ts: datetime) -> list[Sample]:
    samples = []
    for slab in sorted(set(slabs) | set(items), key=int):
        labels = {"slab": slab}
        for source, key, name in ((slabs, "chunk_size", "memcached_slab_chunk_size_bytes"),
                                  (slabs, "total_pages", "memcached_slab_pages"),
                                  (slabs, "used_chunks", "memcached_slab_used_chunks"),
                                  (items, "number", "memcached_slab_items"),
                                  (items, "evicted", "memcached_slab_evictions_total"),
                                  (items, "outofmemory", "memcached_slab_outofmemory_total")):
            value = number(source.get(slab, {}), key)
            if value is not None:
                samples.append(Sample(name=name, value=value, ts=ts, labels=labels))
    return samples
