#!/usr/bin/env bash
# Installs the Debian packages the test suite drives for real (none are skipped when absent).
set -euo pipefail
need=()
# (filled in as tests need them: kcat for librdkafka's mock Kafka cluster, chromium for the web UI)
for pkg in "$@"; do :; done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "missing system packages: ${need[*]} (run as root or install them)" >&2; exit 1; fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
