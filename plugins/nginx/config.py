"""The Nginx plugin's configuration: where stub_status answers, the nginx binary and its configuration, the logs
and the thresholds of its rules."""

from __future__ import annotations

from pydantic import Field

from kubestack.plugins.base import PluginConfig

LOG_FORMAT_DIRECTIVE = (
    "log_format kubestack '$time_iso8601 $remote_addr \"$request\" $status $body_bytes_sent $request_time "
    "\"$upstream_addr\" \"$upstream_status\" \"$upstream_response_time\" \"$upstream_connect_time\" "
    "\"$http_user_agent\"';")
"""The access log format the upstream rules read (the ``combined`` format is read too, without upstream fields)."""


class NginxConfig(PluginConfig):
    """Needs a ``stub_status`` location (``location = /nginx_status { stub_status; allow 127.0.0.1; deny all; }``),
    the access log in the ``kubestack`` format (``LOG_FORMAT_DIRECTIVE``) for the upstream rules, read access to
    the logs, and for ``nginx -T`` and the actions the rights of nginx's master (root, usually)."""

    host: str = "127.0.0.1"
    port: int = Field(default=80, ge=1, le=65535, description="Port of the server block with stub_status")
    status_path: str = Field(default="/nginx_status", pattern=r"^/\S*$", description="The stub_status location")
    nginx: str = Field(default="nginx", description="The nginx binary (nginx -T, -t, -s reload)")
    prefix: str | None = Field(default=None, description="nginx -p: the prefix the running nginx was started with")
    config_path: str | None = Field(default=None, description="nginx -c: the main configuration file; default "
                                                              "the binary's built-in one (/etc/nginx/nginx.conf)")
    access_log: str = Field(default="/var/log/nginx/access.log", description="Access log in the kubestack format")
    error_log: str = Field(default="/var/log/nginx/error.log", description="Error log (level warn or lower)")
    curl: str = Field(default="curl", description="curl binary, used to read stub_status through a runner")
    log_max_bytes: int = Field(default=4 * 1024 * 1024, ge=4096,
                               description="Most of a log read in one round (the newest part when it grew more)")
    errors_5xx_ratio: float = Field(default=0.05, gt=0, le=1, description="Share of 5xx responses that is high")
    errors_4xx_ratio: float = Field(default=0.3, gt=0, le=1, description="Share of 4xx responses that is high")
    errors_min_requests: int = Field(default=10, ge=1, description="Requests a window needs before ratios count")
    upstream_slow_s: float = Field(default=1.0, gt=0, description="Mean upstream response time that is slow")
    upstream_slow_min_requests: int = Field(default=3, ge=1, description="Responses of an upstream server needed "
                                                                         "before its time is judged")
    connections_high_ratio: float = Field(default=0.8, gt=0, le=1,
                                          description="Active connections / worker_connections x workers that is high")

    @property
    def status_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.status_path}"

    def nginx_argv(self, *args: str) -> list[str]:
        argv = [self.nginx]
        if self.prefix:
            argv += ["-p", self.prefix]
        if self.config_path:
            argv += ["-c", self.config_path]
        return argv + list(args)
