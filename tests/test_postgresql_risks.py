"""PostgreSQL configuration risks: the rules on hand-made changes, then a real change on a real server
(ALTER SYSTEM SET autovacuum = off) snapshotted by the plugin, diffed as the agent does and assessed by the
worker's config-risk stage."""

from __future__ import annotations

import asyncio

import pytest

from kubestack.agents.configdiff import diff, digest
from kubestack.contract.base import ResourceRef
from kubestack.contract.events import ConfigChange, ConfigDiff, Severity
from kubestack.pipeline.configrisk import assess
from kubestack.plugins.base import ConfigRiskRules
from kubestack.plugins.postgresql import PostgreSQLConfig, PostgreSQLPlugin
from kubestack.plugins.postgresql.risks import CONNECTIONS_METRIC, config_risks
from tests.factories import SOURCE
from tests.services.postgresql import PostgresServer

PG = ResourceRef(kind="postgresql", name="orders-db", host="db-3")


def change(observed: dict[str, float] | None = None, **diffs: tuple[str | None, str | None]) -> ConfigChange:
    return ConfigChange(source=SOURCE, resource=PG, previous_digest="a" * 64, digest="b" * 64,
                        observed=observed or {},
                        changes=[ConfigDiff(key=k, old=o, new=n) for k, (o, n) in diffs.items()])


def rules(c: ConfigChange) -> dict[str, Severity]:
    return {f.rule_id: f.severity for f in config_risks(c)}


def test_the_plugin_offers_its_rules_to_the_config_risk_stage() -> None:
    assert isinstance(PostgreSQLPlugin, ConfigRiskRules)
    [anomaly] = assess(change(autovacuum=("on", "off")), SOURCE)
    assert (anomaly.detector, anomaly.signal, anomaly.resource) == ("config-risk", "postgresql.autovacuum_disabled",
                                                                    PG)
    assert anomaly.details["evidence"] == {"setting": "autovacuum", "old": "on", "new": "off"}


@pytest.mark.parametrize(("new", "connected", "severity"), [
    ("40", 45.0, Severity.CRITICAL),  # below the clients open now
    ("45", 45.0, Severity.CRITICAL),  # at them: the next login is refused
    ("50", 45.0, Severity.WARNING),  # 10% headroom
    ("50", None, Severity.WARNING),  # nothing observed: a cut is worth a look
])
def test_max_connections_cut_is_judged_against_current_connections(new: str, connected: float | None,
                                                                   severity: Severity) -> None:
    observed = {CONNECTIONS_METRIC: connected} if connected is not None else {}
    [finding] = config_risks(change(observed, max_connections=("100", new)))
    assert (finding.rule_id, finding.severity) == ("postgresql.max_connections_cut", severity)
    assert finding.evidence == {"setting": "max_connections", "old": "100", "new": new,
                                "client_connections": connected}
    assert f"from 100 to {new}" in finding.message


def test_max_connections_cut_with_ample_headroom_or_raised_is_no_risk() -> None:
    assert config_risks(change({CONNECTIONS_METRIC: 10.0}, max_connections=("200", "100"))) == []
    assert config_risks(change({CONNECTIONS_METRIC: 90.0}, max_connections=("100", "500"))) == []


def test_durability_settings_turned_off() -> None:
    findings = config_risks(change(fsync=("on", "off"), full_page_writes=("on", "off"),
                                   synchronous_commit=("remote_apply", "off")))
    assert [(f.evidence["setting"], f.rule_id, f.severity) for f in findings] == [
        ("fsync", "postgresql.durability_lowered", Severity.CRITICAL),
        ("full_page_writes", "postgresql.durability_lowered", Severity.CRITICAL),
        ("synchronous_commit", "postgresql.durability_lowered", Severity.WARNING),
    ]
    assert findings[2].evidence == {"setting": "synchronous_commit", "old": "remote_apply", "new": "off"}
    assert config_risks(change(fsync=("off", "on"), synchronous_commit=("on", "local"))) == []


