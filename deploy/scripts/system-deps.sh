#!/usr/bin/env bash
# Installs the system packages KubeStack-AI needs for local runs and tests, on Debian/Ubuntu as root.
# Elsewhere it only reports what is missing. Each entry: a command that proves the package is there.
set -euo pipefail

declare -A NEEDED=(
  [java]=openjdk-17-jre-headless   # the local Kafka broker (Kafka 4 needs Java 17+)
  [mvn]=maven                      # resolves the broker jars from Maven Central
)

missing=()
for cmd in "${!NEEDED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEEDED[$cmd]}")
done
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
