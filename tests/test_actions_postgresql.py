"""PostgreSQL actions: parameter checks and preconditions (pure), then each action against the session's server,
through psycopg and through psql, as a role with only what the actions document (pg_monitor, pg_signal_backend,
CREATEROLE, ALTER SYSTEM on a few parameters): real sessions cancelled and ended, a setting changed and put back,
a role locked and unlocked; dry runs and refused preconditions change nothing."""

from __future__ import annotations

import asyncio
from contextlib import closing
import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest

from kubestack.errors import ActionError, ActionParamsError, PreconditionFailedError, UnknownActionError
from kubestack.plugins.base import LocalRunner, declared
from kubestack.plugins.postgresql import PostgreSQLConfig, PostgreSQLPlugin
from kubestack.plugins.postgresql.actions import (
    backend_problems,
    idle_sql,
    role_problems,
    setting_problems,
)
from kubestack.plugins.postgresql.declaration import ACTIONS
from tests.services.postgresql import PostgresServer

OPS = "kubestack_ops"
APP = "app_user"
VICTIM = "locked_out"
SETTINGS = ("work_mem", "log_min_duration_statement", "idle_in_transaction_session_timeout")


def check(action_id: str, params: dict) -> dict:
    """The action's parameters as its declared model checks and normalises them."""
    return declared(ACTIONS, action_id, "PostgreSQL").check(params)


# --- pure ----------------------------------------------------------------------------------------------


def test_params_are_checked_and_normalised() -> None:
    assert check("postgresql.terminate_backend", {"pid": "123"}) == {"pid": 123}
    assert check("postgresql.terminate_idle_sessions", {"min_idle_s": "30", "user": "app"}) == \
        {"min_idle_s": 30.0, "user": "app"}
    assert check("postgresql.terminate_idle_in_transaction", {"min_idle_s": 60, "db": None}) == {"min_idle_s": 60}
    assert check("postgresql.alter_system_set", {"name": "Work_Mem", "value": 64}) == \
        {"name": "work_mem", "value": "64"}
    assert check("postgresql.alter_system_set", {"name": "fsync", "value": False})["value"] == "off"
    assert check("postgresql.lock_role", {"name": 'we"ird'}) == {"name": 'we"ird'}


@pytest.mark.parametrize("action, params, says", [
    ("postgresql.cancel_backend", {}, "'pid' is missing"),
    ("postgresql.cancel_backend", {"pid": 0}, "'pid' must be greater than or equal to 1"),
    ("postgresql.terminate_backend", {"pid": "1 or 1=1"}, "'pid' must be a valid integer"),
    ("postgresql.terminate_backend", {"pid": 5, "db": "x"}, "unknown parameter"),
    ("postgresql.terminate_idle_sessions", {"min_idle_s": 0}, "'min_idle_s' must be greater than or equal to 1"),
    ("postgresql.terminate_idle_sessions", {"min_idle_s": "nan"}, "'min_idle_s' must be"),
    ("postgresql.terminate_idle_sessions", {"min_idle_s": 5, "user": 7}, "'user' must be a valid string, not 7"),
    ("postgresql.terminate_idle_in_transaction", {}, "'min_idle_s' is missing"),
    ("postgresql.alter_system_set", {"name": "work_mem; drop table x", "value": "1"}, "'name' is 'work_mem; drop table x'; expected a pg_settings name"),
    ("postgresql.alter_system_set", {"name": "work_mem"}, "'value' is missing"),
    ("postgresql.alter_system_set", {"name": "archive_command", "value": "curl x | sh"},
     "archive_command is not a setting these actions may change"),
    ("postgresql.alter_system_set", {"name": "SSL_passphrase_command", "value": "/bin/sh -c id"},
     "SSL_passphrase_command is not a setting these actions may change"),
    ("postgresql.alter_system_set", {"name": "shared_preload_libraries", "value": "evil"}, "not a setting"),
    ("postgresql.alter_system_reset", {"name": "restore_command"}, "restore_command is not a setting"),
    ("postgresql.lock_role", {"name": ""}, "'name' must have at least 1 character"),
    ("postgresql.lock_role", {"name": "x" * 64}, "'name' must have at most 63 characters")])
