/**
 * The image config a rootfs build writes itself (never `docker import`, which stamps the current time): the
 * runtime settings `docker import --change` can set and more, `created` = the epoch, one history entry, and
 * the layer's diffID. Serialised with a fixed key order and no whitespace, so the same inputs always give the
 * same bytes, hence the same image ID.
 */
import {createHash} from 'node:crypto'
import {z} from 'zod'

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/
const NANOSECONDS: Record<string, number> = {h: 3.6e12, m: 6e10, ms: 1e6, s: 1e9}

const duration = z
  .string()
  .regex(DURATION, {message: 'a duration such as 30s, 500ms, 2m or 1h'})
  .transform((value) => {
    const [, amount, unit] = DURATION.exec(value)!
    return Math.round(Number(amount) * NANOSECONDS[unit!]!)
  })

const command = z
  .union([z.string().min(1), z.array(z.string())])
  .describe('An exec form list (["nginx", "-g", "daemon off;"]) or a string run by /bin/sh -c.')

export const imageConfigSchema = z
  .strictObject({
    cmd: command.optional().describe('Default command (CMD).'),
    entrypoint: command.optional().describe('Entrypoint (ENTRYPOINT); [] clears it.'),
    env: z
      .record(z.string().regex(/^[^=\s]+$/, {message: 'a variable name'}), z.string())
      .optional()
      .describe(
        'Environment variables (ENV), e.g. {PATH: /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}.',
      ),
    healthcheck: z
      .strictObject({
        interval: duration.optional().describe('Time between checks, e.g. 30s.'),
        retries: z.number().int().min(0).optional().describe('Consecutive failures before unhealthy.'),
        startInterval: duration.optional().describe('Time between checks during the start period.'),
        startPeriod: duration.optional().describe('Grace period before failures count.'),
        test: command.describe('The check: exec form list, or a string run by the shell (CMD-SHELL).'),
        timeout: duration.optional().describe('Time a check may take.'),
      })
      .optional()
      .describe('HEALTHCHECK (kept in the Docker config; OCI has no field for it).'),
    labels: z.record(z.string(), z.string()).optional().describe('Labels (LABEL).'),
    ports: z
      .array(
        z
          .string()
          .regex(/^\d{1,5}(\/(tcp|udp|sctp))?$/, {message: 'a port such as 80 or 53/udp'})
          .refine((value) => Number.parseInt(value, 10) >= 1 && Number.parseInt(value, 10) <= 65_535, {
            message: 'a port between 1 and 65535',
          }),
      )
      .optional()
      .describe('Exposed ports (EXPOSE), e.g. ["80", "53/udp"].'),
    stopSignal: z.string().min(1).optional().describe('Signal that stops the container (STOPSIGNAL), e.g. SIGQUIT.'),
    user: z.string().min(1).optional().describe('User (and group) the container runs as (USER).'),
    volumes: z.array(z.string().startsWith('/')).optional().describe('Anonymous volumes (VOLUME), absolute paths.'),
    workdir: z.string().startsWith('/').optional().describe('Working directory (WORKDIR), an absolute path.'),
  })
  .describe('Runtime settings of the image, as `docker import --change` sets them, and more.')

export type ImageConfigInput = z.input<typeof imageConfigSchema>
export type ImageConfigSpec = z.output<typeof imageConfigSchema>

export interface ImageConfigOptions {
  architecture: string
  /** the diffIDs of the layers, bottom first */
  diffIDs: string[]
  /** SOURCE_DATE_EPOCH, seconds */
  epoch: number
  /** the history entry's created_by: how the rootfs was made */
  createdBy: string
  spec?: ImageConfigSpec
  variant?: string
}

function execForm(value: string | string[] | undefined, shell = ['/bin/sh', '-c']): string[] | undefined {
  if (value === undefined) return undefined
  return typeof value === 'string' ? [...shell, value] : value
}

function set(values: string[] | undefined): Record<string, Record<string, never>> | undefined {
  if (!values) return undefined
  return Object.fromEntries(
    [...new Set(values.map((value) => (value.includes('/') ? value : `${value}/tcp`)))].sort().map((key) => [key, {}]),
  )
}

