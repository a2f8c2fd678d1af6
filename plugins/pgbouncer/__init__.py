"""PgBouncer: the admin console's pools, stats and lists, the SHOW CONFIG snapshot, health rules and admin actions."""

from kubestack.plugins.pgbouncer.config import PgBouncerConfig
from kubestack.plugins.pgbouncer.plugin import PgBouncerPlugin

__all__ = ["PgBouncerConfig", "PgBouncerPlugin"]
