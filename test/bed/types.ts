// The shape of test/.state/testbed.json, written by test/bed/up.sh and handed to the end-to-end
// tests by test/bed/global-setup.ts (read it with testbed() from test/helpers/testbed.ts).

export type EngineName = 'classic' | 'containerd' | 'remote'

export interface TestbedEngine {
  /** unix socket of the engine's API */
  socket: string
  /** the same as a DOCKER_HOST value: unix:///run/transship-testbed/NAME.sock */
  host: string
  /** engine version as the engine reports it, e.g. 20.10.24+dfsg1 or 26.1.5+dfsg1 */
  version: string
  /** highest API version the engine speaks, e.g. 1.41 or 1.45 */
  apiVersion: string
  /** classic (graph driver, overlay2) or containerd (the containerd image store) */
  imageStore: 'classic' | 'containerd'
  storageDriver: string
  /** local: reach it through its socket; ssh: it plays a remote host, reach it through the bed's sshd */
  via: 'local' | 'ssh'
  dataRoot: string
  containerdSocket: string
  /** the engine's log file */
  log: string
}

export interface TestbedSsh {
  host: string
  port: number
  user: string
  /** private key that the sshd accepts */
  identityFile: string
  /** known_hosts with the sshd's real host key for [host]:port */
  knownHosts: string
  /** known_hosts with a different key for [host]:port: the host-key check must refuse it */
  wrongKnownHosts: string
  /** SHA256:... fingerprint of the sshd's host key */
  hostKeyFingerprint: string
  /** the engine an SSH session on this host sees as its default (DOCKER_HOST) */
  engine: EngineName
  /** non-root local users that log in with the same identityFile (user stays root) */
  users: TestbedUsers
}

/**
 * Local users of the bed's machine (login shell /bin/bash, a home directory), reached through
 * the bed's sshd with its client key. The engines' sockets are root:docker 0660.
 */
export interface TestbedUsers {
  /** in group docker (uses every engine's socket), no sudo: tsdocker */
  docker: string
  /** in group docker, passwordless sudo (sudo -n works): tssudo */
  sudo: string
  /**
   * in group docker, sudo that asks for a password (sudo -n fails with "a password is
   * required"): tspass. Its random password is in STATE/users/tspass.password (root-only).
   */
  sudoPassword: string
}

export type RegistryName = 'plain' | 'secure'

/**
 * A Distribution registry (Debian's docker-registry 2.8) with deletes enabled. plain: HTTP, no
 * auth (Docker allows plain HTTP to loopback registries by default). secure: HTTPS with a
 * certificate from the bed's own CA (for localhost and 127.0.0.1) and htpasswd auth; every engine
 * trusts that CA through /etc/docker/certs.d/{localhost,127.0.0.1}:5443/ca.crt.
 */
export interface TestbedRegistry {
  /** host:port as used in image references, e.g. localhost:5000 */
  host: string
  /** base URL, e.g. http://localhost:5000 (the API is under /v2/) */
  url: string
  /** the registry's storage root (filesystem driver) */
  storage: string
  /** the registry's config.yml */
  config: string
  pidFile: string
  /** the registry's log file */
  log: string
  /** secure only: the CA certificate (PEM) that signed the registry's certificate */
  ca?: string
  /** secure only: the one user of the htpasswd file */
  username?: string
  /** secure only: that user's password (random, made once per bed) */
  password?: string
  /** secure only: the htpasswd file (bcrypt) */
  htpasswd?: string
}

export interface Testbed {
  stateDir: string
  runDir: string
  /** the docker CLI (Debian's, 20.10) used to prepare the bed and for test assertions */
  docker: string
  engines: Record<EngineName, TestbedEngine>
  ssh: TestbedSsh
  /** references of the test images, present in every engine */
  images: {
    app: string
    /** busybox only: a helper image that lacks GNU tar */
    busybox: string
    /**
     * Debian bookworm minbase with GNU tar, GNU findutils, coreutils, zstd, rsync and attr
     * (getfattr/setfattr); CMD /bin/sh. Not in imagesArchive (it has its own archive).
     */
    volumeHelper: string
  }
  /** docker-archive (docker save) of all test images, as loaded into every engine */
  imagesArchive: string
  registries: Record<RegistryName, TestbedRegistry>
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** the test bed, or null when it is not available (see testbedSkipReason) */
    testbed: null | Testbed
    testbedSkipReason: null | string
  }
}
