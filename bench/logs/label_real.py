"""Label the real logs in tests/data/logs/real by hand-written rules: ``NAME.labels.csv`` (line,template_id).

    .venv/bin/python -m bench.logs.label_real tests/data/logs/real

The logs were captured on a development machine: redis-server, mariadbd and postgres started, poked
(saves, failed logins, bad queries) and stopped a few times, plus the head of /var/log/dpkg.log. Each rule is
``(template_id, regex)`` searched in the line, first match wins; a line no rule matches must have no
variable part, and is its own template keyed by its message (the text after the format's header).
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

from kubestack.models.logformat import LogFormat

RULES: dict[str, list[tuple[str, str]]] = {
    "redis": [
        ("accepted", r"- Accepted connection to "),
        ("client-closed", r"- Client closed connection id=\d+ "),
        ("fork-cow", r"Fork CoW for RDB: current \d+ MB, peak \d+ MB, average \d+ MB$"),
        ("bgsave-started", r"Background saving started by pid \d+$"),
        ("version", r"Redis version=\S+ bits=\d+, commit=\d+, modified=\d+, pid=\d+, just started"),
        ("banner", r"# oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo$"),
        ("overcommit", r"# WARNING Memory overcommit must be enabled! "),
        ("running-mode", r"Running mode=standalone, port=\d+\.$"),
    ],
    "mariadb": [
        ("glued-shutdown", r"Shutdown complete\d{4}-\d\d-\d\d [\d:]+ \d+ \[Warning\] Could not increase"),
        ("zlib", r"\[Note\] InnoDB: Compressed tables use zlib [\d.]+$"),
        ("crc32", r"\[Note\] InnoDB: Using crc32 \+ pclmulqdq instructions$"),
        ("tmp-removed", r"\[Note\] InnoDB: Removed temporary tablespace data file: \"\./ibtmp\d\"$"),
        ("access-denied", r"\[Warning\] Access denied for user '[^']*'@'[^']*' \(using password: YES\)$"),
        ("starting", r"\[Note\] Starting MariaDB \S+ source revision [0-9a-f]+ server_uid \S+ as process \d+$"),
        ("lsn", r"\[Note\] InnoDB: log sequence number \d+; transaction id \d+$"),
        ("shutdown-lsn", r"\[Note\] Shutdown completed; log sequence number \d+; transaction id \d+$"),
        ("end-of-log", r"\[Note\] InnoDB: End of log at LSN=\d+$"),
        ("pool-load", r"\[Note\] InnoDB: Buffer pool\(s\) load completed at \d+ [\d:]+$"),
        ("pool-dump", r"\[Note\] InnoDB: Buffer pool\(s\) dump completed at \d+ [\d:]+$"),
        ("pool-size", r"\[Note\] InnoDB: innodb_buffer_pool_size_max=\d+m, innodb_buffer_pool_size=\d+m$"),
        ("tmp-setting", r"\[Note\] InnoDB: Setting file '\./ibtmp\d' size to [\d.]+MiB\. Physically writing"),
        ("tmp-size", r"\[Note\] InnoDB: File '\./ibtmp\d' size is now [\d.]+MiB\.$"),
        ("rollback", r"\[Note\] InnoDB: \d+ rollback segments are active\.$"),
        ("pause", r"\[Note\] Using PAUSE multiplier \d+$"),
        ("version-banner", r"^Version: '\S+'  socket: '\S+'  port: \d+  Debian \d+$"),
        ("max-open-files", r"\[Warning\] Could not increase number of max_open_files to more than \d+ \(request: \d+\)$"),
        ("log-buffers", r"\[Note\] InnoDB: File system buffers for log disabled \(block size=\d+ bytes\)$"),
        ("tx-pools", r"\[Note\] InnoDB: Number of transaction pools: \d+$"),
    ],
    "postgres": [
        ("auth-failed", r"FATAL:  password authentication failed for user \"[^\"]+\"$"),
        ("role-missing", r"DETAIL:  Role \"[^\"]+\" does not exist\.$"),
        ("password-mismatch", r"DETAIL:  Password does not match for user \"[^\"]+\"\.$"),
        ("hba-line", r"^\tConnection matched pg_hba\.conf line \d+: "),
        ("duration", r"LOG:  duration: [\d.]+ ms  statement: "),
        ("statement", r"STATEMENT:  "),
        ("relation-missing", r"ERROR:  relation \"[^\"]+\" does not exist at character \d+$"),
        ("duplicate-key", r"ERROR:  duplicate key value violates unique constraint \"[^\"]+\"$"),
        ("key-exists", r"DETAIL:  Key \([^)]*\)=\([^)]*\) already exists\.$"),
        ("db-missing", r"FATAL:  database \"[^\"]+\" does not exist$"),
        ("checkpoint-done", r"LOG:  checkpoint complete: wrote \d+ buffers "),
        ("starting", r"LOG:  starting PostgreSQL "),
        ("listen-ip", r"LOG:  listening on IPv4 address \"[\d.]+\", port \d+$"),
        ("listen-unix", r"LOG:  listening on Unix socket \"\S+\"$"),
        ("was-shut-down", r"LOG:  database system was shut down at [\d-]+ [\d:]+ UTC$"),
        ("bgworker-exit", r"LOG:  background worker \"logical replication launcher\" \(PID \d+\) exited with exit code \d+$"),
    ],
    "dpkg": [
        ("status-unpacked", r" status unpacked \S+ \S+$"),
        ("status-half-installed", r" status half-installed \S+ \S+$"),
        ("status-half-configured", r" status half-configured \S+ \S+$"),
        ("status-installed", r" status installed \S+ \S+$"),
        ("status-triggers-pending", r" status triggers-pending \S+ \S+$"),
        ("install", r" install \S+ <none> \S+$"),
        ("upgrade", r" upgrade \S+ \S+ \S+$"),
        ("configure", r" configure \S+ \S+ <none>$"),
        ("trigproc", r" trigproc \S+ \S+ <none>$"),
    ],
}


def label(log: Path) -> list[str]:
    rules = [(name, re.compile(rule)) for name, rule in RULES[log.stem]]
    fmt_file = log.with_suffix(".format")
    fmt = LogFormat.parse(fmt_file.read_text().strip()) if fmt_file.exists() else None
    labels = []
    for line in log.read_text().splitlines():
        name = next((name for name, rule in rules if rule.search(line)), None)
        if name is None:
            message = (fmt.content(line) if fmt else None) or line
            if re.search(r"\d", message):
                raise SystemExit(f"{log.name}: no rule for a line with a number in it: {line!r}")
            name = "text:" + message
        labels.append(name)
    return labels


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data/logs/real")
    for log in sorted(folder.glob("*.log")):
        labels = label(log)
        with open(log.with_suffix(".labels.csv"), "w", newline="") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(("line", "template_id"))
            writer.writerows(enumerate(labels, 1))
        print(f"{log.name}: {len(labels)} lines, {len(set(labels))} templates")


if __name__ == "__main__":
    main()
