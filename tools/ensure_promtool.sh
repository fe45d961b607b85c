#!/usr/bin/env bash
# Make `promtool` and the `prometheus` server available for tests/deploy.
#
# Both come from Debian's `prometheus` package (2.42 on bookworm). Installing a
# Debian service package normally starts its daemon (:9090 here); a test
# machine must not be left with one running, so a temporary policy-rc.d
# forbids starting services during the install, and any daemon the package
# started anyway (for instance through an existing init) is stopped by its
# pid file afterwards. Idempotent: does nothing when both binaries are there.
set -euo pipefail

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "ensure_promtool: promtool is missing and installing it needs root (apt-get install prometheus)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
added_policy=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# ensure_promtool.sh: no service starts during the install\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    added_policy=1
fi
cleanup() {
    if [ -n "$added_policy" ]; then
        rm -f "$policy"
    fi
}
trap cleanup EXIT

apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus >/dev/null

# The package ships /etc/init.d/prometheus (pid file /run/prometheus/prometheus.pid)
# and a systemd unit. Neither should be running after a test-tools install.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl stop prometheus.service 2>/dev/null || true
    systemctl disable prometheus.service 2>/dev/null || true
fi
pidfile=/run/prometheus/prometheus.pid
if [ -s "$pidfile" ]; then
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    rm -f "$pidfile"
fi

command -v promtool >/dev/null 2>&1 || { echo "ensure_promtool: promtool still missing after install" >&2; exit 1; }
command -v prometheus >/dev/null 2>&1 || { echo "ensure_promtool: prometheus still missing after install" >&2; exit 1; }
promtool --version | head -1
