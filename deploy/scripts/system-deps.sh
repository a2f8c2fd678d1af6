#!/usr/bin/env bash
# Installs the system packages KubeStack-AI needs for local runs and tests, on Debian/Ubuntu as root.
# Elsewhere it only reports what is missing. Each line: a file or command proving the package, the package.
set -euo pipefail

NEEDED="
java                              openjdk-17-jre-headless  # the local Kafka broker (Kafka 4 needs Java 17+)
mvn                               maven                    # resolves the broker jars from Maven Central
redis-server                      redis-server             # tests: the Redis plugin's real server
redis-cli                         redis-tools
/usr/sbin/mariadbd                mariadb-server           # tests: the MySQL/MariaDB plugin's real server
mariadb                           mariadb-client
/usr/lib/postgresql/*/bin/initdb  postgresql               # tests: the PostgreSQL plugin's real server
psql                              postgresql-client
/usr/sbin/sshd                    openssh-server           # tests: agentless collection over SSH
ssh-keygen                        openssh-client
prometheus                        prometheus               # tests: Prometheus as a source
prometheus-node-exporter          prometheus-node-exporter # tests: a real exporter for Prometheus to scrape
prometheus-alertmanager           prometheus-alertmanager  # tests: real Alertmanager webhooks to the agent
g++                               g++                      # builds llama.cpp (llama-cpp-python) for the LLM tests
make                              make
cmake                             cmake
chromium                          chromium                 # tests: the web console in headless Chromium (Playwright)
rabbitmq-server                   rabbitmq-server          # tests: the RabbitMQ plugin's real server
/usr/share/zookeeper/bin/zkServer.sh zookeeper             # tests: the ZooKeeper plugin's real server
etcd                              etcd-server              # tests: the etcd plugin's real server
etcdctl                           etcd-client
memcached                         memcached                # tests: the Memcached plugin's real server
/usr/sbin/nginx                   nginx                    # tests: the Nginx plugin's real server
/usr/sbin/haproxy                 haproxy                  # tests: the HAProxy plugin's real server
/usr/sbin/pgbouncer               pgbouncer                # tests: the PgBouncer plugin's real server
redis-sentinel                    redis-sentinel           # tests: the Redis Sentinel plugin's real server
systemd-analyze                   systemd                  # tests: the bare-metal units (verify, security, sysusers)
"

missing=()
while read -r probe package _; do
  [ -n "$probe" ] || continue
  if [[ "$probe" == /* ]]; then
    compgen -G "$probe" >/dev/null && continue
  else
    command -v "$probe" >/dev/null 2>&1 && continue
  fi
  missing+=("$package")
done <<< "$NEEDED"
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "missing system packages: ${missing[*]} (install them, or run make as root on Debian)" >&2
  exit 1
fi
