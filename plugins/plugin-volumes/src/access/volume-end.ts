/**
 * How one end of a volume transfer reaches the volume's data, per host: as root over the host's shell, through
 * `sudo -n`, or in a helper container on the host's engine (for SSH users who may use the engine but are not
 * root, and for volumes of other drivers, which only the engine can mount). `auto` picks the first that works.
 */
import {type Host, type HostAccess, type RemoteShell, UsageError} from '@transship/kit'
import {engineShell} from '@transship/kit/engine'

import {HELPER_ROOT, startHelper} from './helper-container.js'
import {probeSudo, sudoRefusal, sudoShell} from './sudo-shell.js'
import {parseTools, probeTools, TOOLS_PROBE, type VolumeTools} from './tools.js'

export const DEFAULT_HELPER_IMAGE = 'debian:bookworm-slim'

export interface VolumeEnd {
  /** how the data is reached, resolved (never 'auto') */
  access: 'engine' | 'root' | 'sudo'
  /** removes the helper container, if any; idempotent */
  close(): Promise<void>
  /** one line for the plan: 'root over SSH', 'sudo -n as deploy', 'helper container debian:bookworm-slim on the engine' */
  describe: string
  /** the host's name, for messages */
  host: string
  /** what this path cannot keep, in words for the plan and report; empty when nothing */
  limits: string[]
  /** the volume's data directory as `shell` sees it (the Mountpoint, or /volume in the helper) */
  root: string
  /** runs commands with full rights over the volume's data */
  shell: RemoteShell
  /** tools found where the commands run: GNU tar is required; the others are optional */
  tools: VolumeTools & {gnuTar: true}
}

export interface VolumeRef {
  Driver: string
  Mountpoint: string
  Name: string
  /** the driver's options: a local volume with a `type` or `device` (tmpfs, nfs, a bind) is mounted by the engine */
  Options?: null | Record<string, string>
}

/**
 * Whether the volume's data is a plain directory on the host: a local volume without mount options. Any other
 * exists only where the engine mounts it (a tmpfs, an NFS share, another driver's storage): what is at its
 * Mountpoint on the host is not its data.
 */
function onHostDisk(volume: VolumeRef): boolean {
  return volume.Driver === 'local' && !volume.Options?.type && !volume.Options?.device
}

export interface VolumeEndOptions {
  /** how the data is reached; default: the host's `access` (recipe), else auto */
  access?: HostAccess
  /** the image of the helper container (access engine); default: the host's `helperImage`, else DEFAULT_HELPER_IMAGE */
  helperImage?: string
  /** the end is only read: the helper mounts the volume read-only */
  readOnly: boolean
  /** aborts the probes; once the end is open, also removes its helper */
  signal?: AbortSignal
}

/**
 * Opens the access to `volume`'s data on `host`: decides the access (auto: uid 0 → root, `sudo -n` works → sudo,
 * else engine; always engine for a volume that the engine mounts: another driver's, or a local one with mount
 * options), checks it before anything changes
 * (UsageError when it cannot work) and probes the tools there. Close the end when done.
 */
/** The access to use on `host`: the one asked for, else the host's (recipe), else auto. */
export function accessOn(host: Host, requested: HostAccess | undefined): HostAccess {
  return requested ?? host.access?.mode ?? 'auto'
}

export async function openVolumeEnd(host: Host, volume: VolumeRef, options: VolumeEndOptions): Promise<VolumeEnd> {
  const {signal} = options
  const requested = accessOn(host, options.access)
  const local = onHostDisk(volume)
  if (!local && (requested === 'root' || requested === 'sudo')) {
    const what =
      volume.Driver === 'local'
        ? `is mounted by the engine (type ${volume.Options?.type ?? 'bind'})`
        : `uses the ${volume.Driver} driver`
    throw new UsageError(
      `access ${requested}: ${volume.Name} on ${host.name} ${what}; only the engine can mount its data`,
      {code: 'VOLUME_DRIVER_UNSUPPORTED', suggestions: ['use access: engine (or auto)']},
    )
  }

  if (requested === 'engine' || !local) return openEngineEnd(host, volume, options)

  const who = await whoAmI(host.shell, host.name, signal)
  if (requested === 'root' || (requested === 'auto' && who.uid === 0)) {
    if (who.uid !== 0) {
      throw new UsageError(`access root: ${host.name}'s commands run as ${who.user} (uid ${who.uid}), not as root`, {
        code: 'VOLUME_NEEDS_ROOT',
        suggestions: ['reach the host as root (ssh://root@host)', 'or use access: sudo, engine or auto'],
      })
    }

    const where = host.endpoint.kind === 'ssh' ? 'root over SSH' : 'root on this machine'
    return shellEnd(host, 'root', host.shell, volume, where, {probed: who.tools, signal})
  }

  const sudo = await probeSudo(host.shell, signal)
  if (sudo.ok) return shellEnd(host, 'sudo', sudoShell(host.shell), volume, `sudo -n as ${who.user}`, {signal})
  if (requested === 'sudo') throw sudoRefusal(host.name, who.user, sudo)
  return openEngineEnd(host, volume, options)
}

