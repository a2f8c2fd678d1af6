"""The synthetic labelled log corpus: realistic lines of ten middleware sources, each labelled with its true template.

``generate(source, lines, seed)`` returns the log lines (header and message, as the program writes them) and
the true template id of each (``redis:E3``). Template frequencies follow a Zipf law in a seeded random order,
as in real logs where a few messages dominate. ``FORMATS`` holds the Loghub-style format of each source; a
line without a header (a Java stack frame, an nginx access line in the error log) does not fit it, as in
real files.

Split: ``DEV`` sources tune the miner, ``HOLDOUT`` sources (never looked at while tuning) report.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from bench.logs.params import PARAMS
from bench.logs.templates import TEMPLATES

DEV = ("redis", "mariadb", "kafka", "sshd", "javaapp", "dfs")
HOLDOUT = ("postgres", "nginx", "systemd", "spark")

FORMATS = {
    "redis": "<Pid>:<Role> <Day> <Month> <Year> <Time> <Level> <Content>",
    "mariadb": r"<Date> <Time> <Thread> \[<Level>\] <Content>",
    "postgres": r"<Date> <Time> <Zone> \[<Pid>\] <Level>:  <Content>",
    "kafka": r"\[<Date> <Time>\] <Level> <Content>",
    "nginx": r"<Date> <Time> \[<Level>\] <Pid>#<Tid>: <Content>",
    "sshd": r"<Month> <Day> <Time> <Host> <Component>\[<Pid>\]: <Content>",
    "systemd": r"<Month> <Day> <Time> <Host> <Component>\[<Pid>\]: <Content>",
    "javaapp": r"<Timestamp> <Level> <Pid> --- \[<Thread>\] <Logger> : <Content>",
    "dfs": "<Date> <Time> <Pid> <Level> <Content>",
    "spark": "<Date> <Time> <Level> <Component>: <Content>",
}

LOGGERS = ("c.a.o.OrderService", "o.s.b.w.embedded.tomcat.TomcatWebServer", "com.zaxxer.hikari.HikariDataSource",
           "c.a.orders.OrdersApplication", "c.a.p.PaymentClient", "o.a.c.c.C.[.[.[/].[dispatcherServlet]")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _clock(rng: random.Random) -> str:
    return f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"


def _redis(rng: random.Random, level: str) -> str:
    return f"{rng.randint(1000, 9999)}:M {rng.randint(10, 28)} Jan 2024 {_clock(rng)}.{rng.randint(0, 999):03d} {level} "


def _syslog(component: Callable[[str], str]) -> Callable[[random.Random, str], str]:
    def header(rng: random.Random, message: str) -> str:
        return f"Jan {rng.randint(10, 28)} {_clock(rng)} {rng.choice(['db-1', 'web7', 'alpha'])} " \
               f"{component(message)}[{rng.randint(100, 65000)}]: "
    return header


def _systemd_component(message: str) -> str:
    return "systemd-logind" if "session" in message and "Session" not in message else "systemd"


HEADERS: dict[str, Callable[[random.Random, str], str | None]] = {
    "redis": lambda rng, level: _redis(rng, level),
    "mariadb": lambda rng, level: f"2024-01-{rng.randint(10, 28)} {_clock(rng)} {rng.randint(0, 900)} [{level}] ",
    "postgres": lambda rng, level: f"2024-01-{rng.randint(10, 28)} {_clock(rng)}.{rng.randint(0, 999):03d} UTC "
                                   f"[{rng.randint(100, 65000)}] {level}:  ",
    "kafka": lambda rng, level: f"[2024-01-{rng.randint(10, 28)} {_clock(rng)},{rng.randint(0, 999):03d}] {level} ",
    "nginx": lambda rng, level: None if level == "access" else
        f"2024/01/{rng.randint(10, 28)} {_clock(rng)} [{level}] {rng.randint(100, 9000)}#{rng.randint(0, 9)}: ",
    "javaapp": lambda rng, level, logger="": None if level == "STACK" else
        f"2024-01-{rng.randint(10, 28)}T{_clock(rng)}.{rng.randint(0, 999):03d}Z {level:>5} {rng.randint(100, 9000)} --- "
        f"[{rng.choice(['main', 'nio-8080-exec-' + str(rng.randint(1, 10)), 'scheduling-1'])}] {logger} : ",
    "dfs": lambda rng, level: f"0801{rng.randint(10, 28)} {rng.randint(0, 235959):06d} {rng.randint(10, 9999)} {level} ",
    "spark": lambda rng, level: f"24/01/{rng.randint(10, 28)} {_clock(rng)} {level} ",
}


def fill(template: str, rng: random.Random) -> str:
    return _PLACEHOLDER.sub(lambda m: PARAMS[m.group(1)](rng), template)


def generate(source: str, lines: int, seed: int) -> tuple[list[str], list[str]]:
    """``lines`` log lines of ``source`` and the true template id of each."""
    rng = random.Random(f"{source}:{seed}")
    templates = TEMPLATES[source]
    order = list(range(len(templates)))
    rng.shuffle(order)
    weights = [0.0] * len(templates)
    for rank, index in enumerate(order):
        weights[index] = 1.0 / (rank + 1) ** 1.1
    out, truth = [], []
    while len(out) < lines:
        index = rng.choices(range(len(templates)), weights)[0]
        level, template = templates[index]
        message = fill(template, rng)
        if source == "javaapp":
            header = HEADERS[source](rng, level, LOGGERS[index % len(LOGGERS)])
        elif source in ("sshd", "systemd"):
            header = _syslog(lambda m: "sshd" if source == "sshd" else _systemd_component(m))(rng, message)
        else:
            header = HEADERS[source](rng, level)
        out.append(message if header is None else header + message)
        truth.append(f"{source}:E{index + 1}")
        if source == "javaapp" and "{exception}: {text}" == template:
            _stack(rng, out, truth, lines)
    return out, truth


def _stack(rng: random.Random, out: list[str], truth: list[str], lines: int) -> None:
    """A stack trace follows an exception line: frames, sometimes a cause, then '... n more'."""
    templates = TEMPLATES["javaapp"]
    frame = next(i for i, (_, t) in enumerate(templates) if t == "\tat {frame}")
    cause = next(i for i, (_, t) in enumerate(templates) if t.startswith("Caused by"))
    more = next(i for i, (_, t) in enumerate(templates) if t.startswith("\t..."))
    for index in [frame] * rng.randint(2, 8) + ([cause, frame, frame, more] if rng.random() < 0.5 else [more]):
        if len(out) >= lines:
            return
        out.append(fill(templates[index][1], rng))
        truth.append(f"javaapp:E{index + 1}")


def write(folder: str, sources: tuple[str, ...], lines: int, seed: int) -> None:
    """``SOURCE.log``, ``SOURCE.labels.csv`` (line,template_id) and ``SOURCE.format`` for each source."""
    from pathlib import Path

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for source in sources:
        log, truth = generate(source, lines, seed)
        (out / f"{source}.log").write_text("\n".join(log) + "\n")
        (out / f"{source}.format").write_text(FORMATS[source] + "\n")
        (out / f"{source}.labels.csv").write_text(
            "line,template_id\n" + "".join(f"{n},{label}\n" for n, label in enumerate(truth, 1)))


if __name__ == "__main__":
    import sys

    # python -m bench.logs.corpus tests/data/logs/synthetic 300 3 : the labelled sample the tests commit
    write(sys.argv[1], DEV + HOLDOUT, int(sys.argv[2]), int(sys.argv[3]))
