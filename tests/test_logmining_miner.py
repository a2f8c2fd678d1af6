"""The template miner: grouping, ids, determinism, state round-trip, accuracy on committed labelled logs."""

import csv
import json
from pathlib import Path

import pytest
from drain3 import TemplateMiner as Drain3Miner
from drain3.template_miner_config import TemplateMinerConfig

from kubestack.errors import ConfigError
from kubestack.models.logaccuracy import grouping_accuracy
from kubestack.models.logformat import LogFormat
from kubestack.models.logtemplates import Mined, TemplateMiner

DATA = Path(__file__).parent / "data" / "logs"
SAMPLES = sorted((DATA / "synthetic").glob("*.log")) + sorted((DATA / "real").glob("*.log"))


def load(log: Path) -> tuple[list[str], list[str], LogFormat]:
    with open(log.with_suffix(".labels.csv"), newline="") as labels:
        truth = [row["template_id"] for row in csv.DictReader(labels)]
    return log.read_text().splitlines(), truth, LogFormat.parse(log.with_suffix(".format").read_text().strip())


def test_lines_of_one_template_share_an_id_and_the_template_generalises() -> None:
    miner = TemplateMiner()
    first = miner.add("Accepted password for root from 10.0.0.1 port 22 ssh2")
    second = miner.add("Accepted password for bob from 10.0.0.7 port 2222 ssh2")
    other = miner.add("Connection closed by 10.0.0.9 port 4411 [preauth]")
    assert first == Mined("E1", "Accepted password for root from <*> port <*> ssh2", True)
    assert second == Mined("E1", "Accepted password for <*> from <*> port <*> ssh2", False)
    assert other == Mined("E2", "Connection closed by <*> port <*> [preauth]", True)
    assert miner.templates() == [("E1", "Accepted password for <*> from <*> port <*> ssh2", 2),
                                 ("E2", "Connection closed by <*> port <*> [preauth]", 1)]


def test_messages_that_differ_in_their_constant_words_stay_apart() -> None:
    miner = TemplateMiner()
    ids = {miner.add(f"Connection {verb} by 10.0.0.{i} port {i}").template_id
           for i in range(5) for verb in ("closed", "reset")}
    assert len(ids) == 2


def test_a_generalised_word_keeps_the_punctuation_around_it() -> None:
    miner = TemplateMiner()
    miner.add("(root) CMD (run-parts /etc/cron.hourly)")
    assert miner.add("(bob) CMD (run-parts /etc/cron.daily)").template == "(<*>) CMD (run-parts <*>)"
    miner.add("synchronized to 10.0.0.1, stratum 3")
    assert miner.add("synchronized to LOCAL(0), stratum 10").template == "synchronized to <*>, stratum <*>"


def test_fixed_words_get_templates_of_their_own_and_ids_keep_their_meaning() -> None:
    """Class (a): messages that differ only in a fixed word are different messages, found once each word repeats."""
    miner = TemplateMiner()
    mined = [miner.add(f"Block rdd_{i} stored as {kind} in memory (estimated size {i}.0 {unit}, free 3.1 GB)")
             for i, (kind, unit) in enumerate([("bytes", "B"), ("values", "KB"), ("bytes", "KB"), ("values", "B"),
                                               ("bytes", "B"), ("values", "KB"), ("bytes", "MB")])]
    assert [m.template_id for m in mined] == ["E1", "E1", "E1", "E2", "E1", "E2", "E1"]
    assert [m.is_new for m in mined] == [True] + [False] * 6, "a moved word is no new message"
    assert miner.templates() == [
        ("E1", "Block <*> stored as bytes in memory (estimated size <*> <*>, free <*> GB)", 4),
        ("E2", "Block <*> stored as values in memory (estimated size <*> <*>, free <*> GB)", 3)]
    assert miner.refinements == 1
    early = "Block rdd_1 stored as values in memory (estimated size 1.0 KB, free 3.1 GB)"
    assert miner.refined(early, 1) == 2, "a line mined before the refinement finds its template from its old id"
    assert miner.refined(early, 2) == 2


def test_names_are_parameters_however_few_and_regular() -> None:
    """Consumer groups, services and hosts: a few names that take turns, yet parameters (hyphenated, or a key's)."""
    miner = TemplateMiner()
    groups = ["kubestack-worker", "orders-consumer", "kubestack-worker", "orders-consumer"] * 3
    ids = {miner.add(f"[GroupCoordinator 1]: Stabilized group {group} generation {i} (__consumer_offsets-{i}) "
                     f"with 3 members").template_id for i, group in enumerate(groups)}
    ids |= {miner.add(f"Connection user={user} database=shop").template_id for user in ["app", "ops"] * 4}
    assert ids == {"E1", "E2"} and miner.refinements == 0


