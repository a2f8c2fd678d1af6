"""Memcached: the text protocol's ``stats``, ``stats settings``, ``stats slabs``, ``stats items`` and ``stats conns``;
health rules, the settings snapshot, and a safe runtime action (``cache_memlimit``)."""

from kubestack.plugins.memcached.config import MemcachedConfig
from kubestack.plugins.memcached.plugin import MemcachedPlugin

__all__ = ["MemcachedConfig", "MemcachedPlugin"]