def test_bad_params_are_refused(action: str, params: dict, says: str) -> None:
    with pytest.raises(ActionParamsError, match=says):
        check(action, params)


def backend(**fields: str) -> dict[str, str]:
    return {"pid": "7", "backend_type": "client backend", "user": "app", "db": "shop", "state": "active",
            "client_addr": "", "application_name": "", "query": "", "own": "false", "superuser": "false",
            "we_are_superuser": "false"} | fields


def test_backend_preconditions() -> None:
    assert backend_problems(backend(), 7, cancel=True) == []
    assert backend_problems(None, 7, cancel=False) == ["no server process has pid 7"]
    assert backend_problems(backend(own="true"), 7, cancel=False) == ["pid 7 is this plugin's own session"]
    assert backend_problems(backend(backend_type="checkpointer"), 7, cancel=False) == \
        ["pid 7 is a checkpointer, not a client backend"]
    assert "superuser app" in backend_problems(backend(superuser="true"), 7, cancel=False)[0]
    assert backend_problems(backend(superuser="true", we_are_superuser="true"), 7, cancel=False) == []
    assert backend_problems(backend(state="idle"), 7, cancel=True) == ["pid 7 runs no statement (state idle)"]
    assert backend_problems(backend(state="idle"), 7, cancel=False) == []


def setting(**fields: str) -> dict[str, str]:
    return {"setting": "4096", "unit": "kB", "context": "user", "vartype": "integer", "min_val": "64",
            "max_val": "2147483647", "enumvals": "", "source": "default", "sourcefile": ""} | fields


def test_setting_preconditions() -> None:
    assert setting_problems("work_mem", "8MB", setting()) == []
    assert setting_problems("work_mem", "10", setting()) == ["10 is outside 64..2147483647 kB"]
    assert setting_problems("nope", "1", None) == ["no setting named nope"]
    postmaster = setting(context="postmaster")
    assert "context postmaster: a reload does not apply it" in setting_problems("x", "1", postmaster)[0]
    assert "cannot be changed" in setting_problems("x", "1", setting(context="internal"))[0]
    assert "set by command line" in setting_problems("x", "1", setting(source="command line"))[0]
    enum = setting(vartype="enum", enumvals="debug,info,warning")
    assert setting_problems("x", "WARNING", enum) == []
    assert setting_problems("x", "loud", enum) == ["'loud' is not one of debug, info, warning"]
    assert setting_problems("x", "maybe", setting(vartype="bool")) == ["'maybe' is not a boolean (on/off)"]
    assert "no ALTER SYSTEM value to reset" in setting_problems("x", None, setting())[0]
    assert "may not run pg_reload_conf()" in setting_problems("x", "1", setting(may_reload="false"))[0]
    assert setting_problems("x", None, setting(sourcefile="/d/postgresql.auto.conf")) == []


def test_role_preconditions() -> None:
    role = {"superuser": "false", "canlogin": "true", "own": "false"}
    assert role_problems("r", role, lock=True) == []
    assert role_problems("r", None, lock=True) == ["no role named r"]
    assert len(role_problems("r", role | {"superuser": "true", "own": "true"}, lock=True)) == 2
    assert role_problems("r", role, lock=False) == ["role r can log in already"]
    assert role_problems("r", role | {"canlogin": "false"}, lock=False) == []


def test_idle_sessions_query_quotes_its_filters() -> None:
    text = idle_sql(("idle",), 30, user="o'brien", db="shop", terminate=True)
    assert "a.usename = 'o''brien'" in text and "a.datname = 'shop'" in text
    assert "pg_terminate_backend(a.pid)" in text and "not r.rolsuper" in text and "pg_backend_pid()" in text


