"""HAProxy: the runtime API's ``show info`` and ``show stat``, backends and servers, health rules and safe actions
(a server drained, put in maintenance or given another maxconn)."""

from kubestack.plugins.haproxy.config import HAProxyConfig
from kubestack.plugins.haproxy.plugin import HAProxyPlugin

__all__ = ["HAProxyConfig", "HAProxyPlugin"]
