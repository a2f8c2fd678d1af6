"""The PostgreSQL plugin's own protocol client (``plugins/postgresql/wire.py`` behind ``DirectPostgreSQLClient``)
against real servers: the session's (SCRAM over TCP, trust over the Unix socket, no TLS) and one of this module
with TLS, md5 and cleartext logins. Replies are compared with ``psql``'s; every failure must come out as the
plugin's specific error, and the session must be usable again after it."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubestack.errors import CommandFailedError, TargetAuthError, TargetTimeoutError, TargetUnreachableError
from kubestack.plugins.base import LocalRunner
from kubestack.plugins.postgresql import PostgreSQLConfig
from kubestack.plugins.postgresql.actions import identifier, literal
from kubestack.plugins.postgresql.client import DirectPostgreSQLClient, PsqlClient
from kubestack.plugins.postgresql.wire import PgLoginError, ScramSha256
from tests.services.postgresql import SUPERUSER, PostgresServer, running_postgresql
from tests.services.process import free_port
from tests.services.smtp import self_signed

REPLIES = """\
select 'é ünïcode', null, '', 42::text
union all select 'second', 'x', null, '-1'"""
"""NULL apart from empty, non-ASCII, two rows."""


def config_for(server: PostgresServer, **overrides: object) -> PostgreSQLConfig:
    return PostgreSQLConfig.model_validate({"host": server.host, "port": server.port, "dbname": server.dbname,
                                            "user": server.user, "password": {"value": server.password},
                                            "sslmode": "disable", **overrides})


@contextlib.asynccontextmanager
async def direct(config: PostgreSQLConfig):
    client = DirectPostgreSQLClient(config)
    try:
        yield client
    finally:
        await client.close()


# --- pure parts ----------------------------------------------------------------------------------------


def test_scram_sha_256_gives_rfc_7677s_proof_and_checks_the_server_signature() -> None:
    scram = ScramSha256("pencil", nonce="rOprNGfwEbeRWgbNEkqO", user="user")
    assert scram.first() == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    final = scram.final(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
    assert final == (b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                     b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    scram.verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
    with pytest.raises(PgLoginError, match="does not know the password"):
        scram.verify(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")


def test_quoting_reads_back_as_the_same_text() -> None:
    assert literal("o'k") == "'o''k'" and literal("a\\b") == "E'a\\\\b'" and identifier('we"ird') == '"we""ird"'


def test_importing_the_plugin_loads_no_psycopg() -> None:
    probe = "import sys, kubestack.plugins.postgresql; print(sorted(m for m in sys.modules if 'psycopg' in m))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- the session's server: SCRAM, no TLS ---------------------------------------------------------------


async def test_replies_are_the_cells_psql_prints(postgresql_server: PostgresServer) -> None:
    config = config_for(postgresql_server)
    async with direct(config) as client:
        rows = await client.rows(REPLIES)
        assert rows == [("é ünïcode", None, "", "42"), ("second", "x", None, "-1")]
        assert await client.rows("select E'a\\tb\\nc'") == [("a\tb\nc",)]  # psql's output could not tell these
        assert await client.rows("select 1 where false") == []
        assert await client.write("set application_name = 'kubestack-wire'") == []
        assert await client.rows("select current_setting('application_name'), "
                                 "current_setting('statement_timeout')") == [("kubestack-wire", "5s")]
    assert await PsqlClient(config, LocalRunner()).rows(REPLIES) == rows


async def test_unix_socket_directory_as_host(postgresql_server: PostgresServer) -> None:
    config = config_for(postgresql_server, host=str(postgresql_server.socket_dir), password=None)
    async with direct(config) as client:  # trust over the socket: no password asked
        assert await client.rows("select current_user") == [(postgresql_server.user,)]


async def test_sql_error_keeps_the_session(postgresql_server: PostgresServer) -> None:
    async with direct(config_for(postgresql_server)) as client:
        [(pid,)] = await client.rows("select pg_backend_pid()::text")
        with pytest.raises(CommandFailedError, match='relation "no_such_table" does not exist'):
            await client.rows("select * from no_such_table")
        with pytest.raises(CommandFailedError, match="permission denied"):
            await client.write("alter system set work_mem = '8MB'")
        assert await client.rows("select pg_backend_pid()::text") == [(pid,)]


async def test_statement_timeout_is_a_timeout_and_the_session_stays(postgresql_server: PostgresServer) -> None:
    async with direct(config_for(postgresql_server, timeout_s=0.5)) as client:
        [(pid,)] = await client.rows("select pg_backend_pid()::text")
        with pytest.raises(TargetTimeoutError, match="gave no answer in 0.5s"):
            await client.rows("select pg_sleep(3)")
        assert await client.rows("select pg_backend_pid()::text") == [(pid,)]


async def test_session_ended_by_the_server_is_unreachable_then_reopened(postgresql_server: PostgresServer) -> None:
    async with direct(config_for(postgresql_server)) as client:
        [(pid,)] = await client.rows("select pg_backend_pid()::text")
        with postgresql_server.admin() as admin:
            admin.execute(f"select pg_terminate_backend({int(pid)})")
        with pytest.raises(TargetUnreachableError, match="terminating connection due to administrator command"):
            await client.rows("select 1")
        [(again,)] = await client.rows("select pg_backend_pid()::text")
        assert again != pid


async def test_wrong_or_missing_password_is_an_auth_error(postgresql_server: PostgresServer) -> None:
    for password, says in (({"value": "not-the-password"}, 'password authentication failed for user "kubestack"'),
                           (None, "no password supplied")):
        async with direct(config_for(postgresql_server, password=password)) as client:
            with pytest.raises(TargetAuthError, match=says):
                await client.rows("select 1")
    async with direct(config_for(postgresql_server, dbname="no_such_db")) as client:
        with pytest.raises(TargetAuthError, match='database "no_such_db" does not exist'):
            await client.rows("select 1")


async def test_closed_port_is_unreachable(postgresql_server: PostgresServer) -> None:
    async with direct(config_for(postgresql_server, port=free_port())) as client:
        with pytest.raises(TargetUnreachableError, match="cannot be reached"):
            await client.rows("select 1")


async def test_silent_server_is_a_timeout() -> None:
    accepted: list[asyncio.StreamWriter] = []
    server = await asyncio.start_server(lambda _r, w: accepted.append(w), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = PostgreSQLConfig.model_validate({"port": port, "password": {"value": "x"}, "timeout_s": 1})
    try:
        async with direct(config) as client:
            with pytest.raises(TargetTimeoutError, match="did not complete the login in 2s"):
                await client.rows("select 1")
        assert accepted, "the client never reached the silent server"
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_tls_required_of_a_server_without_it_is_refused(postgresql_server: PostgresServer) -> None:
    async with direct(config_for(postgresql_server, sslmode="require")) as client:
        with pytest.raises(TargetUnreachableError, match="does not offer TLS, and sslmode is require"):
            await client.rows("select 1")
    async with direct(config_for(postgresql_server, sslmode="prefer")) as client:
        assert await client.rows("select 'plain'") == [("plain",)]


# --- a server of this module: TLS, md5, cleartext --------------------------------------------------------

HBA = """\
local all all trust
host all pw_user 127.0.0.1/32 password
hostssl all md5_user 127.0.0.1/32 md5
hostssl all kubestack 127.0.0.1/32 scram-sha-256
hostnossl all kubestack 127.0.0.1/32 reject
"""
"""The monitoring role may log in only over TLS; md5_user's password is stored as md5 and asked as md5."""


