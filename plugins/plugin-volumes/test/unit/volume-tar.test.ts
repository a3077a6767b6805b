import type {RemoteProcess, RemoteShell} from '@transship/kit'

import {execFileSync, spawn} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {PassThrough, Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {writeTar} from '../../src/volume-tar.js'

/**
 * A shell that runs commands here but behaves as a command over SSH does (SshConnection.exec): when the command
 * exits, its channel closes, and a stdin that has not ended yet is destroyed (Premature close); an abort
 * destroys stdout with the signal's reason and rejects `exit`.
 */
function sshLikeExec(command: string, options: {signal?: AbortSignal} = {}): RemoteProcess {
  const child = spawn('/bin/sh', ['-c', command], {stdio: ['pipe', 'pipe', 'pipe']})
  const stdin = new PassThrough()
  const stdout = new PassThrough()
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  child.stdin.on('error', () => {})
  stdin.pipe(child.stdin)
  child.stdout.pipe(stdout)
  const exit = new Promise<{code: null | number; stderr: string}>((resolve, reject) => {
    const onAbort = () => {
      child.kill('SIGTERM')
      stdout.destroy(options.signal!.reason as Error)
      stdin.destroy()
      reject(options.signal!.reason)
    }

    options.signal?.addEventListener('abort', onAbort, {once: true})
    child.on('close', (code) => {
      options.signal?.removeEventListener('abort', onAbort)
      if (!stdin.writableEnded)
        stdin.destroy(Object.assign(new Error('Premature close'), {code: 'ERR_STREAM_PREMATURE_CLOSE'}))
      resolve({code, stderr})
    })
  })
  exit.catch(() => {})
  return {exit, stdin, stdout}
}

function sshLikeShell(): RemoteShell {
  const exec = sshLikeExec
  return {
    engineSocket: '/var/run/docker.sock',
    exec,
    async run(command, options) {
      const child = exec(command, options)
      child.stdin.end()
      let stdout = ''
      for await (const chunk of child.stdout) stdout += String(chunk)
      return {...(await child.exit), stdout}
    },
  }
}

let dir: string
let archive: Buffer

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'transship-volume-tar-'))
  mkdirSync(path.join(dir, 'source'))
  writeFileSync(path.join(dir, 'source', 'a.txt'), 'a volume file\n')
  archive = execFileSync('tar', ['-C', path.join(dir, 'source'), '--format=posix', '-cf', '-', '.'])
})

afterAll(() => {
  rmSync(dir, {force: true, recursive: true})
})

describe('writeTar on a host reached over SSH', () => {
  it('succeeds when the end of its input comes after tar has read the end-of-archive', async () => {
    const target = mkdtempSync(path.join(dir, 'target-'))
    const writer = writeTar({host: 'edge', shell: sshLikeShell(), wire: 'none'}, target)
    // the archive at once, the end of the stream later: as when the source's end crosses another channel
    const input = Readable.from(
      (async function* () {
        yield archive
        await new Promise((resolve) => {
          setTimeout(resolve, 500)
        })
        // and what a tar with another blocking factor pads its last record with
        yield Buffer.alloc(20 * 512)
      })(),
    )
    await pipeline(input, writer.stdin)
    expect(await writer.exit).toMatchObject({code: 0})
    expect(readFileSync(path.join(target, 'a.txt'), 'utf8')).toBe('a volume file\n')
  })

  it('ends at once when tar fails, without waiting for the end of its input', async () => {
    const writer = writeTar({host: 'edge', shell: sshLikeShell(), wire: 'none'}, path.join(dir, 'missing'))
    // input that would never end: only the failing tar's own exit can settle `exit`
    let first = true
    const endless = new Readable({
      read() {
        const chunk = first ? archive : Buffer.alloc(64 * 1024)
        first = false
        setImmediate(() => this.push(chunk))
      },
    })
    pipeline(endless, writer.stdin).catch(() => {})
    const exit = await writer.exit
    endless.destroy()
    expect(exit.code).not.toBe(0)
    expect(exit.stderr).toContain('missing')
  })

  it('turns an abort into a rejected exit, not an unhandled stream error', async () => {
    const target = mkdtempSync(path.join(dir, 'target-'))
    const controller = new AbortController()
    const writer = writeTar({host: 'edge', shell: sshLikeShell(), wire: 'none'}, target, {signal: controller.signal})
    writer.stdin.write(archive.subarray(0, 512))
    controller.abort(new Error('interrupted'))
    await expect(writer.exit).rejects.toThrow('interrupted')
    // an unhandled 'error' event would have failed the run by now
    await new Promise((resolve) => {
      setTimeout(resolve, 100)
    })
  })
})
