import {Readable, Transform, type TransformCallback, type Writable} from 'node:stream'

/**
 * The first `length` bytes of `input` (fewer when it is shorter), without losing them: `stream` gives the whole
 * stream again, head included. It is `input` itself (the head put back) unless `input` ended meanwhile, when it
 * is a new stream of the head. Rejects when the stream fails before that.
 */
export async function peek(
  input: Readable,
  length: number,
  signal?: AbortSignal,
): Promise<{head: Buffer; stream: Readable}> {
  const chunks: Buffer[] = []
  let have = 0
  let ended = false
  while (have < length) {
    signal?.throwIfAborted()
    const chunk = input.read() as Buffer | null | string
    if (chunk !== null) {
      const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
      chunks.push(buffer)
      have += buffer.length
      continue
    }

    if (input.readableEnded || input.destroyed) {
      ended = true
      break
    }

    try {
      if (!(await readableOrEnd(input, signal))) {
        ended = true
        break
      }
    } catch (error) {
      if (chunks.length > 0 && !input.destroyed) input.unshift(Buffer.concat(chunks))
      throw error
    }
  }

  if (input.errored) throw input.errored
  const head = Buffer.concat(chunks)
  if (ended) return {head, stream: Readable.from(head.length > 0 ? [head] : [], {objectMode: false})}
  if (head.length > 0) input.unshift(head)
  return {head: head.subarray(0, length), stream: input}
}

/** Waits until `input` has data to read (true) or has ended (false); rejects on an error or abort. */
function readableOrEnd(input: Readable, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      input.off('readable', onReadable)
      input.off('end', onEnd)
      input.off('close', onEnd)
      input.off('error', onError)
      signal?.removeEventListener('abort', onAbort)
    }

    const onReadable = () => {
      cleanup()
      resolve(input.readableLength > 0 || !input.readableEnded)
    }

    const onEnd = () => {
      cleanup()
      if (input.errored) reject(input.errored)
      else resolve(false)
    }

    const onError = (error: Error) => {
      cleanup()
      reject(error)
    }

    const onAbort = () => {
      cleanup()
      reject(signal?.reason)
    }

    input.once('readable', onReadable)
    input.once('end', onEnd)
    input.once('close', onEnd)
    input.once('error', onError)
    signal?.addEventListener('abort', onAbort, {once: true})
  })
}

/** Destroys `stream` with the abort reason when `signal` fires (and forgets the signal once the stream closed). */
export function destroyOnAbort(stream: Readable | Writable, signal: AbortSignal | undefined): void {
  if (!signal) return
  if (signal.aborted) {
    stream.destroy(signal.reason as Error)
    return
  }

  const onAbort = () => stream.destroy(signal.reason as Error)
  signal.addEventListener('abort', onAbort, {once: true})
  stream.once('close', () => signal.removeEventListener('abort', onAbort))
}

/** A pass-through that reports how many bytes went by. */
export function byteCounter(onBytes: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      onBytes(chunk.length)
      callback(null, chunk)
    },
  })
}

/** `stream`, counted: a Readable that reports each chunk's size as it is read (errors pass through). */
export function counted(stream: AsyncIterable<unknown>, onBytes: (n: number) => void): Readable {
  async function* chunks(): AsyncGenerator<Buffer> {
    for await (const chunk of stream) {
      const buffer = chunk as Buffer
      onBytes(buffer.length)
      yield buffer
    }
  }

  return Readable.from(chunks(), {objectMode: false})
}

/**
 * A pass-through that also writes everything to `side` (with backpressure: it waits while `side` is full).
 * When `side` goes away (closed or destroyed), the main stream carries on alone. With `holdEnd`, the main stream
 * ends only once that promise resolved, and fails with its error when it rejects: e.g. the index of an archive
 * read from `side`, so that a stream whose archive turns out to be broken never ends cleanly downstream.
 */
export function tap(side: Writable, options: {holdEnd?: () => Promise<unknown>} = {}): Transform {
  let sideGone = false
  const gone = () => {
    sideGone = true
  }

  side.once('close', gone)
  side.once('error', gone)
  return new Transform({
    destroy(error, callback) {
      side.off('close', gone)
      if (!sideGone && !side.writableFinished) side.destroy(error ?? undefined)
      callback(error)
    },
    flush(callback: TransformCallback) {
      const finish = () => {
        if (!options.holdEnd) {
          callback()
          return
        }

        options.holdEnd().then(
          () => callback(),
          (error: unknown) => callback(error as Error),
        )
      }

      if (sideGone) finish()
      else side.end(finish)
    },
    transform(chunk: Buffer, _encoding, callback) {
      if (sideGone || side.write(chunk)) {
        callback(null, chunk)
        return
      }

      const resume = () => {
        side.off('drain', resume)
        side.off('close', resume)
        callback(null, chunk)
      }

      side.on('drain', resume)
      side.on('close', resume)
    },
  })
}
