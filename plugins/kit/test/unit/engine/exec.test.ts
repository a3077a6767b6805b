// A command run through the engine's exec, against a fake engine whose hijacked connection carries many
// multiplexed frames: the output arrives whole and in order when it is read slowly, and waiting for the reader
// leaves no listener behind (a long copy waits thousands of times).
import type {EngineClient, EngineRequest} from '@transship/kit'

import {Duplex, Readable, Writable} from 'node:stream'
import {setTimeout as sleep} from 'node:timers/promises'
import {describe, expect, it} from 'vitest'

import {execProcess} from '../../../src/engine/exec.js'

function frame(stream: 1 | 2, data: Buffer): Buffer {
  const header = Buffer.alloc(8)
  header[0] = stream
  header.writeUInt32BE(data.length, 4)
  return Buffer.concat([header, data])
}

/** an engine whose exec writes `frames` and exits with `code` */
function fakeEngine(frames: Buffer[], code: number): EngineClient {
  return {
    apiVersion: '1.41',
    async facts() {
      throw new Error('not used')
    },
    host: 'fake',
    async json<T>(request: EngineRequest): Promise<T> {
      if (request.path.endsWith('/exec')) return {Id: 'exec-1'} as T
      return {ExitCode: code, Running: false} as T
    },
    messages() {
      throw new Error('not used')
    },
    async stream() {
      throw new Error('not used')
    },
    async upgrade() {
      const input = new Writable({
        write(_chunk, _encoding, callback) {
          callback()
        },
      })
      return Duplex.from({readable: Readable.from(frames), writable: input})
    },
  }
}

describe('execProcess', () => {
  it('hands over a long output with backpressure, in order, and leaves no listener behind', async () => {
    const chunks = Array.from({length: 400}, (_, i) => Buffer.alloc(64 * 1024, i % 256))
    const frames = chunks.map((chunk, i) => frame(i % 50 === 0 ? 2 : 1, chunk))
    const process = execProcess(fakeEngine(frames, 3), 'container', ['sh', '-c', 'x'])
    process.stdin.end()
    const received: Buffer[] = []
    for await (const chunk of process.stdout as AsyncIterable<Buffer>) {
      received.push(chunk)
      // a slow reader: the exec waits for it to drain again and again
      if (received.length % 16 === 0) await sleep(1)
      expect(process.stdout.listenerCount('close')).toBeLessThanOrEqual(3)
    }

    const exit = await process.exit
    expect(exit.code).toBe(3)
    const expected = Buffer.concat(chunks.filter((_, i) => i % 50 !== 0))
    expect(Buffer.concat(received).equals(expected)).toBe(true)
    // stderr keeps its tail
    expect(exit.stderr.length).toBeGreaterThan(0)
  })
})
