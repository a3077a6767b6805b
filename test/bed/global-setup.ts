// vitest globalSetup of the e2e project: brings the real test bed up (test/bed/up.sh, idempotent
// and quick when it already runs) and hands its description to the tests.
//
// Not root and no bed running: the e2e tests are skipped with one line saying why.
// The daemons keep running after the tests (the next run reuses them); set
// TRANSSHIP_TESTBED_DOWN=1 to stop them at the end (test/bed/down.sh).
import type {TestProject} from 'vitest/node'

import {spawn} from 'node:child_process'
import {access, constants, readFile} from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import type {Testbed} from './types.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const repoRoot = path.resolve(here, '../..')
const stateFile = path.join(repoRoot, 'test/.state/testbed.json')

const NEEDS_ROOT =
  'e2e tests skipped: the test bed needs root to install and start Docker engines and sshd (run npm test as root)'

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let bed: null | Testbed = null
  let skipReason: null | string = null

  if (isRoot()) {
    await runScript('up.sh')
    bed = await readState()
    if (!bed) throw new Error(`test/bed/up.sh succeeded but did not write ${stateFile}`)
  } else {
    bed = await runningBed()
    if (!bed) {
      skipReason = NEEDS_ROOT
      console.warn(NEEDS_ROOT)
    }
  }

  project.provide('testbed', bed)
  project.provide('testbedSkipReason', skipReason)

  return async () => {
    if (process.env.TRANSSHIP_TESTBED_DOWN === '1' && isRoot()) await runScript('down.sh')
  }
}

function isRoot(): boolean {
  return process.getuid?.() === 0
}

async function readState(): Promise<null | Testbed> {
  try {
    return JSON.parse(await readFile(stateFile, 'utf8')) as Testbed
  } catch {
    return null
  }
}

/** the bed as a previous (root) run left it, if all of it still answers and this user may use it */
async function runningBed(): Promise<null | Testbed> {
  const bed = await readState()
  if (!bed) return null
  const checks = [
    ...Object.values(bed.engines).map((engine) => ping(engine.socket)),
    tcpOpen(bed.ssh.host, bed.ssh.port),
    readable(bed.ssh.identityFile),
  ]
  const results = await Promise.all(checks)
  return results.every(Boolean) ? bed : null
}

async function readable(file: string): Promise<boolean> {
  try {
    await access(file, constants.R_OK)
    return true
  } catch {
    return false
  }
}

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({path: '/_ping', socketPath, timeout: 3000}, (res) => {
      res.resume()
      resolve(res.statusCode === 200)
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', () => resolve(false))
  })
}

function tcpOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({host, port, timeout: 3000})
    socket.on('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.on('timeout', () => socket.destroy(new Error('timeout')))
    socket.on('error', () => resolve(false))
  })
}

/** runs test/bed/SCRIPT, showing its output as it comes; fails with the output's tail */
function runScript(script: string): Promise<void> {
  const file = path.join(here, script)
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [file], {cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe']})
    let tail = ''
    const keep = (chunk: Buffer, out: NodeJS.WriteStream) => {
      out.write(chunk)
      tail = (tail + chunk.toString('utf8')).slice(-8000)
    }

    child.stdout.on('data', (chunk: Buffer) => keep(chunk, process.stdout))
    child.stderr.on('data', (chunk: Buffer) => keep(chunk, process.stderr))
    child.on('error', reject)
    child.on('close', (code, signal) => {
      if (code === 0) {
        resolve()
        return
      }

      const lines = tail.trimEnd().split('\n').slice(-40).join('\n')
      reject(new Error(`test bed: ${script} failed (${signal ?? `exit ${code}`}):\n${lines}`))
    })
  })
}
