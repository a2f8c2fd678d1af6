"""http: an application's own Prometheus ``/metrics`` endpoint (any service instrumented with a Prometheus client):
request rate, error ratio and latency quantiles from its request counter and latency histogram, its other series
passed through, and the dependencies it names in ``kubestack_peer_info`` as peers."""

from kubestack.plugins.http.config import HttpConfig
from kubestack.plugins.http.plugin import HttpPlugin

__all__ = ["HttpConfig", "HttpPlugin"]
