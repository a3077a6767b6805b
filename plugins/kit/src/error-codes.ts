/**
 * The catalogue of error codes: every `code` a TransshipError can carry (it is the `error.code` of `--json`
 * output), once, with the process exit code it gives and what it means. The README's table is generated from
 * it (a test keeps the two equal). A code not listed here does not compile.
 */

/** Documented process exit codes (README "Exit codes"). */
export const ExitCode = {
  Ok: 0,
  /** a step failed (transfer, engine error, ...) */
  Failed: 1,
  /** bad usage or an invalid recipe: nothing was touched */
  Usage: 2,
  /** a host, engine or registry could not be reached */
  Unreachable: 3,
  /** authentication or host-key verification refused */
  Auth: 4,
  /** a verification found the result differs from the source */
  Verify: 5,
  /** interrupted (Ctrl-C / SIGTERM) */
  Interrupted: 130,
} as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

export interface ErrorCodeEntry {
  /** the exit code; a list when it depends on where the error arises (the usual one first) */
  exit: ExitCode | readonly ExitCode[]
  /** one line for people: what happened */
  meaning: string
}

const {Auth, Failed, Interrupted, Unreachable, Usage, Verify} = ExitCode

export const ERROR_CODES = {
  ARCHIVE_COMPRESS_FAILED: {
    exit: Failed,
    meaning: 'a compressor (gzip, zstd, bzip2, xz) failed while an archive was written',
  },
  ARCHIVE_CORRUPT: {
    exit: [Usage, Failed],
    meaning: 'an archive is damaged or contradicts itself (exit 1 when the stream came from an engine)',
  },
  ARCHIVE_NOT_IMAGE: {exit: Usage, meaning: 'the input is not an image archive'},
  ARCHIVE_TRUNCATED: {exit: Usage, meaning: 'an archive ends early: the file was cut short'},
  ARCHIVE_UNSAFE: {exit: Usage, meaning: 'a path in an archive leads outside it'},
  ARCHIVE_UNSUPPORTED: {
    exit: Usage,
    meaning: 'an image archive in a layout (or with a part) that transship or the engine does not read',
  },
  CHANGE_INVALID: {exit: Usage, meaning: '`image commit --change` is not an instruction a commit applies'},
  COMPRESSOR_MISSING: {exit: Usage, meaning: 'the compression tool the data needs (zstd, bzip2, xz) is not installed'},
  CONTAINER_NOT_FOUND: {exit: Failed, meaning: 'the host has no container of that name'},
  COPY_FAILED: {exit: Failed, meaning: 'an image could not be copied to one or more hosts'},
  COPY_VERIFY_FAILED: {exit: Verify, meaning: 'a copied image differs from the source on its destination'},
  ENGINE_ADDRESS_INVALID: {
    exit: Usage,
    meaning: 'an engine address (DOCKER_HOST, a docker context, the recipe) is not valid',
  },
  ENGINE_BAD_REQUEST: {exit: Failed, meaning: 'the engine refused a request (HTTP 400)'},
  ENGINE_CONFLICT: {exit: Failed, meaning: 'the engine reports a conflict (HTTP 409), e.g. a name in use'},
  ENGINE_ERROR: {exit: Failed, meaning: 'the engine refused a request (another HTTP 4xx)'},
  ENGINE_NOT_FOUND: {exit: Failed, meaning: 'the engine has no such object (HTTP 404)'},
  ENGINE_PERMISSION_DENIED: {exit: Unreachable, meaning: 'the Docker socket may not be opened by this user'},
  ENGINE_SERVER_ERROR: {exit: Failed, meaning: 'the engine failed (HTTP 5xx)'},
  ENGINE_STREAM_ERROR: {
    exit: Failed,
    meaning: 'an engine reported an error in the middle of a stream (pull, push, load)',
  },
  ENGINE_UNREACHABLE: {
    exit: Unreachable,
    meaning: 'no engine answers at the address, or the connection to it was lost',
  },
  FILE_NOT_FOUND: {exit: Usage, meaning: 'a file or directory given does not exist'},
  FILE_UNREADABLE: {exit: Usage, meaning: 'a file given cannot be read (permissions)'},
  FILE_WRONG_TYPE: {exit: Usage, meaning: 'a path given is a directory where a file is wanted, or the other way round'},
  FLAG_INVALID: {exit: Usage, meaning: 'a flag has a value it does not take, or flags that do not go together'},
  FLAG_MISSING: {exit: Usage, meaning: 'a flag the command needs is missing'},
  HOST_INVALID: {exit: Usage, meaning: 'a host is neither a host of the recipe nor an address'},
  HOSTS_UNREACHABLE: {
    exit: [Unreachable, Auth, Usage, Failed],
    meaning: '`hosts check`: some hosts cannot be used; the exit code is the most serious of their reasons',
  },
  IMAGE_INPUT: {
    exit: Usage,
    meaning: 'an image location (oci:, oci-archive:, docker-archive:) is missing, of the wrong kind or ambiguous',
  },
  IMAGE_NOT_FOUND: {
    exit: [Usage, Failed],
    meaning: 'the image named is not on the host, in the archive or in the registry',
  },
  INTERRUPTED: {exit: Interrupted, meaning: 'interrupted (Ctrl-C or SIGTERM): what was in flight was cancelled'},
  LAYOUT_INVALID: {exit: Usage, meaning: 'an OCI layout (oci:DIR) is not a directory'},
  LOAD_VERIFY_FAILED: {exit: Verify, meaning: "the engine's images after a load differ from the archive's"},
  MANIFEST_IS_LIST: {exit: Usage, meaning: 'a manifest list names another list where it needs a per-platform image'},
  MANIFEST_LIST_IMAGE: {exit: Usage, meaning: 'the manifest list does not name that image'},
  MANIFEST_LIST_REGISTRY: {exit: Usage, meaning: 'a manifest list may only name images of its own registry'},
  MANIFEST_LIST_UNKNOWN: {exit: Usage, meaning: 'there is no manifest list of that name'},
  NATIVE_UNAVAILABLE: {exit: Failed, meaning: 'the native addon (xattrs, device nodes, sparse files) is not built'},
  OUTPUT_DIRECTORY_MISSING: {exit: Usage, meaning: 'the directory of an output file does not exist'},
  PARTIAL_IMPOSSIBLE: {exit: Failed, meaning: 'an engine save stream could not be cut down to the missing layers'},
  PLAN_INVALID: {exit: Failed, meaning: 'the plugins made a plan with duplicate, missing or circular steps'},
  PLATFORM_NOT_FOUND: {exit: Usage, meaning: 'the image has no variant for the platform asked for'},
  PLUGIN_CONFLICT: {exit: Failed, meaning: 'two plugins (or a plugin and the core) claim the same recipe section'},
  PULL_MISSING: {exit: Failed, meaning: 'the engine pulled an image but does not list it'},
  PUSH_DIGEST_MISSING: {exit: Failed, meaning: 'the engine pushed an image but did not report its digest'},
  PUSH_NAME_MISSING: {exit: Usage, meaning: 'a push needs the name of the image in the registry (--as)'},
  PUSH_TARGET_MISSING: {exit: Usage, meaning: 'a push needs a registry (--to) or a full reference'},
  PUSH_VERIFY_FAILED: {exit: Verify, meaning: 'the registry holds another manifest than the one pushed'},
  RECIPE_INVALID: {exit: Usage, meaning: 'a recipe or test file is invalid; every issue is listed with its position'},
  RECIPE_NOT_A_FILE: {exit: Usage, meaning: 'the recipe path is a directory or another non-regular file'},
  RECIPE_NOT_FOUND: {exit: Usage, meaning: 'the recipe file does not exist'},
  RECIPE_NOTHING_TO_BUILD: {exit: Usage, meaning: 'the recipe has no rootfs section, or none of the images named'},
  RECIPE_NOTHING_TO_VERIFY: {exit: Usage, meaning: 'the recipe has no verify section'},
  RECIPE_UNREADABLE: {exit: Usage, meaning: 'the recipe file cannot be read'},
  REFERENCE_INVALID: {exit: Usage, meaning: 'an image reference is not valid, or names a digest where a tag is wanted'},
  REGISTRY_AUTH_FAILED: {exit: Failed, meaning: "a registry's token server gave no token"},
  REGISTRY_AUTH_INVALID: {
    exit: Failed,
    meaning: 'a registry asked for authentication in a way that cannot be followed',
  },
  REGISTRY_AUTH_LOOP: {exit: Failed, meaning: 'a registry keeps asking for authentication'},
  REGISTRY_AUTH_REQUIRED: {exit: Auth, meaning: 'a registry needs credentials and none were found'},
  REGISTRY_BLOB_UNKNOWN: {exit: Failed, meaning: 'the registry does not have that blob'},
  REGISTRY_BLOB_UPLOAD_INVALID: {exit: Failed, meaning: 'the registry refused a blob upload'},
  REGISTRY_BLOB_UPLOAD_UNKNOWN: {exit: Failed, meaning: 'the registry lost a blob upload'},
  REGISTRY_CA_INVALID: {exit: Usage, meaning: "a registry's CA file is not a PEM certificate"},
  REGISTRY_CA_MISSING: {exit: Usage, meaning: "a registry's CA file does not exist"},
  REGISTRY_CA_UNREADABLE: {exit: Usage, meaning: "a registry's CA file cannot be read"},
  REGISTRY_CREDENTIAL_HELPER_FAILED: {exit: Auth, meaning: 'the Docker credential helper failed'},
  REGISTRY_CREDENTIALS_MISSING: {exit: Usage, meaning: "a variable named in the recipe's registry auth is not set"},
  REGISTRY_DENIED: {
    exit: [Auth, Failed],
    meaning: 'the registry denied the account access to the repository (exit 1 when it says so outside a 403)',
  },
  REGISTRY_DIGEST_INVALID: {exit: Failed, meaning: "the registry found a blob's content does not match its digest"},
  REGISTRY_DIGEST_MISMATCH: {exit: Verify, meaning: 'the registry stored a manifest under another digest'},
  REGISTRY_DOCKER_CONFIG_INVALID: {exit: Usage, meaning: "Docker's config.json cannot be read or is malformed"},
  REGISTRY_ERROR: {exit: Failed, meaning: 'the registry refused a request (HTTP 4xx)'},
  REGISTRY_INSECURE_REQUIRED: {exit: Usage, meaning: 'a registry at a plain http:// URL needs `insecure: true`'},
  REGISTRY_MANIFEST_BLOB_UNKNOWN: {exit: Failed, meaning: 'the registry lacks a blob the pushed manifest names'},
  REGISTRY_MANIFEST_INVALID: {exit: Failed, meaning: 'the registry refused a manifest as invalid'},
  REGISTRY_MANIFEST_TOO_LARGE: {exit: Failed, meaning: 'a manifest is larger than 8 MiB'},
  REGISTRY_MANIFEST_UNKNOWN: {exit: Failed, meaning: 'the registry has no such manifest'},
  REGISTRY_MANIFEST_UNVERIFIED: {exit: Failed, meaning: 'the registry could not verify a manifest'},
  REGISTRY_NAME_INVALID: {exit: Failed, meaning: 'the registry refused the repository name'},
  REGISTRY_NAME_UNKNOWN: {exit: Failed, meaning: 'the registry has no such repository'},
  REGISTRY_NOT_FOUND: {exit: Failed, meaning: 'the registry has no such object (HTTP 404)'},
  REGISTRY_PAGINATION_NUMBER_INVALID: {exit: Failed, meaning: 'the registry refused a page size'},
  REGISTRY_RANGE_INVALID: {exit: Failed, meaning: 'the registry refused the range of a resumed upload'},
  REGISTRY_SERVER_ERROR: {exit: Failed, meaning: 'the registry failed (HTTP 5xx)'},
  REGISTRY_SIZE_INVALID: {exit: Failed, meaning: 'the registry found a blob of another size than declared'},
  REGISTRY_TAG_INVALID: {exit: Failed, meaning: 'the registry refused a tag'},
  REGISTRY_TLS_UNTRUSTED: {exit: Unreachable, meaning: "a registry's TLS certificate is not trusted"},
  REGISTRY_TOOMANYREQUESTS: {exit: Failed, meaning: 'the registry rate-limits this client'},
  REGISTRY_UNAUTHORIZED: {
    exit: [Auth, Failed],
    meaning: 'the registry refused the credentials (exit 1 when it says so outside a 401)',
  },
  REGISTRY_UNKNOWN: {exit: Usage, meaning: 'no registry of that name in the recipe'},
  REGISTRY_UNREACHABLE: {exit: Unreachable, meaning: 'a registry cannot be reached'},
  REGISTRY_UNSUPPORTED: {exit: Failed, meaning: 'the registry does not support the operation'},
  REGISTRY_URL_INVALID: {exit: Usage, meaning: "a registry's URL is not valid"},
  ROOTFS_BOOTSTRAP_FAILED: {exit: Failed, meaning: 'debootstrap or mmdebstrap failed'},
  ROOTFS_CHANGED: {exit: Usage, meaning: 'the rootfs source changed while it was read'},
  ROOTFS_DIFF_INPUT: {exit: Usage, meaning: '`rootfs diff`: an image to compare cannot be used'},
  ROOTFS_DIFFERENT: {exit: Verify, meaning: '`rootfs diff`: the two images differ'},
  ROOTFS_EMPTY: {exit: Usage, meaning: 'the rootfs source holds nothing'},
  ROOTFS_LOAD_MISMATCH: {exit: Verify, meaning: 'the engine holds other layers than the rootfs image loaded'},
  ROOTFS_MIRROR_UNREACHABLE: {exit: Unreachable, meaning: "the Debian mirror's Release file cannot be read"},
  ROOTFS_NAME_NOT_UTF8: {exit: Usage, meaning: 'a rootfs directory holds a file name that is not UTF-8'},
  ROOTFS_NEEDS_ROOT: {exit: Usage, meaning: 'debootstrap and mmdebstrap builds need root'},
  ROOTFS_NOT_A_DIRECTORY: {exit: Usage, meaning: 'a rootfs directory source is not a directory'},
  ROOTFS_NOT_FOUND: {exit: Usage, meaning: 'a rootfs directory source does not exist'},
  ROOTFS_OUTPUT_INVALID: {exit: Usage, meaning: 'a rootfs output is not one transship writes'},
  ROOTFS_REMOVE_REFUSED: {exit: Failed, meaning: 'refused to remove a bootstrap directory that is /'},
  ROOTFS_SPEC_INVALID: {exit: Usage, meaning: 'the rootfs settings (epoch, bootstrap options) are not valid'},
  ROOTFS_STILL_MOUNTED: {exit: Failed, meaning: 'a bootstrap directory was left: mounts inside it could not be undone'},
  ROOTFS_TARBALL_INVALID: {
    exit: Usage,
    meaning: 'a rootfs tarball is no valid base rootfs (duplicates, whiteouts, ...)',
  },
  ROOTFS_TARBALL_UNSAFE: {exit: Usage, meaning: 'an entry of a rootfs tarball climbs out of the root'},
  ROOTFS_TOOL_MISSING: {exit: Usage, meaning: 'the bootstrap tool is not installed'},
  SAVE_INCOMPLETE: {exit: Failed, meaning: 'an engine sent an archive without layers it had before'},
  SAVE_TARGET_INVALID: {exit: Usage, meaning: 'a save target exists and is not a file'},
  SKIPPED: {exit: Failed, meaning: '`apply` step reports: not started, because a step it needs did not complete'},
  SSH_AUTH_FAILED: {exit: Auth, meaning: 'the SSH server refused every key and method offered'},
  SSH_CONFIG_INVALID: {exit: Usage, meaning: 'the SSH config has a value transship cannot use'},
  SSH_CONNECTION_CLOSED: {exit: Unreachable, meaning: 'the SSH connection was closed'},
  SSH_CONNECTION_FAILED: {exit: Unreachable, meaning: 'the SSH connection failed'},
  SSH_CONNECTION_LOST: {exit: Unreachable, meaning: 'the SSH connection went away'},
  SSH_CONNECTION_REFUSED: {exit: Unreachable, meaning: 'nothing listens on the SSH port'},
  SSH_DESTINATION_INVALID: {exit: Usage, meaning: 'an SSH destination is not [user@]host[:port]'},
  SSH_EXEC_FAILED: {exit: Unreachable, meaning: 'the SSH server refused to run a command'},
  SSH_FORWARD_REFUSED: {exit: Unreachable, meaning: "the SSH server refused to forward the engine's socket"},
  SSH_HOST_KEY_MISMATCH: {exit: Auth, meaning: 'the SSH host key differs from the one in known_hosts'},
  SSH_HOST_KEY_REVOKED: {exit: Auth, meaning: 'the SSH host key is marked @revoked in known_hosts'},
  SSH_HOST_KEY_UNKNOWN: {exit: Auth, meaning: 'the SSH host key is not in known_hosts'},
  SSH_HOST_KEY_UNVERIFIED: {exit: Auth, meaning: 'the SSH host key could not be checked'},
  SSH_HOST_NOT_FOUND: {exit: Unreachable, meaning: 'the SSH host name is not found (DNS)'},
  SSH_KNOWN_HOSTS_UNREADABLE: {exit: Usage, meaning: 'a known_hosts file cannot be read'},
  SSH_OUTPUT_TOO_LARGE: {exit: Failed, meaning: 'a command over SSH wrote more output than transship reads'},
  SSH_TIMEOUT: {exit: Unreachable, meaning: 'connecting over SSH timed out'},
  SSH_UNREACHABLE: {exit: Unreachable, meaning: 'the SSH host is unreachable from here'},
  STEP_FAILED: {exit: Failed, meaning: '`apply`: steps did not complete; each step report says why'},
  TAG_MISMATCH: {
    exit: Failed,
    meaning: 'a tag points at another image than the one just made (tagged again meanwhile?)',
  },
  UNEXPECTED: {exit: Failed, meaning: '`apply` step reports: an unexpected error (a bug); the message says more'},
  USAGE: {exit: Usage, meaning: 'bad usage: the message says what to do'},
  VERIFY_ENV_FILE: {exit: Usage, meaning: 'a verification envFile is missing, unreadable, too large or malformed'},
  VERIFY_FAILED: {exit: Verify, meaning: 'verification checks failed'},
  VERIFY_INPUT: {exit: Usage, meaning: '`verify`: the target and flags do not go together'},
  VERIFY_NEEDS_ENGINE: {exit: Usage, meaning: 'checks that run commands or mounts need an engine, not an archive'},
  VOLUME_COMMAND_FAILED: {exit: Failed, meaning: 'a command on a volume host failed'},
  VOLUME_DIFFERENT: {exit: Verify, meaning: '`volume verify`: the volumes differ'},
  VOLUME_DRIVER_UNSUPPORTED: {
    exit: Usage,
    meaning: 'access root or sudo: the volume is mounted by the engine (another driver, or mount options)',
  },
  VOLUME_HELPER_IMAGE_MISSING: {
    exit: Usage,
    meaning: 'access `engine`: the helper image is not on the engine and could not be pulled',
  },
  VOLUME_HELPER_IMAGE_UNUSED: {
    exit: Usage,
    meaning: 'a helper image was named, but no host is reached through its engine',
  },
  VOLUME_IN_USE: {exit: Usage, meaning: 'a volume is used by containers; nothing was changed'},
  VOLUME_NAME_INVALID: {exit: Usage, meaning: 'not a valid volume name'},
  VOLUME_NEEDS_ROOT: {exit: Usage, meaning: 'access root: the SSH user is not root'},
  VOLUME_NOT_EMPTY: {
    exit: [Usage, Failed],
    meaning: 'the destination volume is not empty; nothing was changed (exit 1 in `apply`)',
  },
  VOLUME_NOT_FOUND: {exit: Usage, meaning: 'the host has no volume of that name'},
  VOLUME_PRESYNC_WITHOUT_QUIESCE: {exit: Usage, meaning: 'presync asked without quiesce: stop'},
  VOLUME_READ_FAILED: {exit: Failed, meaning: 'reading a volume failed'},
  VOLUME_RSYNC_REFUSED: {
    exit: Failed,
    meaning: 'a volume host asked transship to run something other than an rsync sender; nothing was run',
  },
  VOLUME_SAME: {exit: Usage, meaning: 'source and destination are the same volume on the same engine'},
  VOLUME_SUDO_MISSING: {exit: Usage, meaning: 'access `sudo`: the host has no sudo'},
  VOLUME_SUDO_PASSWORD: {
    exit: Usage,
    meaning: 'access `sudo`: `sudo -n` is refused (a password would be needed); nothing was changed',
  },
  VOLUME_TAR_MISSING: {exit: Usage, meaning: 'the volume host has no GNU tar'},
  VOLUME_TRANSFER_FAILED: {exit: Failed, meaning: 'the stream of a volume broke'},
  VOLUME_VERIFY_FAILED: {exit: Verify, meaning: 'a volume differs from its source after the copy or import'},
  VOLUME_WRITE_FAILED: {exit: Failed, meaning: 'writing a volume failed'},
  YAML_ALIAS_EXPANSION: {exit: Usage, meaning: 'a YAML file expands its aliases too much'},
  YAML_TOO_DEEP: {exit: Usage, meaning: 'a YAML file is nested too deep'},
  YAML_TOO_LARGE: {exit: Usage, meaning: 'a YAML file is too large'},
  YAML_TOO_MANY_ANCHORS: {exit: Usage, meaning: 'a YAML file has too many anchors and aliases'},
} as const satisfies Record<string, ErrorCodeEntry>

/** A code of the catalogue: a typo does not compile. */
export type ErrorCode = keyof typeof ERROR_CODES

/** The exit code(s) of a code, from the catalogue. */
export type ExitOf<C extends ErrorCode> = C extends ErrorCode
  ? (typeof ERROR_CODES)[C]['exit'] extends infer E
    ? E extends readonly ExitCode[]
      ? E[number]
      : E
    : never
  : never

/** The codes that exit with `E` (UsageError takes `CodeFor<2>`, AuthError `CodeFor<4>`...). */
export type CodeFor<E extends ExitCode> = {[C in ErrorCode]: E extends ExitOf<C> ? C : never}[ErrorCode]

/** The codes of UsageErrors (exit 2): what a function that reports bad input may be told to use. */
export type UsageCode = CodeFor<typeof ExitCode.Usage>
