/**
 * A tar stream as an async iteration of entries, each with its data as a Readable (backpressure: the stream
 * is read only as fast as the data is consumed). The framing is TarFramer's.
 */
import {addAbortSignal, Readable} from 'node:stream'

import {decompressed} from '../archive/compression.js'
import {ArchiveError, type ArchiveErrorCode} from '../archive/errors.js'
import {TarError} from './errors.js'
import {type TarEntry, TarFramer, type TarFramerOptions} from './framer.js'
import {decodeTarName} from './header.js'

export interface TarReadOptions extends TarFramerOptions {
  /** decompress gzip, zstd, bzip2 or xz first (by the first bytes); its errors are named after `label` too */
  decompress?: boolean
  /** an abort rejects the iteration (and an open entry's data) with the signal's reason */
  signal?: AbortSignal
  /** sees every byte of the (decompressed) tar stream, as it is read, the bytes after its end included */
  tap?: (chunk: Buffer) => void
}

export interface TarStreamEntry {
  entry: TarEntry
  /**
   * The entry's data (a sparse file's segments, without its holes), as a Readable: at most once, and only during
   * its iteration step; what is not read is skipped when the next entry is asked for.
   */
  open(): Readable
}

/**
 * The entries of a tar stream, in order. Errors are TarErrors (the framing), the decompressor's ArchiveErrors
 * (named after `label`), the input's own errors, or the signal's reason. What follows the end-of-archive marker
 * is read and ignored.
 *
 * @yields each entry with the opener of its data
 */
export async function* readTar(
  input: AsyncIterable<Buffer | Uint8Array> | Readable,
  options: TarReadOptions = {},
): AsyncGenerator<TarStreamEntry, void> {
  const {signal} = options
  signal?.throwIfAborted()
  const reader = new TarReader(options)
  let source = input
  try {
    if (options.decompress) source = (await decompressed(input as Readable, signal)).stream
    if (signal && source instanceof Readable) addAbortSignal(signal, source)
  } catch (error) {
    if (input instanceof Readable) input.destroy()
    throw reader.failure(error)
  }

  reader.start(source)
  try {
    for (;;) {
      const entry = await reader.next()
      if (!entry) return
      yield {entry, open: () => reader.open(entry)}
    }
  } finally {
    reader.close()
  }
}

/** The pump between the input and the framer, and the Readable of the entry being read. */
class TarReader {
  private body: Readable | undefined
  private chunk: Buffer | undefined
  private current: TarEntry | undefined
  /** the current entry's data is all read */
  private dataDone = false
  private done = false
  private failed: unknown
  private readonly framer: TarFramer
  private iterator: AsyncIterator<Buffer | Uint8Array> | undefined
  private offset = 0
  private opened = false
  /** the body wants no more for now */
  private paused = false
  private pending: TarEntry | undefined
  private pumping: Promise<void> | undefined

  constructor(private readonly options: TarReadOptions) {
    this.framer = new TarFramer(
      {
        data: (chunk) => {
          if (this.body && !this.body.push(chunk)) this.paused = true
        },
        end: () => {
          this.dataDone = true
          this.body?.push(null)
          this.body = undefined
        },
        entry: (entry) => {
          this.pending = entry
          // (an entry without data ends at once: `end` follows)
          this.dataDone = false
        },
      },
      options,
    )
  }

  close(): void {
    this.body?.destroy()
    this.body = undefined
    this.iterator?.return?.().catch(() => {
      // the input's error, if any, was given already
    })
  }

  /** The error as the iteration gives it: the signal's reason, or a decompressor's error named after the stream. */
  failure(error: unknown): unknown {
    const {label, signal} = this.options
    if (signal?.aborted) return signal.reason
    if (error instanceof TarError || !(error instanceof ArchiveError)) return error
    const name = label ?? 'the tar stream'
    const code = error.code as ArchiveErrorCode
    const suggestions = this.options.suggestions?.[code]
    return new ArchiveError(code, `${name}: ${error.message}`, {
      cause: error,
      details: {...error.details, ...(this.options.details ?? {stream: name})},
      suggestions: error.suggestions.length > 0 ? error.suggestions : (suggestions ?? []),
    })
  }

  /** The next entry, past what is left of the current one's data; undefined at the end. */
  async next(): Promise<TarEntry | undefined> {
    await this.pumping
    this.release()
    if (this.failed !== undefined) throw this.failed
    try {
      while (!this.pending) {
        if (!(await this.feed())) {
          this.framer.end()
          return undefined
        }
      }
    } catch (error) {
      this.failed = this.failure(error)
      throw this.failed
    }

    const entry = this.pending
    this.pending = undefined
    this.current = entry
    this.opened = false
    return entry
  }

  open(entry: TarEntry): Readable {
    if (entry !== this.current || this.opened) {
      throw new Error(
        `the data of ${JSON.stringify(decodeTarName(entry.name))} can be opened only once, during its iteration step`,
      )
    }

    this.opened = true
    const body = new Readable({
      destroy: (error, callback) => {
        if (this.body === body) this.body = undefined
        callback(error)
      },
      read: () => {
        this.paused = false
        this.pump(body)
      },
    })
    if (this.dataDone) body.push(null)
    else this.body = body
    return body
  }

  start(source: AsyncIterable<Buffer | Uint8Array> | Readable): void {
    this.iterator = (source as AsyncIterable<Buffer | Uint8Array>)[Symbol.asyncIterator]()
  }

  /**
   * Gives the framer the next bytes, up to the next entry's headers; false when the input is exhausted. After
   * the end-of-archive marker it reads on to the end of the input, ignoring it.
   */
  private async feed(): Promise<boolean> {
    if (!this.chunk || this.offset >= this.chunk.length) {
      if (this.done) return false
      this.options.signal?.throwIfAborted()
      const next = await this.iterator!.next()
      if (next.done) {
        this.done = true
        return false
      }

      const {value} = next
      this.chunk = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength)
      this.offset = 0
      this.options.tap?.(this.chunk)
    }

    this.offset = this.framer.write(this.chunk, this.offset)
    return true
  }

  /** Reads on while `body` wants data and its entry has data left. */
  private pump(body: Readable): void {
    if (this.pumping) return
    this.pumping = (async () => {
      try {
        while (this.body === body && !this.paused && !this.dataDone) {
          if (!(await this.feed())) {
            this.framer.end()
            break
          }
        }
      } catch (error) {
        this.failed = this.failure(error)
        body.destroy(this.failed as Error)
      } finally {
        this.pumping = undefined
      }

      // read() may have asked for more while this was finishing
      if (this.body === body && !this.paused && !this.dataDone && this.failed === undefined) {
        this.pump(body)
      }
    })()
  }

  /** The current entry is done with: what is left of its data is skipped. */
  private release(): void {
    if (this.body) {
      // without an error: a consumer that abandoned the stream may have no 'error' listener
      if (!this.body.destroyed) this.body.destroy()
      this.body = undefined
    }

    this.current = undefined
    this.paused = false
  }
}
