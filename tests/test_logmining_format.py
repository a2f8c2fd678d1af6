"""Log formats in the Loghub <Field> convention, and masking of variable parts."""

from pathlib import Path

import pytest

from kubestack.errors import ConfigError
from kubestack.models.logformat import LogFormat
from kubestack.models.logmasking import Masker, mask
from kubestack.plugins.mysql.plugin import LOG_FORMAT as MYSQL_LOG_FORMAT
from kubestack.plugins.postgresql.plugin import LOG_FORMAT as POSTGRESQL_LOG_FORMAT
from kubestack.plugins.redis.plugin import LOG_FORMAT as REDIS_LOG_FORMAT

SERVER_LOGS = Path(__file__).parent / "data" / "logs" / "servers"


def test_fields_are_split_by_the_literal_text_between_them() -> None:
    fmt = LogFormat.parse("<Date> <Time> <Pid> <Level> <Component>: <Content>")
    fields = fmt.match("081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 terminating")
    assert fields == {"Date": "081109", "Time": "203615", "Pid": "148", "Level": "INFO",
                      "Component": "dfs.DataNode$PacketResponder", "Content": "PacketResponder 1 terminating"}
    assert fmt.fields == ("Date", "Time", "Pid", "Level", "Component", "Content")


def test_whitespace_in_the_format_matches_any_run_of_spaces() -> None:
    fmt = LogFormat.parse("<Date> <Time> <Level> <Content>")
    assert fmt.content("2024-01-12   10:00:00\tWARN   disk  almost full  ") == "disk  almost full"


def test_escaped_brackets_and_plain_brackets_are_both_literal() -> None:
    escaped = LogFormat.parse(r"<Date> <Time> <Thread> \[<Level>\] <Content>")
    plain = LogFormat.parse("<Date> <Time> <Thread> [<Level>] <Content>")
    line = "2024-01-12 10:00:00 0 [Note] InnoDB: Starting shutdown..."
    assert escaped.match(line) == plain.match(line)
    assert plain.match(line)["Level"] == "Note"


def test_optional_parts_in_parentheses_followed_by_a_question_mark() -> None:
    fmt = LogFormat.parse(r"<Month> <Day> <Time> <Host> <Component>(\[<Pid>\])?: <Content>")
    with_pid = fmt.match("Jan 12 10:00:00 db-1 sshd[4242]: Server listening on 0.0.0.0 port 22.")
    without = fmt.match("Jan 12 10:00:00 db-1 kernel: Out of memory: Killed process 77")
    assert (with_pid["Component"], with_pid["Pid"]) == ("sshd", "4242")
    assert (without["Component"], without["Pid"], without["Content"]) == ("kernel", "", "Out of memory: Killed process 77")


def test_a_parenthesis_without_question_mark_is_literal_text() -> None:
    fmt = LogFormat.parse("<Time> (<Pid>) <Content>")
    assert fmt.match("10:00 (42) hello world") == {"Time": "10:00", "Pid": "42", "Content": "hello world"}


def test_a_line_that_does_not_fit_gives_none() -> None:
    fmt = LogFormat.parse(r"<Timestamp> <Level> <Pid> --- \[<Thread>\] <Logger> : <Content>")
    assert fmt.content("\tat com.acme.orders.OrderService.process(OrderService.java:42)") is None
    assert fmt.match("no header here") is None


@pytest.mark.parametrize(("text", "reason"), [
    ("", "empty log format"),
    ("<Date> <Time> <Level>", "has no <Content> field"),
    ("<Date> <Content> <Date>", "repeats field <Date>"),
])
def test_bad_formats_say_what_is_wrong(text: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        LogFormat.parse(text)


@pytest.mark.parametrize(("message", "masked"), [
    ("Accepted password for root from 10.0.0.1 port 22 ssh2", "Accepted password for root from <*> port <*> ssh2"),
    ("pid=4242 [12] took 12ms (size=1.5G)", "pid=<*> [<*>] took <*> (size=<*>)"),
    ("block blk_-1608999687919862906 on 10.0.0.1:50010 from /10.0.0.2:4242", "block <*> on <*> from <*>"),
    ("id 3fa85f64-5717-4562-b3fc-2c963f66afa6 at 0x7f3a req-3fa85f64-5717-4562-b3fc-2c963f66afa6",
     "id <*> at <*> <*>"),
    ("loading /etc/redis/redis.conf and https://example.com/a?b", "loading <*> and <*>"),
    ("table 'shop.orders' doesn't exist", "table 'shop.orders' doesn't exist"),
    ("Ready to accept connections", "Ready to accept connections"),
    ('"GET /v2/servers/detail HTTP/1.1" status: 200 len: 1893 time: 0.2477829',
     '"GET <*> HTTP/<*>" status: <*> len: <*> time: <*>'),
    ("generating core.2275 for rdd_2_3 on eth0 via jk2_init() PSR0=0x12", "generating core.<*> for <*> on eth0 via "
                                                                          "jk2_init() PSR0=<*>"),
    ("isScreenOn true, cached=null at 12:01:03 from 00:1a:2b:3c:4d:5e", "isScreenOn <*>, cached=<*> at <*> from <*>"),
    ("token deadbeefcafe0042 user #28# steps 1514038440000##7007##548", "token <*> user <*> steps <*>##<*>##<*>"),
])
def test_masking_replaces_numbers_addresses_ids_and_paths(message: str, masked: str) -> None:
    assert mask(message) == masked
    assert Masker().tokens(message) == masked.split()


def test_the_token_masker_agrees_with_the_regex_when_its_memory_fills() -> None:
    masker = Masker(limit=3)
    lines = [f"user u{i} from 10.0.{i}.1 port {i} took {i}ms" for i in range(20)]
    assert [masker.tokens(line) for line in lines] == [mask(line).split() for line in lines]


@pytest.mark.parametrize(("recording", "text", "unmatched"), [
    ("postgresql.log", POSTGRESQL_LOG_FORMAT, []),
    ("mariadb.log", MYSQL_LOG_FORMAT, ["Version: '10.11.19-MariaDB-0+deb12u1'  socket: "
                                       "'/tmp/kubestack-rec/mariadb/mariadb.sock'  port: 35665  Debian 12"]),
    ("redis.log", REDIS_LOG_FORMAT, ["29419:signal-handler (1795451634) Received SIGTERM scheduling shutdown..."]),
])
def test_each_plugin_format_fits_the_logs_of_the_test_servers(recording: str, text: str, unmatched: list[str]) -> None:
    """The formats the fault tests tail these servers with: every line but the banners splits into fields."""
    fmt = LogFormat.parse(text)
    lines = (SERVER_LOGS / recording).read_text().splitlines()
    assert [line for line in lines if fmt.match(line) is None] == unmatched
    assert fmt.content(lines[-1]) and fmt.content(lines[-1]) in lines[-1]
