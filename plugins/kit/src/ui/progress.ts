import {MultiBar, Presets} from 'cli-progress'

import type {Progress, ProgressTask} from '../plugin-api.js'

import {formatBytes} from './format.js'

export interface ProgressOptions {
  /** JSON-lines events instead of bars (also chosen when the stream is not a terminal) */
  json: boolean
  /** where progress goes: stderr, so that stdout stays the command's result */
  stream?: NodeJS.WriteStream
}

/** JSON-lines events are throttled per task to this interval. */
const EVENT_INTERVAL_MS = 500

/**
 * Progress on stderr: cli-progress bars on a terminal, JSON-lines events otherwise (or with --json), so
 * that people see bars and machines see events.
 */
export class ProgressReporter implements Progress {
  private readonly bars: MultiBar | undefined
  private readonly stream: NodeJS.WriteStream

  constructor(options: ProgressOptions) {
    this.stream = options.stream ?? process.stderr
    this.bars =
      !options.json && this.stream.isTTY
        ? new MultiBar(
            {
              autopadding: true,
              clearOnComplete: false,
              format: ' {bar} {percentage}% | {label} | {doneText}/{totalText}',
              hideCursor: true,
              stream: this.stream,
            },
            Presets.shades_classic,
          )
        : undefined
  }

  /** An event line (JSON mode) or a message above the bars (terminal). */
  event(type: string, fields: Record<string, unknown>, human: string): void {
    if (this.bars) this.bars.log(`${human}\n`)
    else this.stream.write(`${JSON.stringify({type, ...fields, time: new Date().toISOString()})}\n`)
  }

  stop(): void {
    this.bars?.stop()
  }

  task(id: string, label: string, total?: number): ProgressTask {
    if (this.bars) {
      const bar = this.bars.create(total ?? 0, 0, {
        doneText: formatBytes(0),
        label,
        totalText: total ? formatBytes(total) : '?',
      })
      let done = 0
      let known = total
      return {
        done(error) {
          bar.update(known ?? done, {label: error ? `${label} (failed)` : label})
          bar.stop()
        },
        tick(n) {
          done += n
          bar.update(done, {doneText: formatBytes(done)})
        },
        total(value) {
          known = value
          bar.setTotal(value)
          bar.update(done, {totalText: formatBytes(value)})
        },
      }
    }

    let done = 0
    let known = total
    let last = 0
    this.event('task-start', {id, label, total}, label)
    return {
      done: (error) => this.event('task-end', {done, error: error?.message, id, total: known}, label),
      tick: (n) => {
        done += n
        const now = Date.now()
        if (now - last >= EVENT_INTERVAL_MS) {
          last = now
          this.event('task-progress', {done, id, total: known}, label)
        }
      },
      total(value) {
        known = value
      },
    }
  }
}