/** The `config` object, keys in the order Docker writes them; unset settings are left out. */
function runtimeConfig(spec: ImageConfigSpec = {}): Record<string, unknown> {
  const env = spec.env ? Object.entries(spec.env).map(([key, value]) => `${key}=${value}`) : undefined
  const healthcheck = spec.healthcheck && {
    Test:
      typeof spec.healthcheck.test === 'string'
        ? ['CMD-SHELL', spec.healthcheck.test]
        : ['CMD', ...spec.healthcheck.test],
    Interval: spec.healthcheck.interval,
    Timeout: spec.healthcheck.timeout,
    StartPeriod: spec.healthcheck.startPeriod,
    StartInterval: spec.healthcheck.startInterval,
    Retries: spec.healthcheck.retries,
  }
  const config: Record<string, unknown> = {
    User: spec.user,
    ExposedPorts: set(spec.ports),
    Env: env,
    Entrypoint: execForm(spec.entrypoint),
    Cmd: execForm(spec.cmd),
    Healthcheck: healthcheck,
    Volumes: spec.volumes ? Object.fromEntries([...new Set(spec.volumes)].sort().map((key) => [key, {}])) : undefined,
    WorkingDir: spec.workdir,
    Labels: spec.labels
      ? Object.fromEntries(Object.entries(spec.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : undefined,
    StopSignal: spec.stopSignal,
  }
  // JSON.stringify drops undefined members
  return config
}

/** sha256 of the runtime settings as the config writes them: equal settings, however written, are equal. */
export function runtimeConfigDigest(spec?: ImageConfigSpec): string {
  return `sha256:${createHash('sha256')
    .update(JSON.stringify(runtimeConfig(spec)))
    .digest('hex')}`
}

/** The epoch as Docker writes times: RFC 3339 in UTC, no fraction. */
export function epochTime(epoch: number): string {
  return new Date(epoch * 1000).toISOString().replace('.000Z', 'Z')
}

/** The config bytes: canonical, so equal inputs give equal image IDs. */
// the image spec's own key names
/* eslint-disable camelcase */
export function imageConfig(options: ImageConfigOptions): Buffer {
  const created = epochTime(options.epoch)
  return Buffer.from(
    JSON.stringify({
      architecture: options.architecture,
      config: runtimeConfig(options.spec),
      created,
      history: [{created, created_by: options.createdBy, comment: 'transship rootfs build'}],
      os: 'linux',
      rootfs: {type: 'layers', diff_ids: options.diffIDs},
      variant: options.variant,
    }),
  )
}
/* eslint-enable camelcase */

/** The Docker/OCI architecture name (and variant) of this machine's Node architecture. */
export function hostArchitecture(): {architecture: string; variant?: string} {
  switch (process.arch) {
    case 'arm': {
      return {architecture: 'arm', variant: 'v7'}
    }

    case 'arm64': {
      return {architecture: 'arm64', variant: 'v8'}
    }

    case 'ia32': {
      return {architecture: '386'}
    }

    case 'x64': {
      return {architecture: 'amd64'}
    }

    default: {
      return {architecture: process.arch}
    }
  }
}

/** The image's platform: of the Debian architecture bootstrapped, else of this machine. */
export function imagePlatform(debianArch?: string): {architecture: string; variant?: string} {
  return debianArch ? debianArchitecture(debianArch) : hostArchitecture()
}

/** Debian's architecture name (debootstrap --arch) as the image's. */
export function debianArchitecture(arch: string): {architecture: string; variant?: string} {
  const map: Record<string, {architecture: string; variant?: string}> = {
    amd64: {architecture: 'amd64'},
    arm64: {architecture: 'arm64', variant: 'v8'},
    armel: {architecture: 'arm', variant: 'v5'},
    armhf: {architecture: 'arm', variant: 'v7'},
    i386: {architecture: '386'},
    mips64el: {architecture: 'mips64le'},
    ppc64el: {architecture: 'ppc64le'},
    riscv64: {architecture: 'riscv64'},
    s390x: {architecture: 's390x'},
  }
  return map[arch] ?? {architecture: arch}
}
