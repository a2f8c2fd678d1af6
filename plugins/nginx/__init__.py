"""Nginx: stub_status connections, the access and error logs (upstream status, address and times), the
configuration as ``nginx -T`` shows it, health rules on upstreams and responses, and safe actions (an upstream
server marked down or back, a tested reload)."""

from kubestack.plugins.nginx.config import NginxConfig
from kubestack.plugins.nginx.plugin import NginxPlugin

__all__ = ["NginxConfig", "NginxPlugin"]