def test_wal_level_lowered() -> None:
    [minimal] = config_risks(change(wal_level=("replica", "minimal")))
    assert (minimal.rule_id, minimal.severity) == ("postgresql.wal_level_lowered", Severity.CRITICAL)
    assert "point-in-time recovery" in minimal.message
    assert rules(change(wal_level=("logical", "replica"))) == {"postgresql.wal_level_lowered": Severity.WARNING}
    assert rules(change(wal_level=("replica", "logical"))) == {}


def test_archiving_and_autovacuum_turned_off() -> None:
    assert rules(change(archive_mode=("always", "off"))) == {"postgresql.archiving_disabled": Severity.WARNING}
    assert rules(change(archive_mode=("off", "on"))) == {}
    [vacuum, counts] = config_risks(change(autovacuum=("on", "off"), track_counts=("on", "off")))
    assert vacuum.rule_id == counts.rule_id == "postgresql.autovacuum_disabled"
    assert counts.evidence == {"setting": "track_counts", "old": "on", "new": "off"}


def test_memory_cut_to_under_half() -> None:
    [buffers] = config_risks(change(shared_buffers=("16384", "4096"), work_mem=("4096", "3072")))
    assert (buffers.rule_id, buffers.severity) == ("postgresql.memory_cut", Severity.WARNING)
    assert buffers.evidence == {"setting": "shared_buffers", "old": "16384", "new": "4096"}
    assert "8kB pages" in buffers.message
    assert rules(change(work_mem=("65536", "1024"))) == {"postgresql.memory_cut": Severity.WARNING}


def test_replication_limits_lowered() -> None:
    findings = config_risks(change(max_wal_senders=("10", "2"), max_replication_slots=("10", "0")))
    assert [(f.evidence["setting"], f.severity) for f in findings] == [("max_wal_senders", Severity.WARNING),
                                                                      ("max_replication_slots", Severity.CRITICAL)]
    assert {f.rule_id for f in findings} == {"postgresql.replication_limit_lowered"}
    assert rules(change(max_wal_senders=("4", "10"))) == {}


def test_added_removed_and_unparsable_values_are_not_judged() -> None:
    assert config_risks(change(autovacuum=(None, "off"), fsync=("on", None),
                               max_connections=("100", "lots"), shared_buffers=("abc", "1"))) == []


# --- live ---------------------------------------------------------------------------------------


async def test_live_autovacuum_turned_off_is_a_risk(postgresql_server: PostgresServer) -> None:
    server = postgresql_server
    plugin = PostgreSQLPlugin.create(PostgreSQLConfig.model_validate({
        "host": server.host, "port": server.port, "dbname": server.dbname, "user": server.user,
        "password": {"value": server.password}}))
    try:
        before = await plugin.snapshot_config()
        assert before["autovacuum"] == "on"
        with server.admin() as admin:
            admin.execute("ALTER SYSTEM SET autovacuum = off")
            admin.execute("SELECT pg_reload_conf()")
        try:
            after = await _snapshot_until(plugin, "autovacuum", "off")
        finally:
            with server.admin() as admin:
                admin.execute("ALTER SYSTEM RESET autovacuum")
                admin.execute("SELECT pg_reload_conf()")
        changes = diff(before, after)
        assert [c.key for c in changes] == ["autovacuum"]
        observed = {s.name: s.value for s in await plugin.collect() if not s.labels}
        event = ConfigChange(source=SOURCE, resource=PG, previous_digest=digest(before), digest=digest(after),
                             changes=changes, observed=observed)
        [anomaly] = assess(event, SOURCE)
        assert (anomaly.signal, anomaly.severity) == ("postgresql.autovacuum_disabled", Severity.WARNING)
        assert anomaly.details["evidence"] == {"setting": "autovacuum", "old": "on", "new": "off"}
        assert (await _snapshot_until(plugin, "autovacuum", "on"))["autovacuum"] == "on"
    finally:
        await plugin.close()


async def _snapshot_until(plugin: PostgreSQLPlugin, key: str, value: str, timeout_s: float = 10.0) -> dict[str, str]:
    """pg_reload_conf() only signals the server; sessions pick the new value up when they process the signal."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while (snapshot := await plugin.snapshot_config())[key] != value:
        assert loop.time() < deadline, f"{key} is still {snapshot[key]} after pg_reload_conf()"
        await asyncio.sleep(0.1)
    return snapshot
