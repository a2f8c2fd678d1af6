from datetime import timedelta

from kubestack.contract.topics import METRICS
from kubestack.errors import EventDecodeError
from kubestack.pipeline.edge import dead_letter
from kubestack.pipeline.inventory import observe, silent_since
from tests.factories import example


def test_inventory_counts_batches_and_never_moves_last_seen_backwards() -> None:
    first = example(METRICS)
    late = first.model_copy(update={"ts": first.ts - timedelta(minutes=5), "event_id": "late"})
    entry = observe(observe(None, first), late)
    assert (entry.batches, entry.samples) == (2, 4)
    assert entry.last_seen == first.ts and entry.first_seen == late.ts
    assert entry.metric_names == ["redis_connected_clients", "redis_used_memory_bytes"]


def test_silence_is_judged_against_the_targets_interval() -> None:
    entry = observe(None, example(METRICS))  # interval 10 s
    assert not silent_since(entry, entry.last_seen + timedelta(seconds=29))
    assert silent_since(entry, entry.last_seen + timedelta(seconds=31))


def test_dead_letter_keeps_bytes_position_and_reason() -> None:
    error = EventDecodeError("kubestack.metrics.v1", "not a valid MetricBatch: source: Field required")
    letter = dead_letter(topic="kubestack.metrics.v1", raw=b"\xff{", key=b"k", partition=3, offset=9,
                         error=error, stage="intake")
    assert letter.payload == "\\xff{" and letter.reason == error.reason
    assert (letter.partition, letter.offset, letter.key, letter.error_type) == (3, 9, "k", "EventDecodeError")


def test_dead_letter_for_an_unexpected_error_names_its_type() -> None:
    letter = dead_letter(topic="t", raw=None, key=None, partition=None, offset=None, error=KeyError("x"), stage="s")
    assert letter.reason == "KeyError: 'x'" and letter.payload == ""


def test_detector_state_from_another_version_is_relearned_not_fatal() -> None:
    from kubestack.pipeline.detection import ResourceDetectors

    restored = ResourceDetectors.from_state({"d:redis_used_memory_bytes": "AAEC"}, threshold=0.7)
    assert restored.detectors == {}
    assert restored.observe(example(METRICS), example(METRICS).source) == []


def test_dead_letter_keeps_no_secret_of_the_payload_or_the_reason() -> None:
    raw = b'{"lines": [{"line": "AUTH Dl3tterPw"}], "dsn": "redis://:Dl3tterUrl@cache:6379", "pad": "' + b"x" * 70_000
    error = EventDecodeError("kubestack.logs.v1", "not a valid LogBatch: input_value='password=Dl3tterReason'")
    letter = dead_letter(topic="kubestack.logs.v1", raw=raw, key=b"k", partition=0, offset=1, error=error,
                         stage="logs")
    assert "Dl3tter" not in letter.payload + letter.reason
    assert "redis://:<redacted>@cache:6379" in letter.payload and len(letter.payload) == 64 * 1024
