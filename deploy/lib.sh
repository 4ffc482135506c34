# Helpers shared by deploy/run, deploy/bench and deploy/install. Sourced, not
# run: the caller sets `set -euo pipefail` and PROG (its name for messages).
# shellcheck shell=bash

die() { printf '%s: %s\n' "${PROG:-deploy}" "$*" >&2; exit 1; }
note() { printf '%s: %s\n' "${PROG:-deploy}" "$*" >&2; }

# True when every named Debian package is installed.
pkgs_installed() {
  local p
  for p in "$@"; do
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || return 1
  done
}

# Install the Debian packages that are missing, with one apt-get update first.
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    pkgs_installed "$p" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
  note "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# nginx with the two modules the site needs; Debian's nginx-light has both.
ensure_nginx() {
  if ! command -v nginx >/dev/null || ! nginx_has_modules; then
    ensure_packages nginx-light
  fi
  nginx_has_modules || die "this nginx lacks secure_link or auth_request (install nginx-light)"
}
nginx_has_modules() {
  local v
  v=$(nginx -V 2>&1) || return 1
  [[ $v == *http_secure_link_module* && $v == *http_auth_request_module* ]]
}

# Alive and not a zombie: our own children stay in /proc until reaped.
proc_alive() {
  local stat
  # `read`, not `cat`: no fork per check, which matters on a loaded machine.
  read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# PIDs whose parent is $1 (the pool's workers), from /proc: no procps needed.
children_of() {
  local f stat ppid
  for f in /proc/[0-9]*/stat; do
    read -r stat 2>/dev/null <"$f" || continue
    stat=${stat##*) }
    read -r _ ppid _ <<<"$stat"
    [ "$ppid" = "$1" ] && { f=${f#/proc/}; printf '%s\n' "${f%/stat}"; }
  done
  return 0
}

# Stop one process we started: SIGTERM, wait up to TIMEOUT seconds, then
# SIGKILL it and the children it had (so no worker is left holding the
# socket). Always by pid. Reaps it when it is our child.
stop_pid() { # PID NAME TIMEOUT
  local pid=$1 name=$2 timeout=${3:-20} kids i
  [ -n "$pid" ] || return 0
  if proc_alive "$pid"; then
    kids=$(children_of "$pid")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
      proc_alive "$pid" || break
      sleep 0.1
    done
    if proc_alive "$pid"; then
      note "$name (pid $pid) did not stop in ${timeout}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for i in $kids; do kill -KILL "$i" 2>/dev/null || true; done
    fi
  fi
  wait "$pid" 2>/dev/null || true
}

wait_for_socket() { # PATH PID TIMEOUT
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    [ -S "$1" ] && return 0
    proc_alive "$2" || return 1
    sleep 0.1
  done
  return 1
}

port_open() { # PORT (on 127.0.0.1)
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_for_port() { # PORT PID TIMEOUT
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    port_open "$1" && return 0
    proc_alive "$2" || return 1
    sleep 0.1
  done
  return 1
}

rss_kb() { # PID -> VmRSS in kB (0 when gone)
  local v
  v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null) || true
  printf '%s\n' "${v:-0}"
}

# Print the path of the marquee binary: $2 when given, else the release build
# of the repository at $1, built first when missing or older than its sources.
marquee_binary() { # ROOT [BINARY]
  local root=$1 binary=${2:-} bin_dir stale=''
  if [ -n "$binary" ]; then
    if [ ! -f "$binary" ] || [ ! -x "$binary" ]; then die "$binary is not an executable file"; fi
    printf '%s/%s\n' "$(cd "$(dirname "$binary")" && pwd)" "$(basename "$binary")"
    return
  fi
  command -v swift >/dev/null || die "swift not found: install a Swift toolchain or pass --binary"
  bin_dir=$(cd "$root" && swift build -c release --show-bin-path)
  binary=$bin_dir/marquee
  if [ -x "$binary" ]; then
    # Package.resolved may not exist; find still reports the others.
    stale=$(cd "$root" && { find Package.swift Package.resolved Sources -newer "$binary" -print -quit 2>/dev/null || true; })
  fi
  if [ ! -x "$binary" ] || [ -n "$stale" ]; then
    note "building the release binary${stale:+ ($stale changed)}"
    # With the Swift runtime linked in, the binary needs only Debian's own
    # libraries: deploy/install has nothing to bundle beside it.
    (cd "$root" && swift build -c release --product marquee --static-swift-stdlib) >&2
  fi
  printf '%s\n' "$binary"
}
