// How a volume end is chosen and refused, with a fake host: a shell that answers the probes, and an engine that
// answers the helper container's requests and runs the exec'd probe (its output multiplexed, split across chunks).
import type {EngineClient, EngineFacts, EngineRequest, Host, RemoteShell, TransshipError} from '@transship/kit'

import {EngineError} from '@transship/kit'
import {Duplex} from 'node:stream'
import {describe, expect, it} from 'vitest'

import {openVolumeEnd, type VolumeEndOptions} from '../../src/access/volume-end.js'

const GNU_TOOLS = 'tar (GNU tar) 1.34\n::\nzstd\ngetfattr\nsha256sum\nopenssl\n::\nfind (GNU findutils) 4.9.0\n'
const BUSYBOX_TOOLS = 'tar (busybox) 1.35.0\n::\nsha256sum\n::\n\n'
const LOCAL = {Driver: 'local', Mountpoint: '/var/lib/docker/volumes/data/_data', Name: 'data'}

interface ShellScript {
  /** exit code of `sudo -n true`: 0 works, 1 refused, 127 no sudo */
  sudo?: number
  tools?: string
  uid?: number
  user?: string
}

function fakeShell(script: ShellScript): RemoteShell & {commands: string[]} {
  const commands: string[] = []
  return {
    commands,
    engineSocket: '/var/run/docker.sock',
    exec() {
      throw new Error('not used')
    },
    async run(command) {
      commands.push(command)
      if (command.startsWith('id -u; id -un; echo ::WHO::;')) {
        const who = `${script.uid ?? 0}\n${script.user ?? 'root'}\n::WHO::\n`
        return {code: 0, stderr: '', stdout: who + (script.tools ?? GNU_TOOLS)}
      }

      if (command.endsWith('sudo -n true')) {
        const code = script.sudo ?? 127
        return {code, stderr: code === 1 ? 'sudo: a password is required\n' : '', stdout: ''}
      }

      if (command.includes('tar --version')) return {code: 0, stderr: '', stdout: script.tools ?? GNU_TOOLS}
      throw new Error(`unexpected command: ${command}`)
    },
  }
}

/** the output of a multiplexed exec stream: each frame's header, then its bytes */
function frame(stream: 1 | 2, text: string): Buffer {
  const data = Buffer.from(text)
  const header = Buffer.alloc(8)
  header[0] = stream
  header.writeUInt32BE(data.length, 4)
  return Buffer.concat([header, data])
}

interface EngineScript {
  /** whether the engine has the helper image */
  hasImage?: boolean
  /** whether pulling the image works */
  pulls?: boolean
  securityOptions?: string[]
  /** stdout of the tools probe in the helper */
  tools?: string
}

function fakeEngine(script: EngineScript = {}): EngineClient & {bodies: Record<string, unknown>; calls: string[]} {
  const calls: string[] = []
  const bodies: Record<string, unknown> = {}
  let hasImage = script.hasImage ?? true
  const record = (request: EngineRequest) => {
    const call = `${request.method ?? 'GET'} ${request.path}`
    calls.push(call)
    if (request.body !== undefined) bodies[call] = request.body
    return call
  }

  return {
    apiVersion: '1.41',
    bodies,
    calls,
    async facts() {
      return {} as EngineFacts
    },
    host: 'edge',
    async json<T>(request: EngineRequest): Promise<T> {
      const call = record(request)
      if (call.startsWith('GET /images/')) {
        if (!hasImage) throw new EngineError('No such image', {host: 'edge', status: 404})
        return {} as T
      }

      if (call === 'POST /containers/create') return {Id: 'helper1'} as T
      if (call === 'POST /containers/helper1/exec') return {Id: 'exec1'} as T
      if (call === 'GET /exec/exec1/json') return {ExitCode: 0, Running: false} as T
      if (call === 'GET /info')
        return {SecurityOptions: script.securityOptions ?? ['name=seccomp,profile=default']} as T
      if (call === 'POST /containers/helper1/start' || call === 'DELETE /containers/helper1') return undefined as T
      throw new Error(`unexpected request: ${call}`)
    },
    async *messages(request) {
      record(request)
      if (!script.pulls) throw new EngineError('pull access denied', {host: 'edge', status: 404})
      hasImage = true
      yield {status: 'Downloaded newer image'}
    },
    async stream() {
      throw new Error('not used')
    },
    async upgrade(request) {
      record(request)
      // the output comes in pieces that cut frames and headers apart
      const output = Buffer.concat([frame(2, 'probing\n'), frame(1, script.tools ?? GNU_TOOLS)])
      const pieces = [output.subarray(0, 3), output.subarray(3, 13), output.subarray(13)]
      return new Duplex({
        read() {
          this.push(pieces.shift() ?? null)
        },
        write(_chunk, _encoding, callback) {
          callback()
        },
      })
    },
  }
}