def test_the_unit_of_a_value_is_no_fixed_word() -> None:
    miner = TemplateMiner()
    ids = {miner.add(f"Spilled {i}.5 {unit} to disk, free ({i}.0 {other})").template_id
           for i, (unit, other) in enumerate([("KB", "MB"), ("MB", "GB"), ("KB", "GB"), ("MB", "MB")] * 2)}
    assert ids == {"E1"} and miner.template(1) == "Spilled <*> <*> to disk, free (<*> <*>)"


def test_a_word_that_gives_way_to_another_for_good_is_no_fixed_word() -> None:
    """The stream mines whole lines: the month of a timestamp changes once, and must not split every template."""
    miner = TemplateMiner()
    lines = [f"1:M {day:02d} {month} 2026 23:59:{i:02d}.000 * DB saved on disk"
             for i, (day, month) in enumerate([(31, "Dec")] * 5 + [(1, "Jan")] * 5)]
    assert {miner.add(line).template_id for line in lines} == {"E1"}
    assert miner.refinements == 0 and miner.template(1) == "<*>:M <*> <*> <*> <*> * DB saved on disk"


def test_a_word_position_with_many_words_is_a_parameter() -> None:
    miner = TemplateMiner()
    users = ["root", "root", "admin", "root", "oracle", "test", "guest", "admin", "root", "support", "admin"]
    ids = {miner.add(f"Failed password for {user} from 10.0.0.{i} port {4000 + i} ssh2").template_id
           for i, user in enumerate(users)}
    assert ids == {"E1"} and miner.template(1) == "Failed password for <*> from <*> port <*> ssh2"
    assert miner.refinements == 0


def test_messages_whose_words_differ_in_a_row_stay_apart() -> None:
    miner = TemplateMiner()
    bye = miner.add("Received disconnect from 10.0.0.1: 11: Bye Bye [preauth]")
    user = miner.add("Received disconnect from 10.0.0.2: 11: disconnected by user")
    assert (bye.template_id, user.template_id, user.is_new) == ("E1", "E2", True)


def test_a_template_of_generalised_words_does_not_take_in_every_message_of_its_length() -> None:
    miner = TemplateMiner()
    lines = ["registered new driver usbfs", "registered new driver hub", "Mounting NFS filesystems: succeeded",
             "getDiffTotalSteps= 12##7", "registersensorsuccess: true"]
    assert [miner.add(line).template_id for line in lines] == ["E1", "E1", "E2", "E3", "E4"]


def test_the_log_format_cuts_the_content_and_unfit_lines_are_mined_whole() -> None:
    miner = TemplateMiner(log_format=LogFormat.parse(r"<Date> <Time> \[<Level>\] <Content>"))
    assert miner.add("2024-01-12 10:00:00 [ERROR] disk /data/kafka full").template == "disk <*> full"
    assert miner.add("\tat com.acme.Main.run(Main.java:12)").template == "at com.acme.Main.run(Main.java:<*>)"
    assert (miner.lines, miner.unmatched) == (2, 1)


def test_mining_is_deterministic() -> None:
    lines, _, fmt = load(DATA / "synthetic" / "javaapp.log")
    runs = [[TemplateMiner(log_format=fmt).add(line) for line in lines] for _ in range(2)]
    assert runs[0] == runs[1]


