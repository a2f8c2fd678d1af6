"""Following log files: new lines only, positions across restarts, rename and copytruncate rotation."""

import os

from kubestack.agents.logtail import FileTail, GlobTail


def _write(path, text: str, mode: str = "a") -> None:
    with open(path, mode) as f:
        f.write(text)


def test_starts_at_the_end_then_follows_new_lines(tmp_path) -> None:
    log = tmp_path / "app.log"
    _write(log, "old 1\nold 2\n")
    tail = FileTail(str(log), None)
    assert tail.poll() == []
    _write(log, "new 1\nnew 2\n")
    lines = tail.poll()
    assert [l.text for l in lines] == ["new 1", "new 2"]
    assert lines[0].offset == len("old 1\nold 2\n")


def test_partial_lines_wait_for_their_end(tmp_path) -> None:
    log = tmp_path / "app.log"
    _write(log, "")
    tail = FileTail(str(log), None)
    _write(log, "half a li")
    assert tail.poll() == []
    _write(log, "ne\nnext\n")
    assert [l.text for l in tail.poll()] == ["half a line", "next"]


def test_position_survives_a_restart_without_loss_or_repeat(tmp_path) -> None:
    log = tmp_path / "app.log"
    _write(log, "")
    tail = FileTail(str(log), None)
    _write(log, "a\nb\nc")
    assert [l.text for l in tail.poll()] == ["a", "b"]
    saved = tail.position
    tail.close()
    _write(log, "\nd\n")
    again = FileTail(str(log), saved)
    assert [l.text for l in again.poll()] == ["c", "d"]


def test_rename_rotation_reads_the_old_file_to_its_end_then_the_new_one(tmp_path) -> None:
    log = tmp_path / "app.log"
    _write(log, "")
    tail = FileTail(str(log), None)
    _write(log, "before 1\n")
    assert [l.text for l in tail.poll()] == ["before 1"]
    _write(log, "before 2\n")
    os.rename(log, tmp_path / "app.log.1")
    _write(log, "after 1\n", mode="w")
    assert [l.text for l in tail.poll()] == ["before 2", "after 1"]
    _write(log, "after 2\n")
    assert [l.text for l in tail.poll()] == ["after 2"]


def test_copytruncate_rotation_starts_again_from_the_top(tmp_path) -> None:
    log = tmp_path / "app.log"
    _write(log, "")
    tail = FileTail(str(log), None)
    _write(log, "x" * 50 + "\n")
    assert len(tail.poll()) == 1
    _write(log, "short\n", mode="w")
    assert [l.text for l in tail.poll()] == ["short"]


def test_rotated_while_the_agent_was_away_reads_the_new_file_from_the_start(tmp_path) -> None:
    log = tmp_path / "app.log"
    _write(log, "a\n")
    tail = FileTail(str(log), None, from_start=True)
    assert [l.text for l in tail.poll()] == ["a"]
    saved = tail.position
    tail.close()
    os.rename(log, tmp_path / "app.log.1")
    _write(log, "fresh\n", mode="w")
    assert [l.text for l in FileTail(str(log), saved).poll()] == ["fresh"]


def test_glob_picks_up_new_files_from_their_start(tmp_path) -> None:
    _write(tmp_path / "a.log", "old\n")
    tail = GlobTail(str(tmp_path / "*.log"), {})
    assert tail.poll() == []
    _write(tmp_path / "b.log", "b1\n")
    _write(tmp_path / "a.log", "a1\n")
    assert sorted(l.text for l in tail.poll()) == ["a1", "b1"]
    assert set(tail.positions) == {str(tmp_path / "a.log"), str(tmp_path / "b.log")}