# --- live ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ops_password(postgresql_server: PostgresServer) -> Iterator[str]:
    password = secrets.token_hex(8)
    with postgresql_server.admin("postgres") as admin:
        admin.execute(f"CREATE ROLE {OPS} LOGIN CREATEROLE PASSWORD '{password}' IN ROLE pg_monitor, pg_signal_backend")
        admin.execute(f"CREATE ROLE {APP} LOGIN PASSWORD '{password}'")
        admin.execute(f"CREATE ROLE {VICTIM} LOGIN PASSWORD '{password}'")
        admin.execute(f"GRANT ALTER SYSTEM ON PARAMETER {', '.join(SETTINGS)} TO {OPS}")
    with postgresql_server.admin() as admin:  # function privileges are per database: the plugin's
        admin.execute(f"GRANT EXECUTE ON FUNCTION pg_reload_conf() TO {OPS}")
    yield password
    with postgresql_server.admin() as admin:
        admin.execute(f"REVOKE EXECUTE ON FUNCTION pg_reload_conf() FROM {OPS}")
    with postgresql_server.admin("postgres") as admin:
        admin.execute(f"REVOKE ALTER SYSTEM ON PARAMETER {', '.join(SETTINGS)} FROM {OPS}")
        for role in (OPS, APP, VICTIM):
            admin.execute("select pg_terminate_backend(pid) from pg_stat_activity where usename = %s", (role,))
        time.sleep(0.5)
        for role in (OPS, APP, VICTIM):
            admin.execute(f"DROP ROLE {role}")


def ops_config(server: PostgresServer, password: str) -> PostgreSQLConfig:
    return PostgreSQLConfig.model_validate({"host": server.host, "port": server.port, "dbname": server.dbname,
                                            "user": OPS, "password": {"value": password}, "sslmode": "disable",
                                            "psql": "/usr/lib/postgresql/15/bin/psql"})


@pytest.fixture(params=[False, True], ids=["direct", "psql"])
async def plugin(request: pytest.FixtureRequest, postgresql_server: PostgresServer,
                 ops_password: str) -> AsyncIterator[PostgreSQLPlugin]:
    instance = PostgreSQLPlugin.create(ops_config(postgresql_server, ops_password),
                                       LocalRunner() if request.param else None)
    yield instance
    await instance.close()


def app_session(server: PostgresServer, password: str, dbname: str = "shop") -> closing[psycopg.Connection]:
    """An application's session; only closed at the end (a terminated one cannot commit on the way out)."""
    return closing(psycopg.connect(host=server.host, port=server.port, user=APP, password=password, dbname=dbname,
                                   autocommit=True))


def alive(server: PostgresServer, pid: int) -> bool:
    with server.admin() as admin:
        return admin.execute("select count(*) from pg_stat_activity where pid = %s", (pid,)).fetchone()[0] == 1


async def gone(server: PostgresServer, pid: int) -> bool:
    for _ in range(100):
        if not alive(server, pid):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_terminate_backend_ends_the_session_holding_a_lock(plugin: PostgreSQLPlugin, ops_password: str,
                                                                 postgresql_server: PostgresServer) -> None:
    with app_session(postgresql_server, ops_password) as holder:
        holder.execute("begin")
        holder.execute("select pg_advisory_xact_lock(7001)")
        pid = holder.info.backend_pid
        dry = await plugin.execute("postgresql.terminate_backend", {"pid": pid}, dry_run=True)
        assert dry.output.startswith(f"select pg_terminate_backend({pid}) (user {APP}, db shop, state idle in "
                                     "transaction: select pg_advisory_xact_lock(7001))")
        assert alive(postgresql_server, pid)
        done = await plugin.execute("postgresql.terminate_backend", {"pid": pid})
        assert done.undo is None and done.before["state"] == "idle in transaction"
        assert await gone(postgresql_server, pid)
        with pytest.raises(PreconditionFailedError, match=f"no server process has pid {pid}"):
            await plugin.execute("postgresql.terminate_backend", {"pid": pid})


