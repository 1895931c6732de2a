#!/usr/bin/env bash
# Installs what the test suite needs on a fresh machine; does nothing that is
# already done. Used by `make test` and so by CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

gobin=$(go env GOPATH)/bin
if ! "$gobin/staticcheck" -version 2>/dev/null | grep -q "(0.8.2)"; then
  echo "installing staticcheck" >&2
  go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi

# VictoriaLogs, a real log database speaking the Elasticsearch _bulk
# protocol: the Elasticsearch destination's test peer (testpeers.StartVictoriaLogs).
vlbin=deploy/testpeers/.bin/victoria-logs
if ! go version -m "$vlbin" 2>/dev/null | grep -q "VictoriaLogs[[:space:]]*v1.52.1"; then
  echo "installing VictoriaLogs" >&2
  GOBIN="$PWD/deploy/testpeers/.bin" go install github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@v1.52.1
fi

# The AWS CLI is a real Firehose client the end-to-end tests drive.
if ! command -v aws >/dev/null 2>&1; then
  echo "installing the AWS CLI" >&2
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq awscli >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq awscli >/dev/null
  fi
fi
aws --version >&2

# Debian's Chromium: the real headless browser the status page is tested in
# (cmd/sluice/status_test.go, driven by playwright-core; never a browser
# build of Playwright's own).
if [ ! -x /usr/bin/chromium ]; then
  echo "installing Chromium" >&2
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi

# promtool checks and unit-tests the Prometheus alerting rules and parses
# the dashboard's queries (deploy/checks). Debian's, taken out of its
# package (the package itself would install a Prometheus service).
if ! "$gobin/promtool" --version 2>/dev/null | grep -q "version 2.42.0"; then
  echo "installing promtool" >&2
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get update -qq && apt-get download -qq prometheus 2>/dev/null && dpkg -x prometheus_*.deb x)
  install -m 0755 "$tmp/x/usr/bin/promtool" "$gobin/promtool"
  rm -rf "$tmp"
fi

# strace shows that the systemd unit's system call filter holds
# (deploy/checks); systemd-analyze verifies the unit.
if ! command -v strace >/dev/null 2>&1 || ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "installing strace and systemd" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace systemd >/dev/null
fi

# wabt's wat2wasm builds the hand-written WebAssembly test guests.
if ! command -v wat2wasm >/dev/null 2>&1; then
  echo "installing wabt" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wabt >/dev/null
fi

# Node.js peers: s3rver (an independent S3 server), kinesalite (an
# independent Kinesis Data Streams server), DuckDB (an independent Parquet
# reader), the AWS SDK for JavaScript v3's Firehose client (a second
# SigV4 signer) and playwright-core (the driver of the headless Chromium),
# pinned in deploy/testpeers/package.json.
if ! command -v node >/dev/null 2>&1; then
  echo "installing Node.js" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -d deploy/testpeers/node_modules/s3rver ] || [ ! -d deploy/testpeers/node_modules/@duckdb/node-api ] || [ ! -d deploy/testpeers/node_modules/kinesalite ] || [ ! -d deploy/testpeers/node_modules/@aws-sdk/client-firehose ] || [ ! -d deploy/testpeers/node_modules/playwright-core ]; then
  echo "installing the Node.js test peers" >&2
  (cd deploy/testpeers && npm install --no-audit --no-fund --silent)
fi
node deploy/testpeers/duckdb-query.mjs "SELECT 'duckdb ok' AS check" >&2
