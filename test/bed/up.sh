#!/usr/bin/env bash
# Brings up the real test bed for the end-to-end tests, idempotently:
#   - three Docker engines, each with its own containerd:
#       classic     Debian bookworm's docker.io 20.10, classic overlay2 image store
#       remote      a second 20.10 instance that the tests reach over SSH (it plays a remote host)
#       containerd  Debian trixie's docker.io 26.1 with the containerd image store
#                   (unpacked into the state directory, not installed system-wide)
#   - an sshd on 127.0.0.1:2222 with generated host and client keys,
#   - two Distribution registries (Debian's docker-registry 2.8):
#       plain       HTTP on 127.0.0.1:5000 (localhost:5000), no auth
#       secure      HTTPS on 127.0.0.1:5443 (localhost:5443) with a certificate from the bed's own
#                   CA and htpasswd auth; the engines trust that CA through /etc/docker/certs.d
#   - the test images, loaded into every engine, among them a volume helper image (a Debian
#     minbase with GNU tar, findutils, coreutils, zstd, rsync, attr) built with mmdebstrap,
#   - three local users that log in through that sshd with the bed's client key:
#       tsdocker    in group docker (the engines' sockets are root:docker 0660), no sudo
#       tssudo      passwordless sudo, in group docker
#       tspass      sudo that asks for a password (a random one), in group docker
# and writes test/.state/testbed.json describing all of it.
#
# Needs root. State: /var/lib/transship-testbed (data roots, keys, logs, debs, image archives)
# and /run/transship-testbed (sockets, pids). The system's docker service and /var/run/docker.sock
# are neither used nor touched. Stop everything with test/bed/down.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=test/bed/lib.sh
source "$HERE/lib.sh"

OUT_DIR=$REPO/test/.state
OUT=$OUT_DIR/testbed.json

if [[ $(id -u) -ne 0 ]]; then
  die "the test bed needs root to install packages and start Docker engines and sshd"
fi

# ---------------------------------------------------------------------------------------------
# Debian packages (bookworm). Add what later tests need here (e.g. docker-registry, skopeo,
# apache2-utils, debootstrap, pigz, ...): they are installed on the first run, checked after.
# ---------------------------------------------------------------------------------------------
PACKAGES=(
  bzip2
  xz-utils
  docker.io # dockerd 20.10, the docker CLI, tini (docker-init)
  containerd # containerd 1.6 for the 20.10 engines
  runc # bookworm's runc is used by every engine (trixie's needs a newer glibc)
  openssh-server
  openssh-client
  busybox-static # the root file system of the test images
  zstd
  iproute2 # ss, ip, tc
  curl # talks to the engines' sockets
  debootstrap # rootfs: builds Debian base images
  mmdebstrap # rootfs: the other bootstrap tool
  skopeo # rootfs: checks the built images
  acl # volumes: setfacl/getfacl for the ACL checks
  attr # volumes: setfattr/getfattr
  rsync # volumes: copies between hosts
  sudo # the bed's sudo users (tssudo, tspass)
  docker-registry # Distribution 2.8: the plain and the secure registry
  apache2-utils # htpasswd, for the secure registry's users
  openssl # the secure registry's CA and server certificate
)

ensure_packages() {
  local missing=() p status
  for p in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    [[ $status == ii* ]] || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    say "packages" "already installed (${#PACKAGES[@]})"
    return
  fi
  say "packages" "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # keep maintainer scripts from starting the system's services (dockerd, sshd on port 22):
  # the bed runs its own instances. policy-rc.d is Debian's mechanism for exactly that.
  local policy=/usr/sbin/policy-rc.d own_policy=
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=1
  fi
  local rc=0
  {
    apt-get update -q &&
      apt-get install -y -q --no-install-recommends "${missing[@]}"
  } >>"$LOG_DIR/apt.log" 2>&1 || rc=$?
  [[ -z $own_policy ]] || rm -f "$policy"
  if ((rc != 0)); then
    tail -n 30 "$LOG_DIR/apt.log" >&2
    die "apt-get install failed (exit $rc), see $LOG_DIR/apt.log"
  fi
  say "packages" "installed: ${missing[*]}"
}

