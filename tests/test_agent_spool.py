"""The disk spool: ordered, survives restarts and torn writes, bounded with drops counted."""

from kubestack.agents.spool import Spool


def _records(n: int, start: int = 0, size: int = 10) -> list[tuple[str, bytes, bytes]]:
    return [("t", f"k{i % 3}".encode(), f"{i:0{size}d}".encode()) for i in range(start, start + n)]


def test_records_come_back_in_order_and_commit_removes_them(tmp_path) -> None:
    spool = Spool(tmp_path)
    spool.append(_records(5))
    batch = spool.read(3)
    assert [r.value for r in batch] == [b"0000000000", b"0000000001", b"0000000002"]
    assert [r.seq for r in batch] == [0, 1, 2] and batch[0].topic == "t" and batch[1].key == b"k1"
    assert [r.seq for r in spool.read(10)] == [3, 4], "reading continues where it left off"
    spool.commit(2)
    spool.rewind()
    assert [r.seq for r in spool.read(10)] == [3, 4], "after a rewind, unacknowledged records come again"
    assert spool.pending == 2


def test_unsent_records_survive_a_restart_and_sent_ones_do_not_come_back(tmp_path) -> None:
    spool = Spool(tmp_path)
    spool.append(_records(10))
    spool.commit(spool.read(4)[-1].seq)
    spool.close()
    again = Spool(tmp_path)
    assert [r.seq for r in again.read(100)] == list(range(4, 10))
    again.append(_records(2, start=10))
    assert [r.value for r in again.read(100)] == [b"0000000010", b"0000000011"]


def test_a_torn_tail_from_a_crash_is_cut_and_the_rest_kept(tmp_path) -> None:
    spool = Spool(tmp_path)
    spool.append(_records(3))
    spool.close()
    segment = next(tmp_path.glob("*.seg"))
    with segment.open("ab") as f:
        f.write(b"\x00\x00\x01garbage-half-record")
    again = Spool(tmp_path)
    assert [r.seq for r in again.read(10)] == [0, 1, 2]
    again.append(_records(1, start=3))
    assert [r.value for r in again.read(10)] == [b"0000000003"]


def test_past_the_bound_the_oldest_records_are_dropped_and_counted(tmp_path) -> None:
    spool = Spool(tmp_path, max_bytes=64 * 1024, segment_bytes=16 * 1024)
    for start in range(0, 4000, 100):
        spool.append(_records(100, start=start, size=40))
    assert spool.size_bytes <= 64 * 1024 + 16 * 1024
    assert spool.dropped > 0
    remaining = spool.read(10_000)
    assert spool.dropped + len(remaining) == 4000, "every record is either still there or counted as dropped"
    values = [int(r.value) for r in remaining]
    assert values == sorted(values) and values[-1] == 3999, "the newest are kept, in order"


def test_segments_roll_and_committed_ones_are_deleted(tmp_path) -> None:
    spool = Spool(tmp_path, max_bytes=10 * 1024 * 1024, segment_bytes=4096)
    spool.append(_records(1000, size=20))
    assert len(list(tmp_path.glob("*.seg"))) > 3
    while batch := spool.read(128):
        spool.commit(batch[-1].seq)
    assert spool.pending == 0 and len(list(tmp_path.glob("*.seg"))) == 1


def test_the_spool_is_private_to_the_user_whatever_the_umask_and_however_it_was_left(tmp_path) -> None:
    import os

    folder = tmp_path / "spool"
    old = os.umask(0o022)
    try:
        spool = Spool(folder)
        spool.append(_records(3))
        spool.commit(spool.read(1)[0].seq)
        spool.close()
        modes = {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()}
        assert folder.stat().st_mode & 0o777 == 0o700
        assert modes == {name: 0o600 for name in modes} and "cursor" in modes and len(modes) == 2
        folder.chmod(0o755)
        (folder / "cursor").chmod(0o644)  # as an older agent left them
        Spool(folder).close()
        assert folder.stat().st_mode & 0o777 == 0o700 and (folder / "cursor").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)
