"""MySQL and MariaDB: GLOBAL STATUS metrics, replication, InnoDB locks, the variables snapshot, health rules and
safe actions."""

from kubestack.plugins.mysql.config import MySQLConfig
from kubestack.plugins.mysql.plugin import MySQLPlugin

__all__ = ["MySQLConfig", "MySQLPlugin"]
