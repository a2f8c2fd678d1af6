"""The statements the plugin runs. Every column is cast to text so that the direct connection and ``psql -A -t``
return the same strings to the same parsers; query texts are cut and flattened to one line so that ``psql``'s
tab- and newline-separated output stays parseable. Findings quote these statements as their ``query``."""

from __future__ import annotations

_SNIPPET = r"regexp_replace(left({col}, 200), '\s+', ' ', 'g')"

SERVER = """\
select current_setting('server_version_num'),
       current_setting('max_connections'),
       current_setting('superuser_reserved_connections'),
       current_setting('autovacuum_freeze_max_age'),
       pg_is_in_recovery()::text,
       extract(epoch from now() - pg_postmaster_start_time())::text,
       (case when pg_is_in_recovery() then pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')
             else pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') end)::text,
       (case when pg_is_in_recovery() then extract(epoch from now() - pg_last_xact_replay_timestamp()) end)::text"""

DATABASES = """\
select d.datname, s.numbackends::text, s.xact_commit::text, s.xact_rollback::text,
       s.blks_read::text, s.blks_hit::text, s.tup_returned::text, s.tup_fetched::text,
       s.tup_inserted::text, s.tup_updated::text, s.tup_deleted::text, s.conflicts::text,
       s.temp_files::text, s.temp_bytes::text, s.deadlocks::text,
       (case when has_database_privilege(d.oid, 'CONNECT') then pg_database_size(d.oid) end)::text,
       age(d.datfrozenxid)::text
from pg_database d left join pg_stat_database s on s.datid = d.oid
order by d.datname"""

ACTIVITY = f"""\
select pid::text, coalesce(datname, ''), coalesce(usename, ''), coalesce(application_name, ''),
       coalesce(state, ''), coalesce(backend_type, ''), coalesce(wait_event_type, ''), coalesce(wait_event, ''),
       extract(epoch from now() - xact_start)::text,
       extract(epoch from now() - state_change)::text,
       {_SNIPPET.format(col="query")},
       (pid = pg_backend_pid())::text
from pg_stat_activity
order by pid"""

_BLOCKING = f"""\
select a.pid::text, b.pid::text, coalesce(a.usename, ''), coalesce(a.datname, ''),
       extract(epoch from now() - coalesce({{wait_start}}, a.query_start))::text,
       {_SNIPPET.format(col="a.query")},
       coalesce(b.state, ''), {_SNIPPET.format(col="b.query")},
       extract(epoch from now() - b.xact_start)::text,
       coalesce(w.locktype, ''), coalesce(w.mode, '')
from (select * from pg_stat_activity where wait_event_type = 'Lock') a
cross join lateral unnest(pg_blocking_pids(a.pid)) as blocker(pid)
join pg_stat_activity b on b.pid = blocker.pid
left join lateral (select {{wait_start_agg}} as wait_start, min(l.locktype) as locktype, min(l.mode) as mode
                   from pg_locks l where l.pid = a.pid and not l.granted) w on true
order by a.pid, b.pid"""

_CURRENT_LSN = "(case when pg_is_in_recovery() then pg_last_wal_receive_lsn() else pg_current_wal_lsn() end)"

REPLICATION = f"""\
select coalesce(application_name, ''), coalesce(client_addr::text, ''), coalesce(state, ''),
       coalesce(sync_state, ''), pg_wal_lsn_diff({_CURRENT_LSN}, replay_lsn)::text,
       extract(epoch from replay_lag)::text
from pg_stat_replication
order by application_name, client_addr"""

# Client backends but this one; a Unix socket connection has no address and port -1.
CONNECTIONS = """\
select coalesce(host(client_addr), ''), coalesce(client_port::text, ''), coalesce(application_name, '')
from pg_stat_activity
where backend_type = 'client backend' and pid <> pg_backend_pid()
order by 1, 3
limit 5000"""

# On a standby: the primary it streams from (a host, an address, or a Unix socket directory, and its port).
WAL_RECEIVER = """\
select coalesce(sender_host, ''), coalesce(sender_port::text, ''), coalesce(status, '')
from pg_stat_wal_receiver"""

# The last column: max_slot_wal_keep_size in bytes (-1: no limit; empty before PostgreSQL 13).
SLOTS = f"""\
select slot_name, slot_type, active::text, pg_wal_lsn_diff({_CURRENT_LSN}, restart_lsn)::text,
       coalesce(wal_status, ''),
       coalesce(pg_size_bytes(current_setting('max_slot_wal_keep_size', true))::text, '')
from pg_replication_slots
order by slot_name"""

_BGWRITER = "select key, value from pg_stat_bgwriter b, jsonb_each_text(to_jsonb(b))"
_CHECKPOINTER = "select key, value from pg_stat_checkpointer c, jsonb_each_text(to_jsonb(c))"

SETTINGS = "select name, setting from pg_settings order by name"


def blocking_sql(version_num: int) -> str:
    """Blocked/blocking pairs; the wait starts at ``pg_locks.waitstart`` (PostgreSQL 14+), else at the
    blocked statement's start."""
    if version_num >= 140000:
        return _BLOCKING.format(wait_start="w.wait_start", wait_start_agg="min(l.waitstart)")
    return _BLOCKING.format(wait_start="w.wait_start", wait_start_agg="null::timestamptz")


def background_writer_sql(version_num: int) -> str:
    """Checkpoint and background writer counters as key/value rows (PostgreSQL 17 split them in two views)."""
    if version_num >= 170000:
        return f"{_BGWRITER} union all {_CHECKPOINTER}"
    return _BGWRITER
