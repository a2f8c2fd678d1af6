"""The etcd plugin's configuration: which member's client URL to ask, TLS files, and the thresholds of its rules."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from kubestack.plugins.base import PluginConfig


class EtcdConfig(PluginConfig):
    """One member, asked through its client URL (the v3 JSON gateway and ``/metrics`` on the same port). The other
    members are found through the member list and asked at their own client URLs."""

    host: str = "127.0.0.1"
    port: int = Field(default=2379, ge=1, le=65535)
    tls: bool = Field(default=False, description="Use https for the client URL")
    ca_file: Path | None = Field(default=None, description="CA bundle that signed the members' certificates")
    cert_file: Path | None = Field(default=None, description="Client certificate, when the members require one")
    key_file: Path | None = Field(default=None, description="Key of the client certificate")
    quota_high_ratio: float = Field(default=0.8, gt=0, le=1, description="db size / quota that is near the quota")
    quota_critical_ratio: float = Field(default=0.95, gt=0, le=1)
    fragmented_min_bytes: int = Field(default=100 * 1024 * 1024, ge=0,
                                      description="Free pages inside the db file that make a defragment worth it")
    fragmented_max_in_use: float = Field(default=0.5, gt=0, le=1,
                                         description="In-use / db size below which the db is fragmented")
    fsync_p99_max_s: float = Field(default=0.01, gt=0, description="WAL fsync p99 that is slow (etcd asks < 10 ms)")
    commit_p99_max_s: float = Field(default=0.025, gt=0, description="Backend commit p99 that is slow (< 25 ms)")
    disk_min_ops: int = Field(default=5, ge=1, description="fsyncs or commits in a round before latency is judged")
    leader_change_window_s: float = Field(default=600.0, gt=0,
                                          description="A leader change this recent is reported")
    log_path: str | None = Field(default=None, description="Log file (glob allowed); default: the journald unit")

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"
