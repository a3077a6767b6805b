#!/usr/bin/env bash
# Builds the benchmark workload of BENCHMARKS.md on the test bed's classic engine, idempotently:
#
#   bench/base:1  a Debian bookworm minbase rootfs (debootstrap), imported          (~200 MB)
#   bench/app:1   FROM bench/base:1
#                 + 30 MB of incompressible bytes (seeded, the same on every machine)
#                 + ~110 MB of text (a copy of /usr/share/doc)
#                 + a tiny layer
#   bench/app:2   FROM bench/app:1 + one new 5 MB layer of incompressible bytes (seeded)
#
# Caches, in /var/lib/transship-testbed/bench:
#   rootfs-bookworm-minbase.tar   the debootstrap tree as a tar (debootstrap runs once per machine)
#   base-1.tar                    `docker save bench/base:1` (resets a destination to "warm")
#   app-1.tar                     `docker save bench/app:1` (resets to "has app:1"; `docker load` alone)
# Each cache is tagged with the image id it was saved from and rewritten when the image changes.
#
# Needs the test bed (test/bed/up.sh) to be up, and root.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/bed/lib.sh
source "$HERE/../bed/lib.sh"

BENCH=$STATE/bench
ROOTFS_TAR=$BENCH/rootfs-bookworm-minbase.tar
BASE_TAR=$BENCH/base-1.tar
APP1_TAR=$BENCH/app-1.tar
MIRROR=${TRANSSHIP_BENCH_MIRROR:-http://deb.debian.org/debian}
TEXT_TARGET=110000000       # bytes of text in app:1's text layer (about 110 MB)
LABEL=transship.bench=1            # every bench image carries it (lets a reset prune only ours)

bench_say() { printf 'bench: %-20s %s\n' "$1" "$2"; }

[[ $(id -u) -eq 0 ]] || die "the benchmark workload needs root (debootstrap, the bed's engines)"
engine_ready "$RUN/classic.sock" || die "the test bed's classic engine is not up: run test/bed/up.sh first"
mkdir -p "$BENCH"

TMP_DIRS=()
cleanup() { ((${#TMP_DIRS[@]} == 0)) || rm -rf "${TMP_DIRS[@]}"; }
trap cleanup EXIT

image_id() { # ENGINE REF -> id or nothing
  dk "$1" image inspect --format '{{.Id}}' "$2" 2>/dev/null || true
}

# seeded, incompressible bytes: AES-256-CTR of zeros under a fixed password, no salt
random_bytes() { # SEED SIZE
  # (openssl dies of SIGPIPE when head has enough)
  { openssl enc -aes-256-ctr -pbkdf2 -nosalt -pass "pass:$1" </dev/zero 2>/dev/null || true; } | head -c "$2"
}

ensure_debootstrap() {
  command -v debootstrap >/dev/null && return
  bench_say "packages" "installing debootstrap"
  mkdir -p "$LOG_DIR"
  {
    DEBIAN_FRONTEND=noninteractive apt-get update -q &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap
  } >>"$LOG_DIR/apt.log" 2>&1 || {
    tail -n 20 "$LOG_DIR/apt.log" >&2
    die "installing debootstrap failed, see $LOG_DIR/apt.log"
  }
}

ensure_rootfs_tar() {
  if [[ -s $ROOTFS_TAR ]]; then
    bench_say "rootfs" "cached ($(du -h "$ROOTFS_TAR" | cut -f1))"
    return
  fi
  ensure_debootstrap
  local dir=$BENCH/rootfs.tmp start
  rm -rf "$dir"
  start=$SECONDS
  bench_say "rootfs" "debootstrap --variant=minbase bookworm (about 20-60 s)"
  debootstrap --variant=minbase bookworm "$dir" "$MIRROR" >"$LOG_DIR/bench-debootstrap.log" 2>&1 || {
    tail -n 20 "$LOG_DIR/bench-debootstrap.log" >&2
    die "debootstrap failed, see $LOG_DIR/bench-debootstrap.log"
  }
  tar --numeric-owner --xattrs -C "$dir" -cf "$ROOTFS_TAR.tmp" .
  mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
  rm -rf "$dir"
  bench_say "rootfs" "built in $((SECONDS - start)) s ($(du -h "$ROOTFS_TAR" | cut -f1))"
}

ensure_base() {
  if [[ -n $(image_id classic bench/base:1) ]]; then
    bench_say "bench/base:1" "present"
    return
  fi
  ensure_rootfs_tar
  dk classic import --change 'CMD ["/bin/bash"]' --change "LABEL $LABEL" \
    --message 'transship benchmark base' "$ROOTFS_TAR" bench/base:1 >/dev/null
  bench_say "bench/base:1" "imported"
}

# the text layer: /usr/share/doc of this machine, repeated until it holds about 110 MB
fill_text() { # DIR
  local dir=$1 bytes=0 i=0 size
  size=$(du -sb /usr/share/doc | cut -f1)
  ((size > 1024 * 1024)) || die "/usr/share/doc is (nearly) empty"
  while ((bytes < TEXT_TARGET)); do
    if ((bytes + size <= TEXT_TARGET * 11 / 10)); then
      cp -a /usr/share/doc "$dir/doc.$i"
    else
      # the last round: only as many whole package directories as still fit
      mkdir -p "$dir/doc.$i"
      local pkg psize
      while IFS= read -r pkg; do
        psize=$(du -sb "/usr/share/doc/$pkg" | cut -f1)
        ((bytes + psize <= TEXT_TARGET)) || continue
        cp -a "/usr/share/doc/$pkg" "$dir/doc.$i/"
        bytes=$((bytes + psize))
      done < <(ls /usr/share/doc)
      break
    fi
    bytes=$((bytes + size))
    i=$((i + 1))
  done
}

ensure_app1() {
  if [[ -n $(image_id classic bench/app:1) ]]; then
    bench_say "bench/app:1" "present"
    return
  fi
  local ctx
  ctx=$(mktemp -d)
  TMP_DIRS+=("$ctx")
  random_bytes transship-bench-app-1 30M >"$ctx/random.bin"
  mkdir "$ctx/text"
  fill_text "$ctx/text"
  echo 'bench app 1' >"$ctx/version.txt"
  cat >"$ctx/Dockerfile" <<EOF
FROM bench/base:1
COPY random.bin /opt/bench/random.bin
COPY text/ /opt/bench/doc/
COPY version.txt /opt/bench/version.txt
LABEL $LABEL
CMD ["cat", "/opt/bench/version.txt"]
EOF
  DOCKER_BUILDKIT=0 dk classic build -q --network none -t bench/app:1 "$ctx" >/dev/null
  rm -rf "$ctx"
  bench_say "bench/app:1" "built"
}

ensure_app2() {
  local want_parent have_parent
  if [[ -n $(image_id classic bench/app:2) ]]; then
    # app:2 must sit on the current app:1 (app:1 may have been rebuilt since)
    want_parent=$(dk classic image inspect --format '{{json .RootFS.Layers}}' bench/app:1)
    have_parent=$(dk classic image inspect --format '{{json .RootFS.Layers}}' bench/app:2)
    if [[ $have_parent == "${want_parent%]}"* ]]; then
      bench_say "bench/app:2" "present"
      return
    fi
    dk classic rmi bench/app:2 >/dev/null
  fi
  local ctx
  ctx=$(mktemp -d)
  TMP_DIRS+=("$ctx")
  random_bytes transship-bench-app-2 5M >"$ctx/random2.bin"
  cat >"$ctx/Dockerfile" <<EOF
FROM bench/app:1
COPY random2.bin /opt/bench/random2.bin
EOF
  DOCKER_BUILDKIT=0 dk classic build -q --network none -t bench/app:2 "$ctx" >/dev/null
  rm -rf "$ctx"
  bench_say "bench/app:2" "built"
}

ensure_saved() { # REF TAR
  local ref=$1 tar=$2 id
  id=$(image_id classic "$ref")
  if [[ -s $tar && $(cat "$tar.id" 2>/dev/null) == "$id" ]]; then
    bench_say "$(basename "$tar")" "cached"
    return
  fi
  dk classic save -o "$tar.tmp" "$ref"
  mv "$tar.tmp" "$tar"
  echo "$id" >"$tar.id"
  bench_say "$(basename "$tar")" "saved"
}

ensure_base
ensure_app1
ensure_app2
ensure_saved bench/base:1 "$BASE_TAR"
ensure_saved bench/app:1 "$APP1_TAR"

bench_say "bench/app:1" "docker-archive $(stat -c %s "$APP1_TAR") bytes ($(($(stat -c %s "$APP1_TAR") / 1000000)) MB); id $(image_id classic bench/app:1)"
bench_say "bench/app:2" "id $(image_id classic bench/app:2)"
