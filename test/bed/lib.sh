# shellcheck shell=bash
# Shared by test/bed/up.sh and test/bed/down.sh: where the test bed lives and how its daemons
# are started, checked and stopped.
# shellcheck disable=SC2034 # the paths below are used by the scripts that source this file

STATE=/var/lib/transship-testbed # data roots, keys, logs, downloaded debs, image archives
RUN=/run/transship-testbed       # sockets, pids
LOG_DIR=$STATE/logs
SSH_DIR=$STATE/ssh
TRIXIE_DIR=$STATE/debs/trixie
TRIXIE_ROOT=$TRIXIE_DIR/x
SSH_HOST=127.0.0.1
SSH_PORT=2222
ENGINES=(classic remote containerd)
REGISTRY_DIR=$STATE/registry # storage of both registries, the CA and certificates, htpasswd
REGISTRIES=(plain secure)    # Distribution registries: plain HTTP, and TLS with htpasswd auth

# the docker CLI must not pick up the invoking user's config (credential helpers, contexts)
export DOCKER_CONFIG=$STATE/docker-config
unset DOCKER_HOST DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH

say() { # COMPONENT MESSAGE
  printf 'testbed: %-20s %s\n' "$1" "$2"
}

die() {
  printf 'testbed: error: %s\n' "$*" >&2
  exit 1
}

# writes stdin to FILE unless FILE already has exactly that content (keeps mtimes stable)
write_if_changed() { # FILE
  local file=$1 tmp
  tmp=$(mktemp "$file.XXXXXX")
  cat >"$tmp"
  if [[ -f $file ]] && cmp -s "$tmp" "$file"; then
    rm -f "$tmp"
  else
    chmod 644 "$tmp"
    mv -f "$tmp" "$file"
  fi
}

# a process that has exited but was not reaped yet (a zombie) counts as gone: the daemons are
# detached, and whatever runs as pid 1 may reap them late
alive() { # PID
  local stat
  kill -0 "$1" 2>/dev/null || return 1
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

read_pid() { # PIDFILE -> pid of a live process, or nothing
  local pid
  [[ -s $1 ]] || return 0
  read -r pid <"$1" || true
  if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid"; then
    echo "$pid"
  fi
  return 0
}

# does process PID's command line contain MARKER (guards against a pid reused by something else)
pid_matches() { # PID MARKER
  [[ -r /proc/$1/cmdline ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$2"
}

# what a daemon was started with: its argv plus the content of the config files it names
spec_of() { # ARGV...
  local arg
  printf '%q ' "$@"
  for arg in "$@"; do
    case $arg in
      *.toml | *.json | *.yml | *_config) [[ -f $arg ]] && sha256sum "$arg" | cut -d' ' -f1 ;;
    esac
  done
  return 0
}

stop_pid() { # PID LABEL
  local pid=$1 label=$2 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 300; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  printf 'testbed: %s (pid %s) did not stop within 30 s, killing it\n' "$label" "$pid" >&2
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
}

port_in_use() { # PORT
  [[ -n $(ss -Hltn "sport = :$1") ]]
}

engine_ready() { # SOCKET
  [[ -S $1 ]] && curl -sf --max-time 2 --unix-socket "$1" -o /dev/null http://engine/_ping
}

containerd_ready() { # SOCKET
  [[ -S $1 ]]
}

registry_ready() { # URL  (the plain registry: /v2/ answers 200)
  curl -sf --max-time 2 -o /dev/null "$1"
}

secure_registry_ready() { # URL  (TLS with the bed's CA, and no credentials: /v2/ answers 401)
  [[ $(curl -s --max-time 2 --cacert "$REGISTRY_DIR/tls/ca.crt" -o /dev/null -w '%{http_code}' "$1") == 401 ]]
}

image_present() { # SOCKET REF
  curl -sf --max-time 5 --unix-socket "$1" -o /dev/null "http://engine/images/$2/json"
}

header_value() { # NAME < headers
  local name=${1,,} line key
  while IFS= read -r line; do
    line=${line%$'\r'}
    key=${line%%:*}
    if [[ ${key,,} == "$name" ]]; then
      line=${line#*:}
      echo "${line# }"
      return 0
    fi
  done
  return 1
}

dk() { # ENGINE ARGS...  (the Debian docker CLI against one of the bed's engines)
  local engine=$1
  shift
  /usr/bin/docker -H "unix://$RUN/$engine.sock" "$@"
}

# Starts a daemon unless it already runs with the same argv and config files; restarts it if
# they changed. The daemon runs in its own session (setsid), detached from the caller's stdio,
# with its output appended to LOG. Waits until READY_FN SOCKET succeeds.
ensure_daemon() { # LABEL PIDFILE LOG PATH READY_FN SOCKET MARKER -- ARGV...
  local label=$1 pidfile=$2 log=$3 path=$4 ready=$5 socket=$6 marker=$7
  shift 8
  local specfile=${pidfile%.pid}.spec want pid
  want=$(spec_of "$@")
  pid=$(read_pid "$pidfile")
  if [[ -n $pid ]] && pid_matches "$pid" "$marker"; then
    if [[ $(cat "$specfile" 2>/dev/null) == "$want" ]]; then
      wait_ready "$label" "$pid" "$log" "$ready" "$socket" 60
      say "$label" "already running (pid $pid)"
      return 0
    fi
    say "$label" "configuration changed, restarting (pid $pid)"
    stop_pid "$pid" "$label"
  fi
  # not running: a pidfile or socket left behind (a crash, a reboot without a tmpfs /run) is stale
  # (what a TCP daemon is checked on is a URL, not a file)
  rm -f "$pidfile"
  [[ $socket != /* ]] || rm -f "$socket"
  mkdir -p "$(dirname "$log")"
  printf '\n==== %s starting: %s\n' "$(date -Is)" "$*" >>"$log"
  PATH=$path /usr/bin/setsid "$@" </dev/null >>"$log" 2>&1 &
  pid=$!
  # a daemon given the pidfile on its command line writes it itself (and refuses to start if
  # it finds a live pid in it)
  if [[ " $* " != *" $pidfile "* ]]; then
    echo "$pid" >"$pidfile"
  fi
  echo "$want" >"$specfile"
  wait_ready "$label" "$pid" "$log" "$ready" "$socket" 90
  say "$label" "started (pid $pid)"
}

wait_ready() { # LABEL PID LOG READY_FN SOCKET TIMEOUT_S
  local label=$1 pid=$2 log=$3 ready=$4 socket=$5 timeout=$6 i
  for ((i = 0; i < timeout * 10; i++)); do
    "$ready" "$socket" && return 0
    if ! alive "$pid"; then
      tail -n 30 "$log" >&2
      die "$label exited during startup, see $log"
    fi
    sleep 0.1
  done
  tail -n 30 "$log" >&2
  die "$label (pid $pid) did not answer on $socket within $timeout s, see $log"
}
