"""Parameter generators for the synthetic labelled log corpus: ``{name}`` in a template becomes ``PARAMS[name](rng)``.

Words are drawn from small realistic vocabularies, so a word parameter (a user, a table, a state) repeats
like it does in real logs, and numbers span several magnitudes.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable

USERS = ["root", "admin", "mysql", "postgres", "deploy", "ubuntu", "alice", "bob", "guest", "oracle", "git",
         "test", "jenkins", "backup", "monitor", "svc_orders", "www-data", "nagios"]
HOSTS = ["db-1", "db-2", "cache-03", "web7", "kafka-0.kafka-headless", "node12.prod.internal", "alpha",
         "bravo", "worker-5", "ip-10-0-3-17", "localhost", "reports.example.com"]
TABLES = ["orders", "users", "payments", "sessions", "audit_log", "inventory", "order_items", "carts"]
DATABASES = ["shop", "billing", "analytics", "auth", "mysql", "postgres"]
TOPICS = ["orders", "payments.v1", "audit-events", "clicks", "__consumer_offsets", "metrics-raw", "logs"]
GROUPS = ["billing-service", "analytics", "orders-consumer", "etl", "kubestack-worker"]
STATES = ["RUNNING", "STOPPED", "FAILED", "PENDING", "SUCCEEDED", "KILLED", "STARTING"]
CLASSES = ["com.acme.orders.OrderService", "com.acme.orders.OrderController", "com.acme.pay.PaymentClient",
           "com.acme.common.RetryTemplate", "org.springframework.web.servlet.DispatcherServlet",
           "org.hibernate.engine.jdbc.spi.SqlExceptionHelper", "com.zaxxer.hikari.pool.HikariPool",
           "org.apache.catalina.core.StandardWrapperValve", "java.base/java.lang.Thread"]
METHODS = ["process", "handle", "doFilter", "invoke", "execute", "run", "getConnection", "save", "lambda$0"]
EXCEPTIONS = ["java.lang.NullPointerException", "java.lang.IllegalStateException", "java.net.SocketTimeoutException",
              "java.sql.SQLTransientConnectionException", "org.springframework.dao.DataIntegrityViolationException",
              "java.io.IOException", "java.util.concurrent.TimeoutException"]
UNITS = ["nginx.service", "redis-server.service", "mariadb.service", "postgresql@15-main.service", "cron.service",
         "ssh.service", "kafka.service", "apt-daily.service", "logrotate.service", "user@1000.service",
         "systemd-tmpfiles-clean.service", "node-exporter.service"]
TARGETS = ["multi-user.target", "network-online.target", "timers.target", "sockets.target", "basic.target"]
WORDS = ["timeout", "upstream", "retry", "backend", "primary", "replica", "queue", "client", "server", "disk",
         "stale", "cache", "index", "shard", "batch", "worker", "token", "lease", "session", "quota"]
METHODS_HTTP = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"]
URL_PATHS = ["/", "/api/v1/orders", "/api/v1/orders/{n}", "/health", "/static/app.{h}.js", "/login",
             "/api/v2/users/{n}/cart", "/metrics", "/favicon.ico", "/search?q={w}&page={n}"]
AGENTS = ["curl/8.5.0", "Mozilla/5.0", "kube-probe/1.29", "python-requests/2.31.0", "Go-http-client/1.1"]
SIGNALS = ["SIGTERM", "SIGINT", "SIGHUP", "SIGKILL"]
LEVELS_JAVA = ["INFO", "WARN", "DEBUG"]


def _int(rng: random.Random) -> str:
    return str(rng.choice([rng.randint(0, 9), rng.randint(10, 999), rng.randint(1000, 10**6), rng.randint(1, 10**9)]))


def _ip(rng: random.Random) -> str:
    return rng.choice([f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                       f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}", "127.0.0.1",
                       f"172.{rng.randint(16, 31)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"])


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _uuid(rng: random.Random) -> str:
    return "-".join(_hex(rng, n) for n in (8, 4, 4, 4, 12))


def _path(rng: random.Random) -> str:
    base = rng.choice(["/var/lib/mysql", "/var/lib/postgresql/15/main", "/data/kafka", "/tmp", "/srv/app/data",
                       "/var/log/nginx", "/mnt/disk1/hdfs/data/current"])
    leaf = rng.choice([f"ib_logfile{rng.randint(0, 2)}", f"{rng.choice(TABLES)}.ibd", f"{rng.choice(WORDS)}.log",
                       f"segment-{rng.randint(0, 99999):08d}", "pg_wal", f"part-{rng.randint(0, 999):05d}"])
    return f"{base}/{leaf}"


def _url_path(rng: random.Random) -> str:
    return rng.choice(URL_PATHS).format(n=rng.randint(1, 99999), h=_hex(rng, 8), w=rng.choice(WORDS))


def _duration(rng: random.Random) -> str:
    return rng.choice([f"{rng.randint(1, 999)}ms", f"{rng.uniform(0, 60):.3f}s", f"{rng.randint(1, 59)}s"])


def _size(rng: random.Random) -> str:
    return rng.choice([f"{rng.randint(1, 1023)}K", f"{rng.randint(1, 4096)}M", f"{rng.uniform(0, 64):.1f}G"])


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5)))


def _frame(rng: random.Random) -> str:
    cls = rng.choice(CLASSES)
    return f"{cls}.{rng.choice(METHODS)}({cls.rsplit('.', 1)[-1]}.java:{rng.randint(20, 900)})"


PARAMS: dict[str, Callable[[random.Random], str]] = {
    "int": _int,
    "small": lambda r: str(r.randint(0, 64)),
    "pid": lambda r: str(r.randint(100, 65000)),
    "port": lambda r: str(r.randint(1024, 65535)),
    "ip": _ip,
    "ipport": lambda r: f"{_ip(r)}:{r.randint(1024, 65535)}",
    "host": lambda r: r.choice(HOSTS),
    "user": lambda r: r.choice(USERS),
    "table": lambda r: r.choice(TABLES),
    "db": lambda r: r.choice(DATABASES),
    "topic": lambda r: r.choice(TOPICS),
    "group": lambda r: r.choice(GROUPS),
    "state": lambda r: r.choice(STATES),
    "class": lambda r: r.choice(CLASSES),
    "method": lambda r: r.choice(METHODS),
    "exception": lambda r: r.choice(EXCEPTIONS),
    "frame": _frame,
    "unit": lambda r: r.choice(UNITS),
    "target": lambda r: r.choice(TARGETS),
    "word": lambda r: r.choice(WORDS),
    "text": _text,
    "signal": lambda r: r.choice(SIGNALS),
    "hex8": lambda r: _hex(r, 8),
    "hex16": lambda r: _hex(r, 16),
    "hex40": lambda r: _hex(r, 40),
    "uuid": _uuid,
    "path": _path,
    "urlpath": _url_path,
    "http": lambda r: r.choice(METHODS_HTTP),
    "status": lambda r: r.choice(["200", "200", "201", "204", "301", "304", "400", "401", "404", "500", "502"]),
    "agent": lambda r: r.choice(AGENTS),
    "dur": _duration,
    "size": _size,
    "float": lambda r: f"{r.uniform(0, 100):.2f}",
    "pct": lambda r: f"{r.uniform(0, 100):.1f}%",
    "blk": lambda r: f"blk_{r.choice(['', '-'])}{r.randint(10**17, 10**19)}",
    "app": lambda r: f"application_{r.randint(1400000000000, 1700000000000)}_{r.randint(1, 9999):04d}",
    "container": lambda r: f"container_{r.randint(1400000000000, 1700000000000)}_{r.randint(1, 99):04d}_01_{r.randint(1, 999999):06d}",
    "stage": lambda r: f"{r.randint(0, 300)}.{r.randint(0, 3)}",
    "tid": lambda r: f"{r.randint(0, 2000)}.0",
    "lsn": lambda r: f"{_hex(r, 1).upper()}/{_hex(r, 8).upper()}",
    "xid": lambda r: str(r.randint(700, 10**7)),
    "word_upper": lambda r: r.choice(["LEADER", "FOLLOWER", "OBSERVER", "CANDIDATE"]),
    "letters": lambda r: "".join(r.choice(string.ascii_lowercase) for _ in range(r.randint(4, 9))),
}