function fakeHost(shell: RemoteShell, engine: EngineClient = fakeEngine()): Host {
  return {
    endpoint: {host: 'edge', kind: 'ssh', port: 22, socket: '/var/run/docker.sock', user: 'deploy'},
    engine,
    facts: {} as EngineFacts,
    id: 'ENGINE',
    name: 'edge',
    onThisMachine: false,
    shell,
  }
}

async function refusal(promise: Promise<unknown>): Promise<TransshipError> {
  return promise.then(
    () => {
      throw new Error('expected a refusal')
    },
    (error: unknown) => error as TransshipError,
  )
}

const writable: VolumeEndOptions = {readOnly: false}

describe('auto', () => {
  it('is root when the shell is uid 0: the Mountpoint, the host shell as it is, no helper', async () => {
    const shell = fakeShell({uid: 0})
    const engine = fakeEngine()
    const end = await openVolumeEnd(fakeHost(shell, engine), LOCAL, writable)
    expect(end).toMatchObject({
      access: 'root',
      describe: 'root over SSH',
      host: 'edge',
      limits: [],
      root: LOCAL.Mountpoint,
    })
    expect(end.shell).toBe(shell)
    expect(end.tools).toEqual({
      findPrintf: true,
      getfattr: true,
      gnuTar: true,
      openssl: true,
      rsync: false,
      sha256sum: true,
      zstd: true,
    })
    expect(engine.calls).toEqual([])
    await end.close()
  })

  it('is sudo when sudo -n works: every command goes through sudo -n sh -c, quoted', async () => {
    const shell = fakeShell({sudo: 0, uid: 1000, user: 'deploy'})
    const end = await openVolumeEnd(fakeHost(shell), LOCAL, writable)
    expect(end).toMatchObject({access: 'sudo', describe: 'sudo -n as deploy', root: LOCAL.Mountpoint})
    expect(shell.commands.at(-1)).toMatch(/^sudo -n sh -c 'tar --version/)
    await end.shell.run("echo 'it''s'").catch(() => {})
    expect(shell.commands.at(-1)).toBe(`sudo -n sh -c 'echo '\\''it'\\'''\\''s'\\'''`)
  })

  it('is a helper container when sudo asks a password: the volume at /volume, no network, labelled', async () => {
    const engine = fakeEngine()
    const end = await openVolumeEnd(fakeHost(fakeShell({sudo: 1, uid: 1000}), engine), LOCAL, {readOnly: true})
    expect(end).toMatchObject({
      access: 'engine',
      describe: 'helper container debian:bookworm-slim on the engine',
      limits: ['trusted.* xattrs (the helper lacks CAP_SYS_ADMIN)'],
      root: '/volume',
    })
    expect(end.tools.gnuTar).toBe(true)
    expect(end.shell.engineSocket).toBe('/var/run/docker.sock')
    expect(engine.bodies['POST /containers/create']).toMatchObject({
      HostConfig: {
        Mounts: [{ReadOnly: true, Source: 'data', Target: '/volume', Type: 'volume'}],
        NetworkMode: 'none',
      },
      Image: 'debian:bookworm-slim',
      Labels: {'transship.helper': 'volume'},
    })
    expect(engine.bodies['POST /containers/helper1/exec']).toMatchObject({
      AttachStdin: true,
      AttachStdout: true,
      Cmd: ['sh', '-c', expect.stringContaining('tar --version')],
      Tty: false,
    })
    await end.close()
    await end.close()
    expect(engine.calls.filter((call) => call.startsWith('DELETE'))).toEqual(['DELETE /containers/helper1'])
  })

  it('is a helper container for a volume of another driver, without asking the shell anything', async () => {
    const shell = fakeShell({uid: 0})
    const end = await openVolumeEnd(fakeHost(shell), {...LOCAL, Driver: 'rexray'}, writable)
    expect(end.access).toBe('engine')
    expect(shell.commands).toEqual([])
    await end.close()
  })
})

describe('refusals, before anything changes', () => {
  it('root when the shell is not uid 0', async () => {
    const engine = fakeEngine()
    const shell = fakeShell({uid: 1000, user: 'deploy'})
    const error = await refusal(openVolumeEnd(fakeHost(shell, engine), LOCAL, {access: 'root', readOnly: false}))
    expect(error).toMatchObject({code: 'VOLUME_NEEDS_ROOT', exit: 2})
    expect(error.message).toContain('deploy (uid 1000)')
    expect(shell.commands).toEqual([expect.stringMatching(/^id -u; id -un; echo ::WHO::;/)])
    expect(engine.calls).toEqual([])
  })

  it('sudo when sudo -n wants a password: says to add a NOPASSWD rule or use access engine', async () => {
    const engine = fakeEngine()
    const host = fakeHost(fakeShell({sudo: 1, uid: 1000, user: 'deploy'}), engine)
    const error = await refusal(openVolumeEnd(host, LOCAL, {access: 'sudo', readOnly: false}))
    expect(error).toMatchObject({code: 'VOLUME_SUDO_PASSWORD', exit: 2})
    expect(error.message).toContain('a password is required')
    expect(error.suggestions.join('\n')).toContain('deploy ALL=(root) NOPASSWD: ALL')
    expect(error.suggestions.join('\n')).toContain('access: engine')
    expect(engine.calls).toEqual([])
  })

  it('sudo when the host has none', async () => {
    const host = fakeHost(fakeShell({sudo: 127, uid: 1000}))
    expect(await refusal(openVolumeEnd(host, LOCAL, {access: 'sudo', readOnly: false}))).toMatchObject({
      code: 'VOLUME_SUDO_MISSING',
      exit: 2,
    })
  })

  it.each(['root', 'sudo'] as const)('%s for a volume of another driver', async (access) => {
    const shell = fakeShell({sudo: 0, uid: 0})
    const error = await refusal(openVolumeEnd(fakeHost(shell), {...LOCAL, Driver: 'nfs'}, {access, readOnly: false}))
    expect(error).toMatchObject({code: 'VOLUME_DRIVER_UNSUPPORTED', exit: 2})
    expect(error.suggestions.join('\n')).toContain('access: engine')
    expect(shell.commands).toEqual([])
  })

  it('root without GNU tar on the host', async () => {
    const host = fakeHost(fakeShell({tools: BUSYBOX_TOOLS, uid: 0}))
    const error = await refusal(openVolumeEnd(host, LOCAL, writable))
    expect(error).toMatchObject({code: 'VOLUME_TAR_MISSING', exit: 2})
    expect(error.message).toBe('edge has no GNU tar (found: tar (busybox) 1.35.0)')
  })

  it('a helper image without GNU tar: named, and the helper removed', async () => {
    const engine = fakeEngine({tools: BUSYBOX_TOOLS})
    const options = {access: 'engine', helperImage: 'busybox:1', readOnly: false} as const
    const error = await refusal(openVolumeEnd(fakeHost(fakeShell({}), engine), LOCAL, options))
    expect(error).toMatchObject({code: 'VOLUME_TAR_MISSING', exit: 2})
    expect(error.message).toContain('the helper image busybox:1 has no GNU tar')
    expect(engine.calls).toContain('DELETE /containers/helper1')
  })

  it('a helper image the engine lacks and cannot pull: named, with what to do; nothing created', async () => {
    const engine = fakeEngine({hasImage: false, pulls: false})
    const options = {access: 'engine', helperImage: 'registry.example:5000/tools/tar:2', readOnly: false} as const
    const error = await refusal(openVolumeEnd(fakeHost(fakeShell({}), engine), LOCAL, options))
    expect(error).toMatchObject({code: 'VOLUME_HELPER_IMAGE_MISSING', exit: 2})
    expect(error.message).toContain('registry.example:5000/tools/tar:2')
    expect(error.suggestions.join('\n')).toContain('helperImage')
    expect(engine.calls).toEqual(['GET /images/registry.example%3A5000%2Ftools%2Ftar%3A2/json', 'POST /images/create'])
  })
})

describe('engine end', () => {
  it('pulls a missing helper image once, then goes on', async () => {
    const engine = fakeEngine({hasImage: false, pulls: true})
    const end = await openVolumeEnd(fakeHost(fakeShell({}), engine), LOCAL, {access: 'engine', readOnly: false})
    expect(engine.calls.filter((call) => call === 'POST /images/create')).toHaveLength(1)
    expect(end.access).toBe('engine')
    await end.close()
  })

  it('says when the engine remaps users', async () => {
    const engine = fakeEngine({securityOptions: ['name=seccomp,profile=default', 'name=userns']})
    const end = await openVolumeEnd(fakeHost(fakeShell({}), engine), LOCAL, {access: 'engine', readOnly: false})
    expect(end.limits).toEqual([
      'trusted.* xattrs (the helper lacks CAP_SYS_ADMIN)',
      'file owners (the engine remaps users: userns-remap)',
    ])
    await end.close()
  })

  it('removes its helper when the signal aborts', async () => {
    const engine = fakeEngine()
    const controller = new AbortController()
    const options = {access: 'engine', readOnly: false, signal: controller.signal} as const
    await openVolumeEnd(fakeHost(fakeShell({}), engine), LOCAL, options)
    controller.abort()
    await new Promise((resolve) => {
      setImmediate(resolve)
    })
    expect(engine.calls).toContain('DELETE /containers/helper1')
  })
})
