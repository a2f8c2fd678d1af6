"""``kubestack logs templates``: the real console script, run in a subprocess."""

import csv
import io
from pathlib import Path

from kubestack.models.logaccuracy import grouping_accuracy
from tests.cli import run

DATA = Path(__file__).parent / "data" / "logs"


def rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_one_row_per_line_in_order_to_stdout(tmp_path: Path) -> None:
    log = tmp_path / "sshd.log"
    log.write_text("Accepted password for root from 10.0.0.1 port 22 ssh2\n"
                   "Connection closed by 10.0.0.2 port 4242 [preauth]\n"
                   "\n"
                   "Accepted password for bob, from 10.0.0.3 port 2222 ssh2\n"
                   "Accepted password for bob from 10.0.0.3 port 2222 ssh2")
    result = run("logs", "templates", str(log))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "line,template_id,template"
    assert rows(result.stdout) == [
        {"line": "1", "template_id": "E1", "template": "Accepted password for <*> from <*> port <*> ssh2"},
        {"line": "2", "template_id": "E2", "template": "Connection closed by <*> port <*> [preauth]"},
        {"line": "3", "template_id": "E3", "template": ""},
        {"line": "4", "template_id": "E1", "template": "Accepted password for <*> from <*> port <*> ssh2"},
        {"line": "5", "template_id": "E1", "template": "Accepted password for <*> from <*> port <*> ssh2"},
    ]
    assert result.stderr == ""


def test_lines_mined_before_a_refinement_are_reported_in_their_final_template(tmp_path: Path) -> None:
    log = tmp_path / "spark.log"
    kinds = ["bytes", "values", "bytes", "values", "bytes"]
    log.write_text("".join(f"Block rdd_{i} stored as {kind} in memory (estimated size {i}.0 KB, free 3.1 GB)\n"
                           for i, kind in enumerate(kinds)))
    table = rows(run("logs", "templates", str(log)).stdout)
    assert [row["template_id"] for row in table] == ["E1", "E2", "E1", "E2", "E1"]
    assert [row["template"] for row in table[:2]] == [
        "Block <*> stored as bytes in memory (estimated size <*> KB, free <*> GB)",
        "Block <*> stored as values in memory (estimated size <*> KB, free <*> GB)"]


def test_log_format_output_file_and_the_unmatched_warning(tmp_path: Path) -> None:
    log = DATA / "synthetic" / "javaapp.log"
    fmt = (DATA / "synthetic" / "javaapp.format").read_text().strip()
    out = tmp_path / "templates.csv"
    result = run("logs", "templates", str(log), "--log-format", fmt, "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    table = rows(out.read_text())
    lines = log.read_text().splitlines()
    assert [int(row["line"]) for row in table] == list(range(1, len(lines) + 1))
    unmatched = sum(1 for line in lines if line.startswith(("\t", "java", "org", "Caused")))
    warning = result.stderr.strip()
    assert warning == f"warning: {unmatched} of {len(lines)} lines do not match the log format; they were mined whole"
    with open(DATA / "synthetic" / "javaapp.labels.csv", newline="") as labels:
        truth = [row["template_id"] for row in csv.DictReader(labels)]
    assert grouping_accuracy(truth, [row["template_id"] for row in table]) >= 0.95


def test_replays_are_deterministic_and_match_the_loghub_style_format(tmp_path: Path) -> None:
    log = DATA / "real" / "postgres.log"
    fmt = r"<Date> <Time> <Zone> \[<Pid>\] <Level>:  <Content>"
    first, second = (run("logs", "templates", str(log), "--log-format", fmt) for _ in range(2))
    assert first.returncode == 0 and first.stdout == second.stdout
    assert "checkpoint starting: immediate force wait" in first.stdout
    assert "warning: 12 of 108 lines" in first.stderr  # the pg_hba.conf continuation lines


def test_missing_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run("logs", "templates", str(tmp_path / "a-rather-long-directory-name" / "and-a-long-file-name.log"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: log file not found: ") and "Traceback" not in result.stderr


def test_bad_format_is_one_line_and_exit_2(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("hello\n")
    result = run("logs", "templates", str(log), "--log-format", "<Date> <Time> <Level> <Message>")
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: log format '<Date> <Time> <Level> <Message>' has no <Content> field: "
                                     "templates are mined from it")
    assert result.stdout == ""


def test_unwritable_output_and_a_directory_as_input(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("hello\n")
    unwritable = run("logs", "templates", str(log), "-o", str(tmp_path / "missing" / "out.csv"))
    directory = run("logs", "templates", str(tmp_path))
    assert (unwritable.returncode, directory.returncode) == (2, 2)
    assert unwritable.stderr.startswith("error: cannot write ") and "\n" not in unwritable.stderr.strip()
    assert directory.stderr.strip() == f"error: {tmp_path} is a directory: give a log file"
