#!/usr/bin/env bash
# The whole test suite, with its set-up: the README's test command, and what
# .ci/run runs after formatting, vet and staticcheck.
#
# The NATS adapter's tests run a real nats-server (Debian package); it is
# installed here when missing. Go modules come through the module proxy, and
# the end-to-end suite builds the muster binary itself.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nats-server >/dev/null; then
  echo "installing nats-server (apt-get)..." >&2
  sudo=; [[ $(id -u) -ne 0 ]] && sudo=sudo
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq nats-server >/dev/null
fi

go test -race "$@" ./...
