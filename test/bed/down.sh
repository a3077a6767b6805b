#!/usr/bin/env bash
# Stops everything test/bed/up.sh started (found by their pidfiles in /run/transship-testbed).
# Keeps /var/lib/transship-testbed: engine data, keys, downloaded debs and image archives, so the
# next up.sh is quick. To start from scratch, run this and then remove that directory.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/bed/lib.sh
source "$HERE/lib.sh"

stop() { # LABEL PIDFILE MARKER
  local label=$1 pidfile=$2 marker=$3 pid
  pid=$(read_pid "$pidfile")
  if [[ -n $pid ]] && pid_matches "$pid" "$marker"; then
    stop_pid "$pid" "$label"
    say "$label" "stopped (pid $pid)"
  else
    say "$label" "not running"
  fi
  rm -f "$pidfile" "${pidfile%.pid}.spec"
}

[[ -d $RUN ]] || {
  say "testbed" "not running ($RUN does not exist)"
  exit 0
}

stop sshd "$RUN/sshd.pid" "$SSH_DIR/sshd_config"
for registry in "${REGISTRIES[@]}"; do
  stop "$registry registry" "$RUN/$registry-registry.pid" "$STATE/conf/$registry-registry.yml"
done
# engines first (they stop their containers), then their containerds
for engine in "${ENGINES[@]}"; do
  stop "$engine engine" "$RUN/$engine.pid" "unix://$RUN/$engine.sock"
done
for engine in "${ENGINES[@]}"; do
  stop "$engine containerd" "$RUN/$engine.containerd.pid" "$STATE/conf/$engine-containerd.toml"
done