# ---------------------------------------------------------------------------------------------
# Debian trixie's docker.io 26.1 + containerd 1.7, downloaded and unpacked into the state dir
# ---------------------------------------------------------------------------------------------
ensure_trixie() {
  local dir=$TRIXIE_DIR
  if [[ -f $dir/.complete && -x $TRIXIE_ROOT/usr/sbin/dockerd && -x $TRIXIE_ROOT/usr/bin/containerd ]]; then
    say "trixie docker.io" "already unpacked ($(<"$dir/.complete"))"
    return
  fi
  say "trixie docker.io" "downloading docker.io and containerd from Debian trixie"
  rm -rf "$dir/x" "$dir/.complete"
  mkdir -p "$dir/lists/partial" "$dir/archives/partial" "$dir/debs"
  echo 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main' \
    >"$dir/sources.list"
  local a=(
    -o "Dir::Etc::sourcelist=$dir/sources.list" -o Dir::Etc::sourceparts=-
    -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache::archives=$dir/archives"
    -o APT::Sandbox::User=root -q
  )
  {
    apt-get "${a[@]}" update && (cd "$dir/debs" && rm -f ./*.deb && apt-get "${a[@]}" download docker.io containerd)
  } >>"$LOG_DIR/trixie-download.log" 2>&1 || {
    tail -n 30 "$LOG_DIR/trixie-download.log" >&2
    die "downloading trixie's docker.io failed, see $LOG_DIR/trixie-download.log"
  }
  local tmp=$dir/x.tmp deb
  rm -rf "$tmp"
  mkdir -p "$tmp"
  for deb in "$dir"/debs/*.deb; do
    dpkg-deb -x "$deb" "$tmp"
  done
  mv "$tmp" "$TRIXIE_ROOT"
  local v
  v=$("$TRIXIE_ROOT/usr/sbin/dockerd" --version) || die "trixie's dockerd does not run on this machine"
  echo "$v" >"$dir/.complete"
  say "trixie docker.io" "unpacked ($v)"
}

# ---------------------------------------------------------------------------------------------
# engines
# ---------------------------------------------------------------------------------------------
BOOKWORM_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# trixie's dockerd, docker-proxy, containerd and shims first; runc and docker-init from bookworm
TRIXIE_PATH=$TRIXIE_ROOT/usr/sbin:$TRIXIE_ROOT/usr/bin:/usr/sbin:/usr/bin:/sbin:/bin

write_containerd_config() { # NAME
  local name=$1
  mkdir -p "$STATE/conf" "$STATE/containerd-roots/$name" "$STATE/containerd-roots/$name-opt"
  write_if_changed "$STATE/conf/$name-containerd.toml" <<EOF
# generated by test/bed/up.sh
version = 2
root = "$STATE/containerd-roots/$name"
state = "$RUN/$name-containerd-state"
oom_score = 0
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$RUN/$name.containerd.sock"

[ttrpc]
  address = "$RUN/$name.containerd.sock.ttrpc"

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$STATE/containerd-roots/$name-opt"
EOF
}

ensure_containerd() { # NAME BINARY PATH
  local name=$1 bin=$2 path=$3
  write_containerd_config "$name"
  local spec=("$bin" --config "$STATE/conf/$name-containerd.toml")
  ensure_daemon "$name containerd" "$RUN/$name.containerd.pid" "$LOG_DIR/$name-containerd.log" \
    "$path" containerd_ready "$RUN/$name.containerd.sock" "$STATE/conf/$name-containerd.toml" -- "${spec[@]}"
}

ensure_engine() { # NAME BINARY PATH DAEMON_JSON
  local name=$1 bin=$2 path=$3 daemon_json=$4
  mkdir -p "$STATE/conf" "$STATE/$name" "$RUN/$name-exec"
  printf '%s\n' "$daemon_json" | write_if_changed "$STATE/conf/$name-daemon.json"
  local spec=(
    "$bin"
    --config-file "$STATE/conf/$name-daemon.json"
    --iptables=false --ip-forward=false --ip-masq=false --bridge=none
    -H "unix://$RUN/$name.sock"
    --containerd "$RUN/$name.containerd.sock"
    --data-root "$STATE/$name"
    --exec-root "$RUN/$name-exec"
    --pidfile "$RUN/$name.pid"
  )
  ensure_daemon "$name engine" "$RUN/$name.pid" "$LOG_DIR/$name-dockerd.log" \
    "$path" engine_ready "$RUN/$name.sock" "unix://$RUN/$name.sock" -- "${spec[@]}"
}

# ---------------------------------------------------------------------------------------------
# sshd
# ---------------------------------------------------------------------------------------------
ensure_ssh_keys() {
  mkdir -p "$SSH_DIR"
  chmod 755 "$SSH_DIR"
  local made=()
  if [[ ! -s $SSH_DIR/ssh_host_ed25519_key ]]; then
    ssh-keygen -q -t ed25519 -N '' -C transship-testbed-host -f "$SSH_DIR/ssh_host_ed25519_key"
    made+=(host)
  fi
  if [[ ! -s $SSH_DIR/wrong_host_ed25519_key ]]; then
    ssh-keygen -q -t ed25519 -N '' -C transship-testbed-wrong-host -f "$SSH_DIR/wrong_host_ed25519_key"
    made+=(wrong-host)
  fi
  if [[ ! -s $SSH_DIR/id_ed25519 ]]; then
    ssh-keygen -q -t ed25519 -N '' -C transship-testbed-client -f "$SSH_DIR/id_ed25519"
    made+=(client)
  fi
  chmod 600 "$SSH_DIR/ssh_host_ed25519_key" "$SSH_DIR/wrong_host_ed25519_key" "$SSH_DIR/id_ed25519"
  write_if_changed "$SSH_DIR/authorized_keys" <"$SSH_DIR/id_ed25519.pub"
  chmod 644 "$SSH_DIR/authorized_keys"
  local host_key wrong_key
  read -r host_key < <(cut -d' ' -f1,2 "$SSH_DIR/ssh_host_ed25519_key.pub")
  read -r wrong_key < <(cut -d' ' -f1,2 "$SSH_DIR/wrong_host_ed25519_key.pub")
  printf '[%s]:%s %s\n' "$SSH_HOST" "$SSH_PORT" "$host_key" | write_if_changed "$SSH_DIR/known_hosts"
  printf '[%s]:%s %s\n' "$SSH_HOST" "$SSH_PORT" "$wrong_key" | write_if_changed "$SSH_DIR/wrong_known_hosts"
  if ((${#made[@]})); then
    say "ssh keys" "generated: ${made[*]}"
  else
    say "ssh keys" "already generated"
  fi
}

ensure_sshd() {
  mkdir -p /run/sshd
  chmod 755 /run/sshd
  write_if_changed "$SSH_DIR/sshd_config" <<EOF
# generated by test/bed/up.sh
Port $SSH_PORT
ListenAddress $SSH_HOST
HostKey $SSH_DIR/ssh_host_ed25519_key
PidFile $RUN/sshd.pid
AuthorizedKeysFile $SSH_DIR/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
AllowStreamLocalForwarding yes
AllowTcpForwarding yes
StreamLocalBindUnlink yes
PrintMotd no
PrintLastLog no
UseDNS no
LogLevel VERBOSE
# the tests open many connections at once
MaxStartups 200
MaxSessions 100
# a session on this "remote host" sees the remote engine as its default docker engine
SetEnv DOCKER_HOST=unix://$RUN/remote.sock
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
  /usr/sbin/sshd -t -f "$SSH_DIR/sshd_config" || die "sshd rejects $SSH_DIR/sshd_config"
  local pid
  pid=$(read_pid "$RUN/sshd.pid")
  local spec=(/usr/sbin/sshd -f "$SSH_DIR/sshd_config" -E "$LOG_DIR/sshd.log")
  local want
  want=$(spec_of "${spec[@]}")
  if [[ -n $pid ]] && pid_matches "$pid" "$SSH_DIR/sshd_config"; then
    if [[ $(cat "$RUN/sshd.spec" 2>/dev/null) == "$want" ]]; then
      ssh_check || die "sshd (pid $pid) runs but logging in with the test key fails, see $LOG_DIR/sshd.log"
      say "sshd" "already running on $SSH_HOST:$SSH_PORT (pid $pid)"
      return
    fi
    say "sshd" "configuration changed, restarting"
    stop_pid "$pid" sshd
  fi
  if port_in_use "$SSH_PORT"; then
    die "port $SSH_HOST:$SSH_PORT is already in use by something that is not the test bed's sshd: $(ss -Hltnp "sport = :$SSH_PORT" | head -n 3)"
  fi
  rm -f "$RUN/sshd.pid"
  "${spec[@]}" </dev/null >>"$LOG_DIR/sshd.log" 2>&1 || {
    tail -n 20 "$LOG_DIR/sshd.log" >&2
    die "sshd failed to start, see $LOG_DIR/sshd.log"
  }
  echo "$want" >"$RUN/sshd.spec"
  local i
  for ((i = 0; i < 50; i++)); do
    ssh_check && break
    sleep 0.1
  done
  ssh_check || {
    tail -n 20 "$LOG_DIR/sshd.log" >&2
    die "sshd started but logging in with the test key fails, see $LOG_DIR/sshd.log"
  }
  say "sshd" "started on $SSH_HOST:$SSH_PORT (pid $(read_pid "$RUN/sshd.pid"))"
}

ssh_check() { # [USER]  (root by default)
  ssh -q -n -F none -i "$SSH_DIR/id_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes \
    -o UserKnownHostsFile="$SSH_DIR/known_hosts" -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes \
    -o ConnectTimeout=5 -p "$SSH_PORT" "${1:-root}@$SSH_HOST" true 2>/dev/null
}

# ---------------------------------------------------------------------------------------------
# users: non-root logins on this "remote host", for copies that need docker group or sudo
# ---------------------------------------------------------------------------------------------
BED_DOCKER_USER=tsdocker # group docker, no sudo
BED_SUDO_USER=tssudo     # sudo without a password
BED_PASSWORD_USER=tspass # sudo that asks for a password
SUDOERS=/etc/sudoers.d/transship-testbed
USERS_DIR=$STATE/users # tspass's password
MADE_USERS=()

# dockerd gives its socket to group docker (its --group default) when that group exists when it
# starts; Debian's docker.io makes the group, this covers a machine where it was removed
ensure_docker_group() {
  getent group docker >/dev/null || groupadd --system docker
}

# the engines' sockets, root:docker 0660; set again in place (no restart) if an engine started
# before the group existed
ensure_socket_access() {
  local name sock fixed=()
  for name in "${ENGINES[@]}"; do
    sock=$RUN/$name.sock
    if [[ $(stat -c '%G %a' "$sock") != 'docker 660' ]]; then
      chgrp docker "$sock"
      chmod 660 "$sock"
      fixed+=("$name")
    fi
  done
  if ((${#fixed[@]})); then
    say "engine sockets" "set to root:docker 0660: ${fixed[*]}"
  else
    say "engine sockets" "already root:docker 0660"
  fi
}

# sshd runs without PAM: it refuses an account whose password is locked ("!", what useradd
# leaves), so the users without a password get "*" (no password login, key login allowed).
# They all use the bed's AuthorizedKeysFile: root-owned 0644 under root-owned 0755 directories,
# which StrictModes accepts for any user.
ensure_user() { # NAME IN_DOCKER_GROUP(yes|no)
  local name=$1 docker=$2
  if ! getent passwd "$name" >/dev/null; then
    useradd --create-home --shell /bin/bash --comment "transship test bed" "$name"
    MADE_USERS+=("$name")
  fi
  [[ $(getent passwd "$name" | cut -d: -f7) == /bin/bash ]] || usermod --shell /bin/bash "$name"
  local home
  home=$(getent passwd "$name" | cut -d: -f6)
  [[ -d $home ]] || mkhomedir "$name" "$home"
  local groups
  groups=" $(id -nG "$name") "
  if [[ $docker == yes && $groups != *' docker '* ]]; then
    usermod -aG docker "$name"
  elif [[ $docker == no && $groups == *' docker '* ]]; then
    gpasswd -d "$name" docker >/dev/null
  fi
  if [[ $(getent shadow "$name" | cut -d: -f2) == '!'* ]]; then
    usermod -p '*' "$name"
  fi
}

mkhomedir() { # NAME HOME
  mkdir -p "$2"
  cp -rT /etc/skel "$2"
  chown -R "$1:" "$2"
  chmod 750 "$2"
}

ensure_users() {
  ensure_user "$BED_DOCKER_USER" yes
  # the sudo users reach the engine too: transship speaks to it through the socket forwarded as the SSH user
  ensure_user "$BED_SUDO_USER" yes
  ensure_user "$BED_PASSWORD_USER" yes

  # tspass: a random password, made once; set again whenever it was made or the user was
  mkdir -p "$USERS_DIR"
  chmod 700 "$USERS_DIR"
  if [[ ! -s $USERS_DIR/$BED_PASSWORD_USER.password || " ${MADE_USERS[*]} " == *" $BED_PASSWORD_USER "* ]]; then
    [[ -s $USERS_DIR/$BED_PASSWORD_USER.password ]] ||
      (umask 077 && openssl rand -hex 16 >"$USERS_DIR/$BED_PASSWORD_USER.password")
    local password
    read -r password <"$USERS_DIR/$BED_PASSWORD_USER.password"
    printf '%s:%s\n' "$BED_PASSWORD_USER" "$password" | chpasswd
  fi

  local tmp
  tmp=$(mktemp)
  cat >"$tmp" <<EOF
# generated by test/bed/up.sh: the test bed's sudo users
$BED_SUDO_USER ALL=(ALL) NOPASSWD: ALL
$BED_PASSWORD_USER ALL=(ALL) ALL
EOF
  visudo -cqf "$tmp" || die "visudo rejects the test bed's sudoers file"
  write_if_changed "$SUDOERS" <"$tmp"
  rm -f "$tmp"
  chmod 440 "$SUDOERS"

  local user
  for user in "$BED_DOCKER_USER" "$BED_SUDO_USER" "$BED_PASSWORD_USER"; do
    ssh_check "$user" || die "sshd refuses $user with the test key, see $LOG_DIR/sshd.log"
  done
  runuser -u "$BED_DOCKER_USER" -- curl -sf --max-time 5 --unix-socket "$RUN/remote.sock" -o /dev/null http://engine/_ping ||
    die "$BED_DOCKER_USER cannot use $RUN/remote.sock"
  if ((${#MADE_USERS[@]})); then
    say "users" "created: ${MADE_USERS[*]}"
  else
    say "users" "already set up ($BED_DOCKER_USER, $BED_SUDO_USER, $BED_PASSWORD_USER)"
  fi
}

# ---------------------------------------------------------------------------------------------
# registries
# ---------------------------------------------------------------------------------------------
PLAIN_REGISTRY_PORT=5000
SECURE_REGISTRY_PORT=5443
REGISTRY_USER=transship
TLS_DIR=$REGISTRY_DIR/tls
AUTH_DIR=$REGISTRY_DIR/auth

# the bed's CA (made once) and the secure registry's certificate, signed by it for localhost and
# 127.0.0.1 (made again only when it is missing or the CA does not verify it)
ensure_registry_tls() {
  mkdir -p "$TLS_DIR"
  chmod 755 "$TLS_DIR"
  local made=()
  if [[ ! -s $TLS_DIR/ca.key || ! -s $TLS_DIR/ca.crt ]]; then
    openssl req -x509 -new -nodes -newkey rsa:2048 -sha256 -days 3650 \
      -subj '/CN=transship testbed CA' \
      -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' \
      -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.crt" 2>>"$LOG_DIR/openssl.log" ||
      die "openssl could not make the registry CA, see $LOG_DIR/openssl.log"
    rm -f "$TLS_DIR/server.crt"
    made+=(CA)
  fi
  if [[ ! -s $TLS_DIR/server.key || ! -s $TLS_DIR/server.crt ]] ||
    ! openssl verify -CAfile "$TLS_DIR/ca.crt" "$TLS_DIR/server.crt" >/dev/null 2>&1; then
    {
      openssl req -new -nodes -newkey rsa:2048 -sha256 -subj '/CN=localhost' \
        -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.csr" &&
        openssl x509 -req -sha256 -days 3650 -in "$TLS_DIR/server.csr" \
          -CA "$TLS_DIR/ca.crt" -CAkey "$TLS_DIR/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
          -extfile <(printf '%s\n' 'subjectAltName=DNS:localhost,IP:127.0.0.1' 'basicConstraints=CA:FALSE' \
            'keyUsage=critical,digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth') \
          -out "$TLS_DIR/server.crt"
    } 2>>"$LOG_DIR/openssl.log" || die "openssl could not make the registry certificate, see $LOG_DIR/openssl.log"
    rm -f "$TLS_DIR/server.csr"
    made+=(certificate)
  fi
  chmod 600 "$TLS_DIR/ca.key" "$TLS_DIR/server.key"
  chmod 644 "$TLS_DIR/ca.crt" "$TLS_DIR/server.crt"
  if ((${#made[@]})); then
    say "registry tls" "made: ${made[*]}"
  else
    say "registry tls" "already made"
  fi
}

# every dockerd (the bed's, and any other on this machine) reads /etc/docker/certs.d/HOST:PORT/ca.crt
# whenever it talks to that registry: no restart needed
ensure_registry_trust() {
  local name
  for name in "localhost:$SECURE_REGISTRY_PORT" "127.0.0.1:$SECURE_REGISTRY_PORT"; do
    mkdir -p "/etc/docker/certs.d/$name"
    write_if_changed "/etc/docker/certs.d/$name/ca.crt" <"$TLS_DIR/ca.crt"
  done
  say "registry trust" "CA in /etc/docker/certs.d/{localhost,127.0.0.1}:$SECURE_REGISTRY_PORT"
}

# the secure registry's user: a random password made once, and its bcrypt htpasswd entry
ensure_registry_auth() {
  mkdir -p "$AUTH_DIR"
  chmod 755 "$AUTH_DIR"
  if [[ ! -s $AUTH_DIR/password ]]; then
    (umask 077 && openssl rand -hex 16 >"$AUTH_DIR/password")
  fi
  local password
  read -r password <"$AUTH_DIR/password"
  if ! htpasswd -vb "$AUTH_DIR/htpasswd" "$REGISTRY_USER" "$password" >/dev/null 2>&1; then
    htpasswd -Bbn "$REGISTRY_USER" "$password" >"$AUTH_DIR/htpasswd.tmp" || die "htpasswd failed"
    chmod 644 "$AUTH_DIR/htpasswd.tmp"
    mv -f "$AUTH_DIR/htpasswd.tmp" "$AUTH_DIR/htpasswd"
    say "registry auth" "htpasswd written for $REGISTRY_USER"
  else
    say "registry auth" "already written for $REGISTRY_USER"
  fi
}

write_registry_config() { # NAME PORT  (the secure one adds TLS and auth)
  local name=$1 port=$2
  mkdir -p "$STATE/conf" "$REGISTRY_DIR/$name"
  {
    cat <<EOF
# generated by test/bed/up.sh
version: 0.1
log:
  level: info
  fields:
    service: transship-testbed-$name-registry
storage:
  filesystem:
    rootdirectory: $REGISTRY_DIR/$name
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  headers:
    X-Content-Type-Options: [nosniff]
EOF
    if [[ $name == secure ]]; then
      cat <<EOF
  tls:
    certificate: $TLS_DIR/server.crt
    key: $TLS_DIR/server.key
auth:
  htpasswd:
    realm: transship-testbed
    path: $AUTH_DIR/htpasswd
EOF
    fi
  } | write_if_changed "$STATE/conf/$name-registry.yml"
}

ensure_registry() { # NAME PORT READY_FN URL
  local name=$1 port=$2 ready=$3 url=$4 conf=$STATE/conf/$1-registry.yml pid
  write_registry_config "$name" "$port"
  pid=$(read_pid "$RUN/$name-registry.pid")
  if ! { [[ -n $pid ]] && pid_matches "$pid" "$conf"; } && port_in_use "$port"; then
    die "port 127.0.0.1:$port is already in use by something that is not the test bed's $name registry: $(ss -Hltnp "sport = :$port" | head -n 3)"
  fi
  ensure_daemon "$name registry" "$RUN/$name-registry.pid" "$LOG_DIR/$name-registry.log" \
    "$BOOKWORM_PATH" "$ready" "$url" "$conf" -- /usr/bin/docker-registry serve "$conf"
}

# ---------------------------------------------------------------------------------------------
# test images
# ---------------------------------------------------------------------------------------------
BUSYBOX_IMAGE=transship-test/busybox:1
APP_IMAGE=transship-test/app:1
IMAGES_DIR=$STATE/images
ROOTFS_TAR=$IMAGES_DIR/busybox-rootfs.tar
IMAGES_ARCHIVE=$IMAGES_DIR/test-images.tar

# a busybox-static root file system, built once; same bytes every time (sorted, fixed mtime and owner)
ensure_rootfs_tar() {
  [[ -s $ROOTFS_TAR ]] && return
  mkdir -p "$IMAGES_DIR"
  local tmp busybox applet
  tmp=$(mktemp -d)
  busybox=$(command -v busybox || echo /bin/busybox)
  mkdir -p "$tmp"/{bin,etc,root,tmp,var/tmp,proc,sys,dev}
  chmod 1777 "$tmp/tmp" "$tmp/var/tmp"
  chmod 700 "$tmp/root"
  cp "$busybox" "$tmp/bin/busybox"
  for applet in $("$busybox" --list); do
    [[ $applet == busybox ]] || ln -s busybox "$tmp/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$tmp/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$tmp/etc/group"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$tmp" -cf "$ROOTFS_TAR.tmp" .
  mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
  rm -rf "$tmp"
}

# builds the images on the classic engine once and saves them; the same archive is then loaded
# everywhere, so all engines hold identical images (same ids, same layers)
ensure_images_archive() {
  [[ -s $IMAGES_ARCHIVE ]] && return
  ensure_rootfs_tar
  local sock=$RUN/classic.sock
  if ! image_present "$sock" "$BUSYBOX_IMAGE"; then
    dk classic import --change 'CMD ["/bin/sh"]' --message 'transship test image' "$ROOTFS_TAR" "$BUSYBOX_IMAGE" >/dev/null
  fi
  if ! image_present "$sock" "$APP_IMAGE"; then
    local ctx
    ctx=$(mktemp -d)
    echo 'hello from app 1' >"$ctx/hello.txt"
    cat >"$ctx/Dockerfile" <<EOF
FROM $BUSYBOX_IMAGE
COPY hello.txt /app/hello.txt
CMD ["cat", "/app/hello.txt"]
EOF
    DOCKER_BUILDKIT=0 dk classic build -q --network none -t "$APP_IMAGE" "$ctx" >/dev/null
    rm -rf "$ctx"
  fi
  dk classic save -o "$IMAGES_ARCHIVE.tmp" "$BUSYBOX_IMAGE" "$APP_IMAGE"
  mv "$IMAGES_ARCHIVE.tmp" "$IMAGES_ARCHIVE"
}

ensure_images() { # NAME
  local name=$1 sock=$RUN/$1.sock
  if image_present "$sock" "$BUSYBOX_IMAGE" && image_present "$sock" "$APP_IMAGE"; then
    say "$name images" "already loaded"
    return
  fi
  ensure_images_archive
  if ! { image_present "$sock" "$BUSYBOX_IMAGE" && image_present "$sock" "$APP_IMAGE"; }; then
    dk "$name" load -q -i "$IMAGES_ARCHIVE" >/dev/null
  fi
  if ! { image_present "$sock" "$BUSYBOX_IMAGE" && image_present "$sock" "$APP_IMAGE"; }; then
    die "the test images did not show up in the $name engine"
  fi
  say "$name images" "loaded ($BUSYBOX_IMAGE, $APP_IMAGE)"
}

# ---------------------------------------------------------------------------------------------
# volume helper image: what a copy of a volume runs through an engine (GNU tar, findutils,
# coreutils, zstd, rsync, getfattr). Debian bookworm's Essential set plus zstd, rsync and attr
# (mmdebstrap's "essential" variant: no apt, half the time of minbase), imported on the classic
# engine, saved once and loaded everywhere (same image in every engine).
# SOURCE_DATE_EPOCH makes mmdebstrap's tarball the same bytes for the same mirror state.
# The image carries a label with the hash of its recipe: a changed recipe builds a new one.
# ---------------------------------------------------------------------------------------------
VOLUME_HELPER_IMAGE=transship-test/volume-helper:1
VOLUME_HELPER_LABEL=org.transship.testbed.spec
VOLUME_HELPER_MMDEBSTRAP=(
  --variant=essential --include=zstd,rsync,attr --mode=root
  --dpkgopt=force-unsafe-io # no fsync per file: the tree goes into a tarball right away
  '--dpkgopt=path-exclude=/usr/share/doc/*' '--dpkgopt=path-exclude=/usr/share/man/*'
  '--dpkgopt=path-exclude=/usr/share/info/*' '--dpkgopt=path-exclude=/usr/share/locale/*'
  bookworm - http://deb.debian.org/debian
)
VOLUME_HELPER_EPOCH=1672531200 # 2023-01-01

volume_helper_spec() {
  printf '%s\n' "$VOLUME_HELPER_EPOCH" "${VOLUME_HELPER_MMDEBSTRAP[@]}" 'CMD ["/bin/sh"]' |
    sha256sum | cut -c1-16
}

volume_helper_present() { # SOCKET SPEC
  local info
  info=$(curl -sf --max-time 5 --unix-socket "$1" "http://engine/images/$VOLUME_HELPER_IMAGE/json") || return 1
  [[ $info == *"\"$VOLUME_HELPER_LABEL\":\"$2\""* ]]
}

ensure_volume_helper_archive() { # SPEC -> path of the docker-archive
  local spec=$1 archive=$IMAGES_DIR/volume-helper-$1.tar
  if [[ ! -s $archive ]]; then
    mkdir -p "$IMAGES_DIR"
    if ! volume_helper_present "$RUN/classic.sock" "$spec"; then
      # a whole tarball first: an import fed by a failed mmdebstrap would be tagged and labelled
      local rootfs=$IMAGES_DIR/volume-helper-rootfs.tar.tmp
      SOURCE_DATE_EPOCH=$VOLUME_HELPER_EPOCH mmdebstrap -q "${VOLUME_HELPER_MMDEBSTRAP[@]}" \
        >"$rootfs" 2>>"$LOG_DIR/volume-helper.log" || {
        rm -f "$rootfs"
        tail -n 20 "$LOG_DIR/volume-helper.log" >&2
        die "mmdebstrap failed to build the root file system of $VOLUME_HELPER_IMAGE, see $LOG_DIR/volume-helper.log"
      }
      dk classic import --change 'CMD ["/bin/sh"]' --change "LABEL $VOLUME_HELPER_LABEL=$spec" \
        --message 'transship test volume helper' "$rootfs" "$VOLUME_HELPER_IMAGE" >/dev/null
      rm -f "$rootfs"
    fi
    dk classic save -o "$archive.tmp" "$VOLUME_HELPER_IMAGE"
    mv "$archive.tmp" "$archive"
    # archives of earlier recipes
    find "$IMAGES_DIR" -maxdepth 1 -name 'volume-helper-*.tar' ! -name "volume-helper-$spec.tar" -delete
  fi
  echo "$archive"
}

ensure_volume_helper() { # NAME
  local name=$1 sock=$RUN/$1.sock spec archive
  spec=$(volume_helper_spec)
  if volume_helper_present "$sock" "$spec"; then
    say "$name helper" "already loaded ($VOLUME_HELPER_IMAGE)"
    return
  fi
  local old
  old=$(dk "$name" image inspect -f '{{.Id}}' "$VOLUME_HELPER_IMAGE" 2>/dev/null || true)
  archive=$(ensure_volume_helper_archive "$spec")
  volume_helper_present "$sock" "$spec" || dk "$name" load -q -i "$archive" >/dev/null
  volume_helper_present "$sock" "$spec" || die "$VOLUME_HELPER_IMAGE did not show up in the $name engine"
  # an image of an earlier recipe lost its tag to the new one (a container may still use it)
  if [[ -n $old && $old != "$(dk "$name" image inspect -f '{{.Id}}' "$VOLUME_HELPER_IMAGE")" ]]; then
    dk "$name" rmi "$old" >/dev/null 2>&1 || true
  fi
  say "$name helper" "loaded ($VOLUME_HELPER_IMAGE)"
}

# ---------------------------------------------------------------------------------------------
# testbed.json
# ---------------------------------------------------------------------------------------------
engine_json() { # NAME VIA
  local name=$1 via=$2 sock=$RUN/$1.sock headers info version api driver store
  headers=$(curl -sfi --max-time 5 --unix-socket "$sock" http://engine/_ping)
  version=$(header_value Server <<<"$headers")
  version=${version#Docker/}
  version=${version%% *}
  api=$(header_value Api-Version <<<"$headers")
  info=$(curl -sf --max-time 10 --unix-socket "$sock" http://engine/info)
  driver=$(grep -o '"Driver":"[^"]*"' <<<"$info" | head -n 1 | cut -d'"' -f4)
  if [[ $info == *io.containerd.snapshotter.v1* ]]; then store=containerd; else store=classic; fi
  printf '    "%s": {\n' "$name"
  printf '      "socket": "%s",\n' "$sock"
  printf '      "host": "unix://%s",\n' "$sock"
  printf '      "version": "%s",\n' "$version"
  printf '      "apiVersion": "%s",\n' "$api"
  printf '      "imageStore": "%s",\n' "$store"
  printf '      "storageDriver": "%s",\n' "$driver"
  printf '      "via": "%s",\n' "$via"
  printf '      "dataRoot": "%s",\n' "$STATE/$name"
  printf '      "containerdSocket": "%s",\n' "$RUN/$name.containerd.sock"
  printf '      "log": "%s"\n' "$LOG_DIR/$name-dockerd.log"
  printf '    }'
}

registry_json() { # NAME PORT SCHEME  (leaves the object open for more fields)
  local name=$1 port=$2 scheme=$3
  printf '    "%s": {\n' "$name"
  printf '      "host": "localhost:%s",\n' "$port"
  printf '      "url": "%s://localhost:%s",\n' "$scheme" "$port"
  printf '      "storage": "%s",\n' "$REGISTRY_DIR/$name"
  printf '      "config": "%s",\n' "$STATE/conf/$name-registry.yml"
  printf '      "pidFile": "%s",\n' "$RUN/$name-registry.pid"
  printf '      "log": "%s"' "$LOG_DIR/$name-registry.log"
}

write_testbed_json() {
  mkdir -p "$OUT_DIR"
  local fp password
  fp=$(ssh-keygen -lf "$SSH_DIR/ssh_host_ed25519_key.pub" | cut -d' ' -f2)
  read -r password <"$AUTH_DIR/password"
  {
    printf '{\n'
    printf '  "stateDir": "%s",\n' "$STATE"
    printf '  "runDir": "%s",\n' "$RUN"
    printf '  "docker": "/usr/bin/docker",\n'
    printf '  "engines": {\n'
    engine_json classic local
    printf ',\n'
    engine_json remote ssh
    printf ',\n'
    engine_json containerd local
    printf '\n  },\n'
    printf '  "ssh": {\n'
    printf '    "host": "%s",\n' "$SSH_HOST"
    printf '    "port": %s,\n' "$SSH_PORT"
    printf '    "user": "root",\n'
    printf '    "identityFile": "%s",\n' "$SSH_DIR/id_ed25519"
    printf '    "knownHosts": "%s",\n' "$SSH_DIR/known_hosts"
    printf '    "wrongKnownHosts": "%s",\n' "$SSH_DIR/wrong_known_hosts"
    printf '    "hostKeyFingerprint": "%s",\n' "$fp"
    printf '    "engine": "remote",\n'
    printf '    "users": {\n'
    printf '      "docker": "%s",\n' "$BED_DOCKER_USER"
    printf '      "sudo": "%s",\n' "$BED_SUDO_USER"
    printf '      "sudoPassword": "%s"\n' "$BED_PASSWORD_USER"
    printf '    }\n'
    printf '  },\n'
    printf '  "images": {\n'
    printf '    "busybox": "%s",\n' "$BUSYBOX_IMAGE"
    printf '    "app": "%s",\n' "$APP_IMAGE"
    printf '    "volumeHelper": "%s"\n' "$VOLUME_HELPER_IMAGE"
    printf '  },\n'
    printf '  "imagesArchive": "%s",\n' "$IMAGES_ARCHIVE"
    printf '  "registries": {\n'
    registry_json plain "$PLAIN_REGISTRY_PORT" http
    printf '\n    },\n'
    registry_json secure "$SECURE_REGISTRY_PORT" https
    printf ',\n'
    printf '      "ca": "%s",\n' "$TLS_DIR/ca.crt"
    printf '      "username": "%s",\n' "$REGISTRY_USER"
    printf '      "password": "%s",\n' "$password"
    printf '      "htpasswd": "%s"\n' "$AUTH_DIR/htpasswd"
    printf '    }\n'
    printf '  }\n'
    printf '}\n'
  } >"$OUT.tmp"
  mv "$OUT.tmp" "$OUT"
  say "testbed.json" "written to ${OUT#"$REPO"/}"
}

# ---------------------------------------------------------------------------------------------
main() {
  mkdir -p "$STATE" "$RUN" "$LOG_DIR"
  chmod 755 "$STATE" "$RUN"
  ensure_packages
  ensure_trixie
  ensure_docker_group

  ensure_containerd classic /usr/bin/containerd "$BOOKWORM_PATH"
  ensure_engine classic /usr/sbin/dockerd "$BOOKWORM_PATH" \
    "{\"deprecated-key-path\": \"$STATE/conf/classic-key.json\"}"

  ensure_containerd remote /usr/bin/containerd "$BOOKWORM_PATH"
  ensure_engine remote /usr/sbin/dockerd "$BOOKWORM_PATH" \
    "{\"deprecated-key-path\": \"$STATE/conf/remote-key.json\"}"

  ensure_containerd containerd "$TRIXIE_ROOT/usr/bin/containerd" "$TRIXIE_PATH"
  ensure_engine containerd "$TRIXIE_ROOT/usr/sbin/dockerd" "$TRIXIE_PATH" \
    '{"features": {"containerd-snapshotter": true}}'
  local status
  status=$(curl -sf --max-time 10 --unix-socket "$RUN/containerd.sock" http://engine/info)
  [[ $status == *io.containerd.snapshotter.v1* ]] ||
    die "the containerd engine does not use the containerd image store, see $LOG_DIR/containerd-dockerd.log"

  ensure_images classic
  ensure_images remote
  ensure_images containerd
  ensure_volume_helper classic
  ensure_volume_helper remote
  ensure_volume_helper containerd

  ensure_ssh_keys
  ensure_sshd
  ensure_socket_access
  ensure_users

  ensure_registry plain "$PLAIN_REGISTRY_PORT" registry_ready "http://127.0.0.1:$PLAIN_REGISTRY_PORT/v2/"
  ensure_registry_tls
  ensure_registry_trust
  ensure_registry_auth
  ensure_registry secure "$SECURE_REGISTRY_PORT" secure_registry_ready "https://localhost:$SECURE_REGISTRY_PORT/v2/"

  write_testbed_json
}

main "$@"