@dataclass(frozen=True)
class TlsServer:
    server: PostgresServer
    ca_file: Path
    other_ca_file: Path


@pytest.fixture(scope="module")
def tls_server() -> Iterator[TlsServer]:
    certs = Path(tempfile.mkdtemp(prefix="kubestack-E-pgtls-", dir="/tmp"))
    try:
        cert, key = self_signed(certs)
        other = certs / "other"
        other.mkdir()
        other_cert, _ = self_signed(other)
        for path in (certs, cert, key):
            shutil.chown(path, SUPERUSER, SUPERUSER)
        with running_postgresql("E-pgtls", ssl="on", ssl_cert_file=str(cert), ssl_key_file=str(key)) as server:
            (server.datadir / "pg_hba.conf").write_text(HBA)
            with server.admin("postgres") as admin:
                admin.execute("select pg_reload_conf()")
                admin.execute("set password_encryption = 'md5'")
                admin.execute(f"create role md5_user login password {literal(server.password)}")
                admin.execute("reset password_encryption")
                admin.execute(f"create role pw_user login password {literal(server.password)}")
            yield TlsServer(server, cert, other_cert)
    finally:
        shutil.rmtree(certs, ignore_errors=True)


async def test_tls_modes(tls_server: TlsServer) -> None:
    server, ssl_in_use = tls_server.server, "select ssl::text from pg_stat_ssl where pid = pg_backend_pid()"
    for sslmode, root in (("require", None), ("prefer", None), ("allow", None),
                          ("verify-ca", tls_server.ca_file), ("verify-full", tls_server.ca_file)):
        async with direct(config_for(server, sslmode=sslmode, sslrootcert=root and str(root))) as client:
            assert await client.rows(ssl_in_use) == [("true",)], sslmode
    async with direct(config_for(server, sslmode="disable")) as client:
        with pytest.raises(TargetAuthError, match="no encryption"):
            await client.rows("select 1")
    async with direct(config_for(server, sslmode="verify-ca", sslrootcert=str(tls_server.other_ca_file))) as client:
        with pytest.raises(TargetUnreachableError, match="certificate verify failed"):
            await client.rows("select 1")


async def test_md5_and_cleartext_logins(tls_server: TlsServer) -> None:
    server = tls_server.server
    with server.admin("postgres") as admin:  # so the server asks md5_user for md5, and pw_user for cleartext
        stored = dict(admin.execute("select rolname, left(rolpassword, 3) from pg_authid "
                                    "where rolname in ('md5_user', 'pw_user')").fetchall())
    assert stored == {"md5_user": "md5", "pw_user": "SCR"}
    for user, sslmode in (("md5_user", "require"), ("pw_user", "disable")):
        async with direct(config_for(server, user=user, sslmode=sslmode)) as client:
            assert await client.rows("select current_user") == [(user,)]
        async with direct(config_for(server, user=user, sslmode=sslmode, password={"value": "wrong"})) as client:
            with pytest.raises(TargetAuthError, match=f'password authentication failed for user "{user}"'):
                await client.rows("select 1")