async def test_cancel_backend_stops_a_statement_and_keeps_the_session(plugin: PostgreSQLPlugin, ops_password: str,
                                                                     postgresql_server: PostgresServer) -> None:
    with app_session(postgresql_server, ops_password) as sleeper:
        pid, caught = sleeper.info.backend_pid, []
        thread = threading.Thread(target=lambda: _sleep(sleeper, caught), daemon=True)
        thread.start()
        with postgresql_server.admin() as admin:
            for _ in range(100):
                if admin.execute("select state from pg_stat_activity where pid = %s", (pid,)).fetchone()[0] == "active":
                    break
                await asyncio.sleep(0.05)
        await plugin.execute("postgresql.cancel_backend", {"pid": pid}, dry_run=True)
        assert thread.is_alive()
        done = await plugin.execute("postgresql.cancel_backend", {"pid": pid})
        assert done.output.startswith(f"done: select pg_cancel_backend({pid})")
        await asyncio.to_thread(thread.join, 10)
        assert isinstance(caught[0], psycopg.errors.QueryCanceled)
        assert sleeper.execute("select 1").fetchone() == (1,)  # the session goes on
        with pytest.raises(PreconditionFailedError, match="runs no statement \\(state idle\\)"):
            await plugin.execute("postgresql.cancel_backend", {"pid": pid})


def _sleep(conn: psycopg.Connection, caught: list) -> None:
    try:
        conn.execute("select pg_sleep(60)")
    except psycopg.Error as exc:
        caught.append(exc)


async def test_signals_spare_ourselves_superusers_and_background_processes(plugin: PostgreSQLPlugin,
                                                                          postgresql_server: PostgresServer) -> None:
    with postgresql_server.admin() as admin:
        [(checkpointer,)] = admin.execute("select pid from pg_stat_activity where backend_type = 'checkpointer'")
        with pytest.raises(PreconditionFailedError, match="is a checkpointer, not a client backend"):
            await plugin.execute("postgresql.terminate_backend", {"pid": checkpointer})
        with pytest.raises(PreconditionFailedError, match="belongs to superuser postgres"):
            await plugin.execute("postgresql.terminate_backend", {"pid": admin.info.backend_pid}, dry_run=True)
        assert admin.execute("select 1").fetchone() == (1,)


async def test_signals_spare_our_own_session(postgresql_server: PostgresServer, ops_password: str) -> None:
    plugin = PostgreSQLPlugin.create(ops_config(postgresql_server, ops_password))
    try:
        [(own,)] = await plugin.client.rows("select pg_backend_pid()::text")
        for action in ("postgresql.terminate_backend", "postgresql.cancel_backend"):
            with pytest.raises(PreconditionFailedError, match="this plugin's own session"):
                await plugin.execute(action, {"pid": own})
        assert await plugin.client.rows("select pg_backend_pid()::text") == [(own,)]
    finally:
        await plugin.close()


