"""A replica's distance from losing its binary log stream, pure: the primary's binary logs and expiry as the server
prints them, the age of the oldest binary log the replica still needs, the rule for a stream already lost, and the
remedy that keeps binary logs longer on the primary."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest

from kubestack.contract.events import MetricBatch, Severity
from kubestack.pipeline.capacity import fillings
from kubestack.pipeline.prediction import outcome
from kubestack.plugins.mysql.actions import expiry_setting
from kubestack.plugins.mysql.binlogs import (
    BinaryLog,
    BinlogClock,
    expire_seconds,
    is_purged,
    last_written,
    needed_age,
    own_samples,
    parse_binary_logs,
    stream_samples,
    unread_bytes,
)
from kubestack.plugins.mysql.capacity import CAPACITIES
from kubestack.plugins.mysql.checks import Observation, binlog_stream_lost
from kubestack.plugins.mysql.config import MySQLConfig
from kubestack.plugins.mysql.declaration import ACTIONS, BINLOG_AGE, keep_binlogs_longer
from kubestack.plugins.mysql.parse import parse_replica_status
from kubestack.plugins.mysql.sources import local_dir
from kubestack.plugins.remedy import Clue
from tests.factories import SOURCE

TS = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
NOW = TS.timestamp()
LOGS = parse_binary_logs([{"Log_name": "mariadb-bin.000003", "File_size": "1048576"},
                          {"Log_name": "mariadb-bin.000004", "File_size": "524288"},
                          {"Log_name": "mariadb-bin.000005", "File_size": "4096"}])


def replica(file: str, position: str = "1000", errno: str = "0", error: str = "", io: str = "No"):
    """One SHOW SLAVE STATUS row of MariaDB 10.11, the columns the plugin reads."""
    [status] = parse_replica_status([{
        "Connection_name": "", "Master_Host": "10.0.0.1", "Master_Port": "3306", "Slave_IO_Running": io,
        "Slave_SQL_Running": "Yes", "Seconds_Behind_Master": None if io == "No" else "0", "Master_Log_File": file,
        "Read_Master_Log_Pos": position, "Last_IO_Errno": errno, "Last_IO_Error": error, "Last_SQL_Error": ""}])
    return status


def test_binary_logs_and_the_expiry_as_mariadb_and_mysql_print_them() -> None:
    assert LOGS == [BinaryLog("mariadb-bin.000003", 1048576), BinaryLog("mariadb-bin.000004", 524288),
                    BinaryLog("mariadb-bin.000005", 4096)]
    assert parse_binary_logs([{"Log_name": "binlog.000001", "File_size": "157", "Encrypted": "No"}]) == [
        BinaryLog("binlog.000001", 157)]
    assert expire_seconds({"binlog_expire_logs_seconds": "3600", "expire_logs_days": "0.041667"}) == 3600
    assert expire_seconds({"binlog_expire_logs_seconds": "0", "expire_logs_days": "7"}) == 7 * 86_400  # MySQL 5.7
    assert expire_seconds({"binlog_expire_logs_seconds": "0", "expire_logs_days": "0.000000"}) == 0  # never
    assert expiry_setting({"binlog_expire_logs_seconds": "0"}, 7200) == ("binlog_expire_logs_seconds", 7200)
    assert expiry_setting({"expire_logs_days": "1"}, 7200) == ("expire_logs_days", 1)   # MariaDB 10.5: whole days
    assert expiry_setting({"expire_logs_days": "1"}, 0) == ("expire_logs_days", 0)


def test_replica_status_carries_the_read_position_and_the_io_error() -> None:
    status = replica("mariadb-bin.000004", "2048", "1236", "Could not find first log file name in binary log index")
    assert (status.master_log_file, status.read_master_log_pos, status.last_io_errno) == \
        ("mariadb-bin.000004", 2048, 1236)
    [mysql8] = parse_replica_status([{"Channel_Name": "", "Source_Host": "db-1", "Source_Port": "3306",
                                      "Replica_IO_Running": "Yes", "Replica_SQL_Running": "Yes",
                                      "Source_Log_File": "binlog.000007", "Read_Source_Log_Pos": "157",
                                      "Last_IO_Errno": "0"}])
    assert (mysql8.master_log_file, mysql8.read_master_log_pos, mysql8.source) == ("binlog.000007", 157, "db-1:3306")


def test_the_age_of_the_needed_binlog_is_zero_while_reading_the_open_one_and_grows_once_it_is_closed() -> None:
    written = {"mariadb-bin.000003": NOW - 7200, "mariadb-bin.000004": NOW - 600}
    assert needed_age(replica("mariadb-bin.000005"), LOGS, written, NOW) == 0.0
    assert needed_age(replica("mariadb-bin.000004"), LOGS, written, NOW) == 600
    assert needed_age(replica("mariadb-bin.000003"), LOGS, {}, NOW) is None, "never seen rotating: unknown"
    assert needed_age(replica("mariadb-bin.000002"), LOGS, written, NOW) is None, "purged: the rule says so"
    assert needed_age(replica(""), LOGS, written, NOW) is None
    assert unread_bytes(replica("mariadb-bin.000004", "24288"), LOGS) == 500_000 + 4096
    assert unread_bytes(replica("mariadb-bin.000002"), LOGS) is None


def test_a_binlog_was_last_written_at_its_mtime_else_when_the_next_one_appeared() -> None:
    clock = BinlogClock()
    assert clock.rotated("db-1:3306", LOGS, NOW) == {}, "the first look cannot tell when files appeared"
    rotated = LOGS + [BinaryLog("mariadb-bin.000006", 0)]
    assert clock.rotated("db-1:3306", rotated, NOW + 60) == {"mariadb-bin.000005": NOW + 60}
    purged = rotated[2:]
    assert clock.rotated("db-1:3306", purged, NOW + 90) == {"mariadb-bin.000005": NOW + 60}
    assert clock.rotated("db-2:3306", LOGS, NOW) == {}, "each source has its own first look"
    mtimes = {"mariadb-bin.000003": NOW - 5000, "mariadb-bin.000005": NOW - 1}
    assert last_written(LOGS, mtimes, {"mariadb-bin.000004": NOW - 300}) == {
        "mariadb-bin.000003": NOW - 5000, "mariadb-bin.000004": NOW - 300}, "the open file is never 'written'"


def test_a_needed_binlog_older_than_every_kept_one_is_purged() -> None:
    assert is_purged("mariadb-bin.000002", LOGS)
    assert not is_purged("mariadb-bin.000004", LOGS)
    assert not is_purged("mariadb-bin.000009", LOGS), "ahead of the primary (reset): not this rule's case"
    assert not is_purged("other-bin.000001", LOGS), "another series of files: cannot tell"
    assert not is_purged("mariadb-bin.000002", []) and not is_purged("", LOGS)


def observation(status, binlogs) -> Observation:
    return Observation(status={}, variables={}, replicas=[status], long_queries=[], lock_waits=[],
                       replica_query="SHOW SLAVE STATUS", long_queries_query="", lock_waits_query="",
                       source_binlogs=binlogs)


def test_the_stream_is_lost_when_the_primary_no_longer_has_the_needed_binlog_or_the_io_thread_says_1236() -> None:
    config = MySQLConfig()
    [seen] = binlog_stream_lost(observation(replica("mariadb-bin.000002"), {"10.0.0.1:3306": LOGS}), config)
    assert (seen.rule_id, seen.severity) == ("mysql.replica_binlog_purged", Severity.CRITICAL)
    assert seen.evidence["needed_file"] == "mariadb-bin.000002"
    assert seen.evidence["oldest_on_source"] == "mariadb-bin.000003"
    assert "oldest binary log kept there is mariadb-bin.000003" in seen.message
    error = "Got fatal error 1236 from master when reading data from binary log: 'Could not find first log file'"
    [told] = binlog_stream_lost(observation(replica("mariadb-bin.000002", errno="1236", error=error), {}), config)
    assert told.evidence["last_io_errno"] == 1236 and "error 1236" in told.message
    assert binlog_stream_lost(observation(replica("mariadb-bin.000004"), {"10.0.0.1:3306": LOGS}), config) == []
    assert binlog_stream_lost(observation(replica("mariadb-bin.000002"), {}), config) == [], \
        "the primary unread and no error: nothing known"


def test_samples_pair_the_needed_age_with_the_primarys_expiry_and_say_what_will_be_lost() -> None:
    status = replica("mariadb-bin.000004")
    samples = stream_samples(status, LOGS, {"mariadb-bin.000004": NOW - 600}, 3600, TS)
    assert {s.name: s.value for s in samples} == {"mysql_source_binlog_expire_seconds": 3600,
                                                 "mysql_replica_needed_binlog_age_seconds": 600,
                                                 "mysql_replica_unread_binlog_bytes": 524288 - 1000 + 4096}
    batch = MetricBatch(source=SOURCE, resource={"kind": "mysql", "name": "db-2"}, ts=TS, samples=samples)
    [filling] = [f for f in fillings(batch, CAPACITIES) if f.capacity.used == "mysql_replica_needed_binlog_age_seconds"]
    assert filling.limit == 3600 and filling.sample.value == 600
    assert outcome(filling.capacity, filling.sample.labels) == \
        "this replica will lose its binary log stream from 10.0.0.1:3306 (binlog_expire_logs_seconds)"
    never = stream_samples(status, LOGS, {"mariadb-bin.000004": NOW - 600}, 0, TS)
    batch = MetricBatch(source=SOURCE, resource={"kind": "mysql", "name": "db-2"}, ts=TS, samples=never)
    assert [f for f in fillings(batch, CAPACITIES) if f.capacity.used.startswith("mysql_replica")] == [], \
        "binary logs never expire: nothing to forecast"


def test_own_binlogs_are_sized_against_their_disk_when_it_is_seen() -> None:
    samples = {s.name: s.value for s in own_samples(LOGS, {"mariadb-bin.000003": NOW - 100}, 86_400, 10e9, TS)}
    assert samples["mysql_binlog_size_bytes"] == 1048576 + 524288 + 4096
    assert samples["mysql_binlog_disk_capacity_bytes"] == samples["mysql_binlog_size_bytes"] + 10e9
    assert samples["mysql_binlog_oldest_age_seconds"] == 100 and samples["mysql_binlog_files"] == 3
    assert "mysql_binlog_disk_free_bytes" not in {s.name for s in own_samples(LOGS, {}, 0, None, TS)}


def test_files_are_read_here_only_for_a_server_on_this_host(tmp_path) -> None:
    basename = str(tmp_path / "mariadb-bin")
    assert local_dir(basename, "127.0.0.1", None) == tmp_path
    assert local_dir(basename, None, None) == tmp_path, "a socket is this host"
    assert local_dir(basename, "10.0.0.1", None) is None
    assert local_dir("/nowhere/here/mariadb-bin", "127.0.0.1", None) is None
    assert local_dir(None, "10.0.0.1", "/mnt/binlogs") == tmp_path.__class__("/mnt/binlogs")


def test_the_forecast_is_answered_by_keeping_binlogs_twice_as_long_on_the_primary() -> None:
    clue = Clue(rule=BINLOG_AGE, evidence={"channel": "", "source": "10.0.0.1:3306", "capacity": 3600.0})
    [(params, why)] = list(keep_binlogs_longer(clue))
    assert params == {"seconds": 7200, "channel": ""} and "10.0.0.1:3306" in why
    assert list(keep_binlogs_longer(Clue(rule=BINLOG_AGE, evidence={"capacity": 0}))) == []
    [spec] = [a for a in ACTIONS if a.id == "mysql.set_source_binlog_expiry"]
    assert spec.accepts(params) and not spec.accepts({"seconds": -1}) and not spec.accepts({"seconds": True})
    assert math.isclose(spec.params.model_validate({"seconds": 60}).seconds, 60)


@pytest.mark.parametrize("value, ok", [(1024, True), (2**30, True), (1023, False), (2**30 + 1, False)])
def test_max_allowed_packet_is_bounded_as_the_server_bounds_it(value: int, ok: bool) -> None:
    [spec] = [a for a in ACTIONS if a.id == "mysql.set_max_allowed_packet"]
    assert spec.accepts({"value": value}) is ok
