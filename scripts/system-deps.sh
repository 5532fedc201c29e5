#!/usr/bin/env bash
# Installs the Debian packages the test suite drives for real (none are skipped when absent).
# Only what is missing is installed; nothing happens when everything is there.
set -euo pipefail
need=()
# command → Debian package
#   kcat: librdkafka's mock Kafka cluster for the Kafka notification tests
#         (`kcat -C -b localhost:1 -X test.mock.num.brokers=3 -t _x -d mock -q`)
#   openssl: makes the throw-away certificate of the syslog-over-TLS test
for pair in kcat:kcat openssl:openssl; do
  cmd="${pair%%:*}"
  pkg="${pair#*:}"
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "missing system packages: ${need[*]} (run as root or install them)" >&2; exit 1; fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
