# Shared set-up for scripts/workshop and scripts/test (sourced, not run).
# Each step does nothing when its work is already done, so both commands are safe to repeat.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
# Debian packages: the engine; the registry server binary and a C toolchain (to build
# registry:2 and hello-world when Docker Hub is out of reach); Apache's htpasswd.
# busybox-static makes reglab-tools (file operations through the engine); python3-venv lets a
# learner who is not root make their own environment; curl and openssl for the `$` lines.
APT_PACKAGES=(docker.io docker-registry gcc libc6-dev apache2-utils busybox-static python3-venv curl openssl skopeo debootstrap graphviz)
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

ENGINE_CONTROL=(python3 "$ROOT/scripts/engine_control.py")

ensure_engine() {
  if engine_answers; then return 0; fi
  [ -n "${DOCKER_HOST:-}" ] && die "no Docker engine answers at DOCKER_HOST=$DOCKER_HOST - fix: start it, or unset DOCKER_HOST"
  ensure_packages "${APT_PACKAGES[@]}"
  if engine_answers; then return 0; fi
  [ "$(id -u)" = 0 ] || die "no Docker engine answers - fix: sudo systemctl start docker (or start Docker Desktop)"
  if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    rm -f /var/run/docker.pid   # stale: left by an engine that did not stop cleanly
  fi
  say "starting dockerd (recorded in /run/reglab/engines/default.json, so only it is ever restarted)"
  "${ENGINE_CONTROL[@]}" start default -- dockerd >&2 || die "dockerd did not start - fix: read /var/log/reglab-dockerd-default.log"
}

engine_version() {  # "20.10.24+dfsg1 (API 1.41)" of the engine the clients here use
  docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null || echo "unknown"
}

# --- the second engine the suite runs against: Debian 13's docker.io (Docker 26.1) ------------
# Taken from Debian's package archive as packages (the same mirror apt uses here), unpacked into
# a folder of its own and run with its own data root and socket: it changes nothing of the
# machine's engine, its settings or its data.
SECOND_ENGINE=debian13
SECOND_DIR=/var/cache/reglab/engines/$SECOND_ENGINE
SECOND_SOCKET=/run/reglab/docker-$SECOND_ENGINE.sock

debian_mirror() {  # the mirror apt uses here (deb822 sources, else the classic list)
  local file
  for file in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    [ -f "$file" ] || continue
    awk '/^URIs:/ {print $2; exit} $1 == "deb" {print $2; exit}' "$file"
    return 0
  done
}

fetch_second_engine() {
  [ -x "$SECOND_DIR/root/usr/sbin/dockerd" ] && return 0
  local mirror apt_dir
  mirror=$(debian_mirror)
  [ -n "$mirror" ] || die "no Debian mirror found in /etc/apt - fix: run on Debian, or set REGLAB_ENGINES=default"
  say "fetching Debian 13's docker.io and containerd (packages, into $SECOND_DIR)"
  apt_dir="$SECOND_DIR/apt"
  rm -rf "$SECOND_DIR" && mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$SECOND_DIR/debs"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" > "$apt_dir/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
              -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache::Archives=$apt_dir/archives"
              -o Dir::State::Status=/dev/null -o APT::Sandbox::User=root)
  apt-get "${opts[@]}" update -qq
  (cd "$SECOND_DIR/debs" && apt-get "${opts[@]}" download docker.io containerd >/dev/null)
  local deb
  for deb in "$SECOND_DIR"/debs/*.deb; do dpkg -x "$deb" "$SECOND_DIR/root.new"; done
  mv "$SECOND_DIR/root.new" "$SECOND_DIR/root"
}

start_second_engine() {  # the default engine must be ours: it is stopped while the second runs
  fetch_second_engine
  mkdir -p /run/reglab
  "${ENGINE_CONTROL[@]}" stop default >&2
  "${ENGINE_CONTROL[@]}" start "$SECOND_ENGINE" --socket "$SECOND_SOCKET" \
    --path "$SECOND_DIR/root/usr/sbin" --path "$SECOND_DIR/root/usr/bin" -- \
    "$SECOND_DIR/root/usr/sbin/dockerd" -H "unix://$SECOND_SOCKET" \
    --data-root "/var/lib/reglab/docker-$SECOND_ENGINE" --exec-root "/run/reglab/docker-$SECOND_ENGINE" \
    --pidfile "/run/reglab/docker-$SECOND_ENGINE.pid" >&2
}

stop_second_engine() {  # and bring the default engine back, with its own command line
  if "${ENGINE_CONTROL[@]}" owned "$SECOND_ENGINE" 2>/dev/null; then
    # A second engine that will not stop has its own socket and data root: the default
    # engine is started again all the same.
    "${ENGINE_CONTROL[@]}" stop "$SECOND_ENGINE" >&2 || say "the second engine did not stop"
  fi
  "${ENGINE_CONTROL[@]}" resume default >&2  # does nothing when it runs
}

# Set from the moment the default engine may be stopped until it runs again. A script that
# calls swap_to_second_engine calls restore_engines in its EXIT trap, so that every way out
# (a second engine that fails to start, a failing test pass, Ctrl-C) starts the default again.
ENGINES_SWAPPED=
swap_to_second_engine() {
  ENGINES_SWAPPED=1  # before anything is stopped: a failure halfway is restored too
  start_second_engine
}

restore_engines() {  # nothing unless swap_to_second_engine ran
  [ -n "$ENGINES_SWAPPED" ] || return 0
  stop_second_engine || return 1
  ENGINES_SWAPPED=
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

ensure_images() {  # ensure_images [--stage STAGE]: the images that stage needs; default every one
  local which=("${@:---all}")
  say "making the workshop's images available (${which[*]})"
  "$VENV/bin/reglab" images "${which[@]}"
}
