/**
 * A shell on any host of a run: over the host's SSH connection, or on this machine for `local`. Commands
 * get the same shape either way (stdin, stdout, stderr drained and kept, exit code), so code that runs the
 * host's own tools (GNU tar on a volume's mount point, say) does not care where the host is.
 */
import {spawn} from 'node:child_process'

import type {RemoteProcess, RemoteShell} from './plugin-api.js'

/** stderr kept for messages: the end of it */
const STDERR_LIMIT = 64 * 1024

function execLocal(command: string, options: {signal?: AbortSignal} = {}): RemoteProcess {
  const child = spawn('/bin/sh', ['-c', command], {signal: options.signal, stdio: ['pipe', 'pipe', 'pipe']})
  let stderr = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-STDERR_LIMIT)
  })
  // an aborted or failed spawn surfaces through `exit`
  child.on('error', () => {})
  child.stdin.on('error', () => {})
  const exit = new Promise<{code: null | number; signal?: string; stderr: string}>((resolve) => {
    child.on('close', (code, signal) => resolve({code, signal: signal ?? undefined, stderr}))
  })
  return {exit, stdin: child.stdin, stdout: child.stdout}
}

/** This machine's shell, shaped like a RemoteShell. */
export function localShell(engineSocket = '/var/run/docker.sock'): RemoteShell {
  return {
    engineSocket,
    exec: execLocal,
    async run(command, options) {
      const process = execLocal(command, options)
      process.stdin.end()
      let stdout = ''
      process.stdout.setEncoding('utf8')
      for await (const chunk of process.stdout) stdout += chunk as string
      const {code, stderr} = await process.exit
      return {code, stderr, stdout}
    },
  }
}
