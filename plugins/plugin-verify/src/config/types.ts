/**
 * A verification config: container-structure-test's v2 schema (files written for it are accepted
 * unchanged), plus what that tool's users ask for: a file's sha256, a symlink's target, waiting for a log
 * line, a healthy state or a TCP port, a per-test timeout, and "the image has a healthcheck".
 */

export interface EnvVar {
  isRegex?: boolean
  key: string
  /** "" when omitted, as Go leaves it */
  value: string
}

export interface CommandTest {
  args?: string[]
  command: string
  envVars?: EnvVar[]
  excludedError?: string[]
  excludedOutput?: string[]
  exitCode?: number
  expectedError?: string[]
  expectedOutput?: string[]
  name: string
  /** the network the command's container joins (default: containerRunOptions.network, else the engine's default) */
  network?: string
  /** commands run (each in its own container, committed) before the test; their exit codes are not checked (as CST) */
  setup?: string[][]
  /** commands run after the test (in the test's image); a failing one is a warning, as in CST */
  teardown?: string[][]
  /** seconds (default 60): a command still running then is killed and the test fails */
  timeout?: number
}

export interface FileExistenceTest {
  /** owner, group, other or any */
  isExecutableBy?: 'any' | 'group' | 'other' | 'owner'
  gid?: number
  /** symlinks: the target it must point at (extension) */
  linkTarget?: string
  name: string
  path: string
  /** Go's FileMode.String(), e.g. -rwxr-xr-x, drwxr-xr-x, Lrwxrwxrwx */
  permissions?: string
  /** hex sha256 of the content (extension) */
  sha256?: string
  shouldExist?: boolean
  uid?: number
}

export interface FileContentTest {
  excludedContents?: string[]
  expectedContents?: string[]
  name: string
  path: string
}

export interface MetadataTest {
  cmd?: string[]
  entrypoint?: string[]
  envVars?: EnvVar[]
  exposedPorts?: string[]
  /** the image has a HEALTHCHECK (extension) */
  healthcheck?: boolean
  labels?: EnvVar[]
  /** only the keys count (CST reads them as env vars: `- key: NAME`) */
  unboundEnvVars?: EnvVar[]
  unexposedPorts?: string[]
  unmountedVolumes?: string[]
  user?: string
  volumes?: string[]
  workdir?: string
}

/** CST's license check: copyright files must not mention a banned license (AGPL, WTFPL). */
export interface LicenseTest {
  /** check /usr/share/doc/<package>/copyright of every package directory */
  debian?: boolean
  /** more files to check */
  files?: string[]
}

/** Runs the image (with its own entrypoint and command) and waits for something (extension). */
export interface WaitTest {
  /** arguments replacing the image's CMD */
  args?: string[]
  envVars?: EnvVar[]
  /** a regex a log line (stdout or stderr) must match */
  log?: string
  name: string
  /** the network the container joins (default: containerRunOptions.network, else the engine's default) */
  network?: string
  /** the container's healthcheck reports healthy */
  healthy?: boolean
  /** a TCP port inside the container accepts connections (checked from inside its network namespace) */
  port?: number
  /** seconds (default 60) */
  timeout?: number
}

/** How the containers of command and wait tests run (CST's docker driver applies them the same way). */
export interface ContainerRunOptions {
  /** run commands with a TTY (their stdout and stderr then come as one stream, stdout) */
  allocateTty?: boolean
  /** Docker `Binds`: `SOURCE:TARGET[:OPTIONS]`, SOURCE a path of the engine's host or a volume name */
  bindMounts?: string[]
  /** Linux capabilities added (--cap-add) */
  capabilities?: string[]
  /** a dotenv file on this machine (relative: to the working directory, else to the test file) */
  envFile?: string
  /** names of variables of this process's environment passed on (unset or empty ones are not) */
  envVars?: string[]
  /** the network containers join (extension): none, host, bridge, default or a network's name */
  network?: string
  privileged?: boolean
  user?: string
}

export interface VerifyConfig {
  commandTests?: CommandTest[]
  containerRunOptions?: ContainerRunOptions
  fileContentTests?: FileContentTest[]
  fileExistenceTests?: FileExistenceTest[]
  globalEnvVars?: EnvVar[]
  licenseTests?: LicenseTest[]
  metadataTest?: MetadataTest
  schemaVersion: string
  waitTests?: WaitTest[]
}

/** The outcome of one test. */
export interface TestResult {
  /** expected vs actual, one line each, for a failure */
  diff?: string[]
  /** what went wrong (failures and errors) */
  message?: string
  name: string
  seconds: number
  status: 'error' | 'fail' | 'pass' | 'skip'
  /** commandTests, fileExistenceTests, … */
  suite: string
  /** what went wrong without changing the verdict (as in CST: a setup command's exit code, a failing teardown) */
  warnings?: string[]
}

export interface VerifyReport {
  /** the engine's host */
  host: string
  /** the image reference checked */
  image: string
  /** the image ID (and its repo digests) the results belong to */
  imageId: string
  repoDigests: string[]
  results: TestResult[]
  seconds: number
}
