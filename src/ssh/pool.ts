import {UnreachableError} from '@transship/kit'
import createDebug from 'debug'

import {type SshTarget, sshTargetKey} from './config.js'
import {type ConnectOptions, SshConnection} from './connection.js'

const debug = createDebug('transship:ssh:pool')

interface Entry {
  connection?: SshConnection
  promise: Promise<SshConnection>
}

/**
 * One SSH connection per `user@host:port`, opened on first use. Concurrent callers share the connect in
 * progress; a failed connect is forgotten (the next caller tries again), and so is a connection that was lost.
 */
export class SshPool implements AsyncDisposable {
  private controller = new AbortController()
  private readonly entries = new Map<string, Entry>()

  async [Symbol.asyncDispose](): Promise<void> {
    await this.closeAll()
  }

  /** Closes every connection, and cancels the connects still in progress. The pool can be used again after. */
  async closeAll(): Promise<void> {
    const entries = [...this.entries.values()]
    this.entries.clear()
    this.controller.abort(new UnreachableError('SSH_CONNECTION_CLOSED', 'the SSH connections were closed'))
    this.controller = new AbortController()
    await Promise.all(
      entries.map(async (entry) => {
        await entry.promise.then(
          async (connection) => connection.close(),
          () => {},
        )
      }),
    )
  }

  /**
   * The connection to a target, connecting if there is none yet. `signal` only cancels this caller's wait:
   * a connect shared with other callers goes on.
   */
  async get(target: SshTarget, options: ConnectOptions = {}): Promise<SshConnection> {
    const {signal} = options
    signal?.throwIfAborted()
    const key = sshTargetKey(target)
    let entry = this.entries.get(key)
    if (entry?.connection?.closed) {
      debug('%s: connection closed, reconnecting', key)
      this.entries.delete(key)
      entry = undefined
    }

    if (!entry) {
      const created: Entry = {
        promise: SshConnection.connect(target, {
          log: options.log,
          readyTimeoutMs: options.readyTimeoutMs,
          signal: this.controller.signal,
        }),
      }
      created.promise.then(
        (connection) => {
          created.connection = connection
        },
        () => {
          if (this.entries.get(key) === created) this.entries.delete(key)
        },
      )
      this.entries.set(key, created)
      entry = created
    }

    return signal ? untilAborted(entry.promise, signal) : entry.promise
  }
}

async function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason)
    signal.addEventListener('abort', onAbort, {once: true})
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(error)
      },
    )
  })
}