async def test_terminate_idle_in_transaction_with_a_database_filter(plugin: PostgreSQLPlugin, ops_password: str,
                                                                    postgresql_server: PostgresServer) -> None:
    with app_session(postgresql_server, ops_password) as in_shop, \
            app_session(postgresql_server, ops_password, "postgres") as elsewhere, \
            app_session(postgresql_server, ops_password) as busy_free:
        for conn in (in_shop, elsewhere):
            conn.execute("begin")
            conn.execute("select 1")
        busy_free.execute("select 1")  # idle, not in a transaction
        await asyncio.sleep(1.2)
        params = {"min_idle_s": 1, "db": "shop"}
        dry = await plugin.execute("postgresql.terminate_idle_in_transaction", params, dry_run=True)
        assert dry.before["pids"] == [in_shop.info.backend_pid]
        assert dry.output.startswith("pg_terminate_backend on 1 session(s) idle in transaction or idle in "
                                     f"transaction (aborted) for at least 1s, db shop: pids {in_shop.info.backend_pid} "
                                     f"({APP}@shop, ")
        assert alive(postgresql_server, in_shop.info.backend_pid)
        done = await plugin.execute("postgresql.terminate_idle_in_transaction", params)
        assert done.before["pids"] == [in_shop.info.backend_pid] and done.undo is None
        assert await gone(postgresql_server, in_shop.info.backend_pid)
        assert alive(postgresql_server, elsewhere.info.backend_pid)
        assert alive(postgresql_server, busy_free.info.backend_pid)
        with pytest.raises(PreconditionFailedError, match="no client session of a non-superuser is idle in"):
            await plugin.execute("postgresql.terminate_idle_in_transaction", params)


async def test_terminate_idle_sessions_never_touches_superusers(plugin: PostgreSQLPlugin, ops_password: str,
                                                                postgresql_server: PostgresServer) -> None:
    with app_session(postgresql_server, ops_password) as idle_app, postgresql_server.admin() as idle_super:
        idle_app.execute("select 1")
        idle_super.execute("select 1")
        await asyncio.sleep(1.2)
        with pytest.raises(PreconditionFailedError, match="idle for at least 3600s"):
            await plugin.execute("postgresql.terminate_idle_sessions", {"min_idle_s": 3600})
        dry = await plugin.execute("postgresql.terminate_idle_sessions", {"min_idle_s": 1}, dry_run=True)
        assert idle_app.info.backend_pid in dry.before["pids"]
        assert idle_super.info.backend_pid not in dry.before["pids"]
        done = await plugin.execute("postgresql.terminate_idle_sessions", {"min_idle_s": 1, "user": APP})
        assert done.before["pids"] == [idle_app.info.backend_pid]
        assert f"pids {idle_app.info.backend_pid} ({APP}@shop" in done.output
        assert await gone(postgresql_server, idle_app.info.backend_pid)
        assert idle_super.execute("select 1").fetchone() == (1,)


def current(server: PostgresServer, name: str) -> str:
    with server.admin() as admin:
        return admin.execute("select setting from pg_settings where name = %s", (name,)).fetchone()[0]


async def settles(server: PostgresServer, name: str, value: str) -> bool:
    for _ in range(50):
        if current(server, name) == value:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_alter_system_set_then_its_undo(plugin: PostgreSQLPlugin, postgresql_server: PostgresServer) -> None:
    original = current(postgresql_server, "work_mem")
    try:
        dry = await plugin.execute("postgresql.alter_system_set", {"name": "work_mem", "value": "8MB"}, dry_run=True)
        assert dry.output == f'ALTER SYSTEM SET "work_mem" = \'8MB\'; select pg_reload_conf() (now {original}kB, ' \
                             'from default)'
        assert dry.undo == ("postgresql.alter_system_reset", {"name": "work_mem"})
        done = await plugin.execute("postgresql.alter_system_set", {"name": "work_mem", "value": "8MB"})
        assert await settles(postgresql_server, "work_mem", "8192")
        assert done.output.endswith("; it reads 8192kB") and done.before["setting"] == original

        again = await plugin.execute("postgresql.alter_system_set", {"name": "work_mem", "value": "16MB"})
        assert again.undo == ("postgresql.alter_system_set", {"name": "work_mem", "value": "8192"})
        await plugin.execute(*again.undo)
        assert await settles(postgresql_server, "work_mem", "8192")
        await plugin.execute(*done.undo)
        assert await settles(postgresql_server, "work_mem", original)
        with pytest.raises(PreconditionFailedError, match="no ALTER SYSTEM value to reset"):
            await plugin.execute("postgresql.alter_system_reset", {"name": "work_mem"})
    finally:
        with postgresql_server.admin() as admin:
            admin.execute("ALTER SYSTEM RESET work_mem")
            admin.execute("select pg_reload_conf()")


