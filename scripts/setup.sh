# Shared set-up for scripts/workshop and scripts/test (sourced, not run).
# Each step does nothing when its work is already done, so both commands are safe to repeat.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
# Debian packages: the engine; the registry server binary and a C toolchain (to build
# registry:2 and hello-world when Docker Hub is out of reach); htpasswd to cross-check ours.
APT_PACKAGES=(docker.io docker-registry gcc libc6-dev apache2-utils)
# The test suite also drives JupyterLab in a real browser: Debian's Chromium (no download).
TEST_APT_PACKAGES=(chromium)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

missing_packages() {
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}

ensure_packages() {  # ensure_packages PKG...
  command -v dpkg-query >/dev/null || return 0   # not Debian/Ubuntu: the user installs them
  local missing
  missing=$(missing_packages "$@" | tr "\n" " ")
  [ -z "${missing// /}" ] && return 0
  if [ "$(id -u)" != 0 ]; then
    die "missing packages: $missing - fix: sudo apt-get install -y $missing"
  fi
  say "installing $missing"
  apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
}

ensure_engine() {
  if engine_answers; then return 0; fi
  [ -n "${DOCKER_HOST:-}" ] && die "no Docker engine answers at DOCKER_HOST=$DOCKER_HOST - fix: start it, or unset DOCKER_HOST"
  ensure_packages "${APT_PACKAGES[@]}"
  if engine_answers; then return 0; fi
  [ "$(id -u)" = 0 ] || die "no Docker engine answers - fix: sudo systemctl start docker (or start Docker Desktop)"
  say "starting dockerd (log: /var/log/reglab-dockerd.log)"
  if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    rm -f /var/run/docker.pid   # stale: left by an engine that did not stop cleanly
  fi
  setsid dockerd >/var/log/reglab-dockerd.log 2>&1 < /dev/null &
  local deadline=$((SECONDS + 60))
  until engine_answers; do
    [ $SECONDS -lt $deadline ] || die "dockerd did not answer within 60 s - fix: read /var/log/reglab-dockerd.log"
    sleep 0.2   # polling the engine's socket, not a fixed wait
  done
}

ensure_python_env() {
  local extras="$1"
  local stamp="$VENV/.reglab-installed-$extras"
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
      || die "Python 3.11 or newer is needed - fix: install it and run this again"
    say "creating the Python environment in .venv"
    python3 -m venv "$VENV"
  fi
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    say "installing reglab and its dependencies ($extras)"
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$VENV/bin/python" -m pip install -q -e "$ROOT[$extras]"
    touch "$stamp"
  fi
}

ensure_images() {
  say "making registry:2 and hello-world available"
  "$VENV/bin/reglab" images
}
