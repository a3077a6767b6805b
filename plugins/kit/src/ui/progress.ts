import {MultiBar, Presets} from 'cli-progress'

import type {Progress, ProgressTask} from '../plugin-api.js'

import {formatBytes, formatDuration} from './format.js'

interface ProgressOptions {
  /** JSON-lines events instead of bars (also chosen when the stream is not a terminal) */
  json: boolean
  /** where progress goes: stderr, so that stdout stays the command's result */
  stream?: NodeJS.WriteStream
}

/** Writes one JSON-lines event (`{"type": …, …fields, "time": …}`), the shape of every event on stderr. */
export function writeJsonEvent(
  stream: NodeJS.WritableStream,
  type: string,
  fields: Record<string, unknown> = {},
): void {
  stream.write(`${JSON.stringify({type, ...fields, time: new Date().toISOString()})}\n`)
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
              barsize: 20,
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
    else writeJsonEvent(this.stream, type, fields)
  }

  stop(): void {
    this.bars?.stop()
  }

  task(id: string, label: string, total?: number): ProgressTask {
    if (this.bars) {
      // the rate counts from the first byte: waiting for the source is not transfer time
      let started: number | undefined
      let done = 0
      let known = total
      // a terminal line must hold the numbers: long labels (ssh://… addresses) keep their end
      const shown = label.length > 32 ? `…${label.slice(-31)}` : label
      const payload = (): Record<string, string> => {
        const seconds = started === undefined ? 0 : (Date.now() - started) / 1000
        const rate = seconds > 0.5 ? done / seconds : 0
        const left = known && rate > 0 ? Math.max(0, (known - done) / rate) : undefined
        return {
          doneText: formatBytes(done),
          etaText: left === undefined ? '' : ` | ETA ${formatDuration(Math.round(left * 1000))}`,
          label: shown,
          rateText: rate > 0 ? ` | ${formatBytes(Math.round(rate))}/s` : '',
          totalText: known ? `/${formatBytes(known)}` : '',
        }
      }

      // without a total, a bar would claim 100%: show bytes and rate only
      const format = (withTotal: boolean) =>
        withTotal
          ? ' {bar} {percentage}% | {label} | {doneText}{totalText}{rateText}{etaText}'
          : ' {label} | {doneText}{rateText}'
      const bar = this.bars.create(total ?? 0, 0, payload(), {format: format(Boolean(total))})
      return {
        done(error) {
          bar.update(known ?? done, {...payload(), etaText: '', label: error ? `${shown} (failed)` : shown})
          bar.stop()
        },
        tick(n) {
          started ??= Date.now()
          done += n
          bar.update(Math.min(done, known ?? done), payload())
        },
        total(value) {
          known = value
          bar.setTotal(value)
          bar.update(done, payload())
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