@pytest.mark.parametrize("name, value, says", [
    ("max_connections", "500", "context postmaster"), ("shared_buffers", "64MB", "set by command line"),
    ("work_mem", "-5", "outside 64..2147483647 kB"),
    ("idle_in_transaction_session_timeout", "soon", None)])
async def test_alter_system_set_refuses_what_a_reload_cannot_apply(plugin: PostgreSQLPlugin, name: str, value: str,
                                                                    says: str | None,
                                                                    postgresql_server: PostgresServer) -> None:
    before = current(postgresql_server, name) if name != "no_such_setting" else None
    if says is None:  # a value only the server can judge: refused by it, nothing written
        with pytest.raises(ActionError, match="invalid value for parameter") as caught:
            await plugin.execute("postgresql.alter_system_set", {"name": name, "value": value})
        assert not isinstance(caught.value, PreconditionFailedError)
    else:
        with pytest.raises(PreconditionFailedError, match=says):
            await plugin.execute("postgresql.alter_system_set", {"name": name, "value": value})
    if before is not None:
        assert current(postgresql_server, name) == before
    assert not (postgresql_server.datadir / "postgresql.auto.conf").read_text().count(name)


def can_login(server: PostgresServer, role: str) -> bool:
    with server.admin() as admin:
        return admin.execute("select rolcanlogin from pg_roles where rolname = %s", (role,)).fetchone()[0]


async def test_lock_role_then_unlock_it(plugin: PostgreSQLPlugin, ops_password: str,
                                        postgresql_server: PostgresServer) -> None:
    try:
        dry = await plugin.execute("postgresql.lock_role", {"name": VICTIM}, dry_run=True)
        assert dry.output.startswith(f'ALTER ROLE "{VICTIM}" NOLOGIN') and can_login(postgresql_server, VICTIM)
        done = await plugin.execute("postgresql.lock_role", {"name": VICTIM})
        assert not can_login(postgresql_server, VICTIM)
        with pytest.raises(psycopg.OperationalError, match="not permitted to log in"):
            psycopg.connect(host=postgresql_server.host, port=postgresql_server.port, user=VICTIM,
                            password=ops_password, dbname="shop").close()
        assert done.undo == ("postgresql.unlock_role", {"name": VICTIM}) and done.before == {"rolcanlogin": True}
        with pytest.raises(PreconditionFailedError, match="cannot log in already"):
            await plugin.execute("postgresql.lock_role", {"name": VICTIM})
        unlocked = await plugin.execute(*done.undo)
        assert can_login(postgresql_server, VICTIM) and unlocked.undo == ("postgresql.lock_role", {"name": VICTIM})
    finally:
        with postgresql_server.admin() as admin:
            admin.execute(f"ALTER ROLE {VICTIM} LOGIN")


@pytest.mark.parametrize("name, says", [("postgres", "is a superuser"), (OPS, "the role this plugin is connected as"),
                                        ("nobody_here", "no role named nobody_here")])
async def test_lock_role_refuses_superusers_ourselves_and_unknown_roles(plugin: PostgreSQLPlugin, name: str, says: str,
                                                                        postgresql_server: PostgresServer) -> None:
    with pytest.raises(PreconditionFailedError, match=says):
        await plugin.execute("postgresql.lock_role", {"name": name})
    if name != "nobody_here":
        assert can_login(postgresql_server, name)


async def test_unknown_actions_and_bad_params_reach_nothing(plugin: PostgreSQLPlugin) -> None:
    with pytest.raises(UnknownActionError, match="postgresql.vacuum_full is not a PostgreSQL action"):
        await plugin.execute("postgresql.vacuum_full", {})
    with pytest.raises(ActionParamsError, match="'pid' must be a valid integer"):
        await plugin.execute("postgresql.terminate_backend", {"pid": "pg_backend_pid()"})