/** Who the shell runs as, and (in the same round trip) the tools it has. */
async function whoAmI(
  shell: RemoteShell,
  host: string,
  signal?: AbortSignal,
): Promise<{tools: ReturnType<typeof parseTools>; uid: number; user: string}> {
  const {code, stderr, stdout} = await shell.run(`id -u; id -un; echo ::WHO::; ${TOOLS_PROBE}`, {signal})
  const [who = '', probe = ''] = stdout.split('::WHO::\n')
  const [uid = '', user = ''] = who.trim().split('\n')
  if (!/^\d+$/.test(uid.trim())) {
    throw new UsageError(`${host}: \`id -u\` failed (exit ${code}): ${stderr.trim()}`, {code: 'VOLUME_NEEDS_ROOT'})
  }

  const tools = parseTools({code, stderr, stdout: probe}, host)
  return {tools, uid: Number(uid.trim()), user: user.trim() || `uid ${uid.trim()}`}
}

async function shellEnd(
  host: Host,
  access: 'root' | 'sudo',
  shell: RemoteShell,
  volume: VolumeRef,
  describe: string,
  options: {probed?: ReturnType<typeof parseTools>; signal?: AbortSignal},
): Promise<VolumeEnd> {
  // the tools as the SSH user found them serve root; through sudo, PATH may differ: probed again
  const {tar, tools} = options.probed ?? (await probeTools(shell, host.name, options.signal))
  if (!tools.gnuTar) {
    throw new UsageError(`${host.name} has no GNU tar (found: ${tar || 'no tar'})`, {
      code: 'VOLUME_TAR_MISSING',
      suggestions: [
        `install it on ${host.name} (Debian: apt-get install tar; Alpine: apk add tar)`,
        'or use access: engine (a helper container with GNU tar reads and writes the volume)',
      ],
    })
  }

  return {
    access,
    async close() {},
    describe,
    host: host.name,
    limits: toolLimits(host.name, tools),
    root: volume.Mountpoint,
    shell,
    tools: {...tools, gnuTar: true},
  }
}

/** What a missing optional tool costs, in words for the plan and the report. */
function toolLimits(where: string, tools: VolumeTools): string[] {
  const limits: string[] = []
  if (!tools.getfattr) limits.push(`xattrs and ACLs are copied but not compared (${where} has no getfattr)`)
  if (!tools.sha256sum && !tools.openssl) {
    limits.push(`file contents are not compared (${where} has neither sha256sum nor openssl)`)
  }

  return limits
}

async function openEngineEnd(host: Host, volume: VolumeRef, options: VolumeEndOptions): Promise<VolumeEnd> {
  const {signal} = options
  const image = options.helperImage ?? host.access?.helperImage ?? DEFAULT_HELPER_IMAGE
  const helper = await startHelper(host.engine, {image, readOnly: options.readOnly, signal, volume: volume.Name})
  const close = async (): Promise<void> => {
    signal?.removeEventListener('abort', onAbort)
    await helper.remove()
  }

  const onAbort = (): void => {
    close().catch(() => {})
  }

  signal?.addEventListener('abort', onAbort, {once: true})
  try {
    const shell = engineShell(host.engine, helper.id, host.shell.engineSocket)
    const [{tar, tools}, limits] = await Promise.all([
      probeTools(shell, `the helper on ${host.name}`, signal),
      engineLimits(host, signal),
    ])
    if (!tools.gnuTar) {
      throw new UsageError(`the helper image ${image} has no GNU tar (found: ${tar || 'no tar'})`, {
        code: 'VOLUME_TAR_MISSING',
        suggestions: [`name an image with GNU tar as helperImage (${DEFAULT_HELPER_IMAGE} has it)`],
      })
    }

    return {
      access: 'engine',
      close,
      describe: `helper container ${image} on the engine`,
      host: host.name,
      limits: [...limits, ...toolLimits(`the helper ${image} on ${host.name}`, tools)],
      root: HELPER_ROOT,
      shell,
      tools: {...tools, gnuTar: true},
    }
  } catch (error) {
    await close()
    throw error
  }
}

/**
 * What the helper cannot keep. It runs as root with Docker's default capabilities: owners, modes, hardlinks,
 * sparse files, device nodes (CAP_MKNOD), user.* and security.* xattrs and ACLs are kept; trusted.* xattrs need
 * CAP_SYS_ADMIN, which it is not given (it would let the container mount and much more). An engine that remaps
 * users (userns-remap, rootless) stores other owners than the ones the helper sees.
 */
async function engineLimits(host: Host, signal?: AbortSignal): Promise<string[]> {
  const limits = ['trusted.* xattrs (the helper lacks CAP_SYS_ADMIN)']
  const info = await host.engine.json<{SecurityOptions?: string[]}>({path: '/info', signal})
  const security = info.SecurityOptions ?? []
  if (security.some((option) => option.includes('name=userns'))) {
    limits.push('file owners (the engine remaps users: userns-remap)')
  } else if (security.some((option) => option.includes('name=rootless'))) {
    limits.push('file owners (the engine is rootless: owners are mapped into its user range)')
  }

  return limits
}