@pytest.mark.parametrize("log", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_a_restored_miner_continues_exactly_where_the_saved_one_stopped(log: Path) -> None:
    lines, _, fmt = load(log)
    straight = TemplateMiner(log_format=fmt)
    expected = [straight.add(line) for line in lines]
    resumed, got = TemplateMiner(log_format=fmt), []
    for start in range(0, len(lines), 97):
        got += [resumed.add(line) for line in lines[start:start + 97]]
        resumed = TemplateMiner.from_state(json.loads(json.dumps(resumed.to_state())))
    assert got == expected
    assert resumed.templates() == straight.templates()
    assert (resumed.lines, resumed.unmatched) == (straight.lines, straight.unmatched)


def test_a_restored_miner_continues_refinements_exactly() -> None:
    users = ["root", "bob", "alice", "carol", "dave", "erin"]
    lines = [f"pam_unix(sshd:session): session {verb} for user {users[i % 6]} by (uid={i})"
             for i, verb in enumerate(["opened", "closed", "opened", "opened", "closed"] * 6)]
    straight = TemplateMiner()
    expected = [straight.add(line) for line in lines]
    resumed, got = TemplateMiner(), []
    for line in lines:
        got.append(resumed.add(line))
        resumed = TemplateMiner.from_state(json.loads(json.dumps(resumed.to_state())))
    assert got == expected and resumed.templates() == straight.templates()
    assert [t for _, t, _ in straight.templates()] == [
        "pam_unix(sshd:session): session opened for user <*> by (uid=<*>)",
        "pam_unix(sshd:session): session closed for user <*> by (uid=<*>)"]
    assert [resumed.refined(line, int(m.template_id[1:])) for line, m in zip(lines, got)] == \
           [1 if "opened" in line else 2 for line in lines]


def test_a_state_of_version_1_is_read_and_its_ids_go_on() -> None:
    state = {"version": 1, "similarity": 0.5, "path_tokens": 2, "max_children": 100, "log_format": None,
             "lines": 2, "unmatched": 0,
             "templates": [["Accepted password for <*> from <*> port <*> <*>", 2, ["9", "Accepted", "password"]]]}
    miner = TemplateMiner.from_state(state)
    assert miner.add("Accepted password for eve from 10.0.0.3 port 22 ssh2").template_id == "E1"
    assert miner.lines == 3


def test_the_state_is_compact_and_damaged_state_is_refused() -> None:
    lines, _, fmt = load(DATA / "synthetic" / "kafka.log")
    miner = TemplateMiner(log_format=fmt)
    for line in lines:
        miner.add(line)
    state = json.dumps(miner.to_state())
    assert len(state) < 0.2 * sum(len(line) for line in lines)
    with pytest.raises(ConfigError, match="not a template miner state"):
        TemplateMiner.from_state({"version": 99})
    with pytest.raises(ConfigError, match="damaged"):
        TemplateMiner.from_state({**miner.to_state(), "templates": [["x", "many", []]]})


def test_max_children_overflow_goes_down_the_wildcard_branch_and_survives_a_restore() -> None:
    miner = TemplateMiner(max_children=2)
    words = ["alpha", "bravo", "charlie", "delta", "echo"]
    first = [miner.add(f"{word} started") for word in words]
    restored = TemplateMiner.from_state(miner.to_state())
    assert [restored.add(f"{word} started").template_id for word in words] == \
           [miner.add(f"{word} started").template_id for word in words]
    assert len({m.template_id for m in first}) < len(words)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="similarity"):
        TemplateMiner(similarity=0)


def _drain3(lines: list[str], fmt: LogFormat) -> list[int]:
    miner = Drain3Miner(config=TemplateMinerConfig())
    return [miner.add_log_message(fmt.content(line) or line)["cluster_id"] for line in lines]


def _mined(lines: list[str], fmt: LogFormat) -> list[int]:
    """Each line's template number as ``kubestack logs templates`` reports it (refinements followed)."""
    miner = TemplateMiner(log_format=fmt)
    numbers = [miner.add_number(line) for line in lines]
    return [miner.refined(line, number) for line, number in zip(lines, numbers)]


# Thresholds: at least plain drain3 defaults on every real log (it scores 0.34-1.0 there) and on average over
# the synthetic sample (0.944), and an average of 0.9 on the synthetic sample. The synthetic generator draws some
# fixed words as parameters (HTTP methods, database names); since issue 13 a few fixed words that recur get
# templates of their own, as the Loghub labels have them, so single synthetic files may score under drain3.
@pytest.mark.parametrize("log", sorted((DATA / "real").glob("*.log")), ids=lambda p: p.stem)
def test_grouping_on_real_logs_is_at_least_as_accurate_as_drain3_defaults(log: Path) -> None:
    lines, truth, fmt = load(log)
    assert grouping_accuracy(truth, _mined(lines, fmt)) >= grouping_accuracy(truth, _drain3(lines, fmt))


def test_grouping_accuracy_on_the_committed_synthetic_sample() -> None:
    ours, drain3 = [], []
    for log in sorted((DATA / "synthetic").glob("*.log")):
        lines, truth, fmt = load(log)
        ours.append(grouping_accuracy(truth, _mined(lines, fmt)))
        drain3.append(grouping_accuracy(truth, _drain3(lines, fmt)))
    assert len(ours) == 10 and sum(ours) / len(ours) >= max(0.9, sum(drain3) / len(drain3))


def test_grouping_accuracy_metric() -> None:
    truth = ["a", "a", "b", "b", "c"]
    assert grouping_accuracy(truth, [1, 1, 2, 2, 3]) == 1.0
    assert grouping_accuracy(truth, [1, 1, 1, 1, 3]) == 0.2  # a and b merged: only c is right
    assert grouping_accuracy(truth, [1, 2, 3, 3, 4]) == 0.6  # a split: both a lines wrong, b and c right
    with pytest.raises(ConfigError, match="pair up"):
        grouping_accuracy(truth, [1])
