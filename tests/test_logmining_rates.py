"""The template-rate tracker: new templates, error bursts and rate changes, each scored in [0, 1]."""

import pytest

from kubestack.errors import ConfigError
from kubestack.models.logrates import ROUTINE_NEW_TEMPLATE, TemplateRates, is_error, is_informational, surprise


def steady(rates: TemplateRates, windows: int, per_window: int = 10) -> list:
    signals = []
    for w in range(windows):
        for i in range(per_window):
            signals += rates.observe(w * 60 + i, "E1", is_new=(w == 0 and i == 0), error=False)
            signals += rates.observe(w * 60 + i + 0.5, "E2", is_new=(w == 0 and i == 0), error=(i == 0))
    return signals


@pytest.mark.parametrize(("line", "error"), [
    ("2024-01-12 10:00:00 ERROR disk full", True),
    ("FATAL:  password authentication failed", True),
    ("panic: runtime error: index out of range", True),
    ("java.lang.NullPointerException: null", True),
    ("2024/01/12 10:00:00 [error] 12#0: connect() failed", True),
    ("INFO all good, 0 errors", False),
    ("Error rate is 0.1%", False),
])
def test_error_level_lines(line: str, error: bool) -> None:
    assert is_error(line) is error


def test_surprise_is_zero_within_three_spreads_and_grows_towards_one() -> None:
    assert surprise(10, 10) == 0.0 and surprise(16, 10) == 0.0
    assert 0.0 < surprise(30, 10) < surprise(60, 10) < 1.0
    assert surprise(0, 100) > 0.9


def test_new_templates_score_low_while_warming_up_and_one_after() -> None:
    rates = TemplateRates(window=60, warmup=4)
    during = steady(rates, 6)
    assert [(s.kind, s.template_id, s.score) for s in during] == [("new_template", "E1", 0.0),
                                                                  ("new_template", "E2", 0.0)]
    signals = rates.observe(6 * 60 + 5, "E9", is_new=True, error=False)
    assert [(s.kind, s.template_id, s.score) for s in signals] == [("new_template", "E9", 1.0)]


def test_a_new_template_never_alerts_before_the_source_is_warm() -> None:
    rates = TemplateRates(window=60, warmup=5)
    scores = [s.score for w in range(7) for s in rates.observe(w * 60 + 30, f"E{w + 1}", is_new=True, error=False)]
    assert scores == [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize(("line", "informational"), [
    ("2026-11-23 16:33:21.167 UTC [29448] LOG:  checkpoint starting: time", True),
    ('2026-11-23 16:33:33.864 UTC [29985] DETAIL:  Connection matched pg_hba.conf line 3: "host all all '
     '127.0.0.1/32 scram-sha-256"', True),
    ('2026-11-23 16:33:33.864 UTC [29985] FATAL:  password authentication failed for user "kubestack"', False),
    ("2026-11-23 16:32:52 0 [Note] InnoDB: 128 rollback segments are active.", True),
    ("2026-11-23 16:33:33 5 [Warning] Access denied for user 'kubestack'@'127.0.0.1' (using password: YES)", False),
    ("29419:M 23 Nov 2026 16:32:49.922 * Ready to accept connections", True),
    ("29419:M 23 Nov 2026 16:32:49.922 # WARNING Memory overcommit must be enabled!", False),
    ("[2024-01-12 10:00:00,123] INFO [Controller id=1] Processing automatic preferred replica election", True),
    ("[2024-01-12 10:00:00,123] INFO [Log partition=t-0] Error while flushing: IOException", False),
    ("Jan 12 10:00:00 db-1 sshd[4242]: Failed password for root from 10.0.0.1 port 22 ssh2", False),
])
def test_informational_lines_are_marked_so_by_their_own_level(line: str, informational: bool) -> None:
    assert is_informational(line) is informational


def test_a_routine_new_template_scores_under_the_default_threshold_once_warm() -> None:
    rates = TemplateRates(window=60, warmup=2)
    steady(rates, 3)
    routine = rates.observe(3 * 60 + 1, "E3", is_new=True, error=False, informational=True)
    failure = rates.observe(3 * 60 + 2, "E4", is_new=True, error=False)
    assert [(s.kind, s.score) for s in routine + failure] == [("new_template", ROUTINE_NEW_TEMPLATE),
                                                               ("new_template", 1.0)]
    assert ROUTINE_NEW_TEMPLATE < 0.7  # the worker's default log_anomaly_threshold


def test_a_source_that_starts_inside_a_window_raises_no_rate_change() -> None:
    """The first window holds 10 s of a 5-lines-a-second template: its mean starts with the next, full window."""
    rates = TemplateRates(window=60, warmup=5)
    signals = [s for i in range(50 * 5, 12 * 60 * 5) for s in rates.observe(i / 5, "E1", is_new=(i == 250), error=False)]
    assert rates.warm and [s for s in signals if s.kind == "rate_change"] == []


def test_a_steady_source_raises_nothing_after_warm_up() -> None:
    rates = TemplateRates(window=60, warmup=3)
    assert [s for s in steady(rates, 20) if s.kind != "new_template"] == []


def test_an_error_burst_is_flagged_once_per_window() -> None:
    rates = TemplateRates(window=60, warmup=3)
    steady(rates, 10)
    signals = []
    for i in range(40):
        signals += rates.observe(10 * 60 + i, "E3", is_new=False, error=True)
    bursts = [s for s in signals if s.kind == "error_burst"]
    assert len(bursts) == 1 and 0.5 <= bursts[0].score <= 1.0
    assert bursts[0].detail.startswith("7 error lines this window, usually 0.9")


def test_rate_changes_are_scored_when_the_window_closes() -> None:
    rates = TemplateRates(window=60, warmup=3)
    steady(rates, 10)
    for i in range(100):  # E1 jumps from 10 to 100 a window, E2 stops
        rates.observe(10 * 60 + i * 0.5, "E1", is_new=False, error=False)
    signals = rates.observe(11 * 60 + 1, "E1", is_new=False, error=False)
    changes = {s.template_id: s.score for s in signals if s.kind == "rate_change"}
    assert set(changes) == {"E1", "E2"}
    assert changes["E1"] > 0.95 and 0.0 < changes["E2"] <= 1.0


def test_a_long_silence_does_not_loop_over_every_empty_window() -> None:
    rates = TemplateRates(window=1, warmup=1)
    rates.observe(0, "E1", is_new=True, error=False)
    rates.observe(10**9, "E1", is_new=False, error=False)
    assert rates.closed <= 60


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigError):
        TemplateRates(window=0)
