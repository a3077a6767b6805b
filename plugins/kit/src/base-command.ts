import type {Logger} from './plugin-api.js'

import {Command, Errors, Flags, type Interfaces} from '@oclif/core'
import {InterruptedError, isTransshipError} from './errors.js'
import createDebug from 'debug'

export type CommandFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>
export type CommandArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

/**
 * What every transship command shares: --json and --debug, an AbortSignal that Ctrl-C fires (a second
 * Ctrl-C exits at once), a logger on stderr, and errors rendered from the TransshipError hierarchy with
 * their exit code and suggestions, without a stack trace unless --debug.
 */
export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override baseFlags = {
    debug: Flags.boolean({
      description: 'Print debug output (as DEBUG=transship*) and stack traces.',
      helpGroup: 'GLOBAL',
    }),
  }
  static override enableJsonFlag = true

  protected args!: CommandArgs<T>
  protected flags!: CommandFlags<T>
  private readonly abortController = new AbortController()
  private interrupts = 0
  private readonly onSignal = (): void => {
    this.interrupts++
    if (this.interrupts > 1) {
      process.exit(130)
    }

    this.logToStderr('Interrupting: stopping transfers and cleaning up (Ctrl-C again to quit at once)…')
    this.abortController.abort(new InterruptedError())
  }

  /** Fired by Ctrl-C or SIGTERM; pass it to every long operation. */
  protected get signal(): AbortSignal {
    return this.abortController.signal
  }

  protected override async catch(error: Error & {exitCode?: number}): Promise<unknown> {
    if (isTransshipError(error)) {
      const rendered = new Errors.CLIError(error.message, {
        code: error.code,
        exit: error.exit,
        suggestions: error.suggestions.length > 0 ? error.suggestions : undefined,
      })
      if (this.flags?.debug && error.stack) Object.defineProperty(rendered, 'stack', {value: error.stack})
      Object.assign(rendered, {details: error.details})
      return super.catch(rendered)
    }

    return super.catch(error)
  }

  protected override async finally(error: Error | undefined): Promise<unknown> {
    process.off('SIGINT', this.onSignal)
    process.off('SIGTERM', this.onSignal)
    return super.finally(error)
  }

  public override async init(): Promise<void> {
    await super.init()
    const {args, flags} = await this.parse({
      args: this.ctor.args,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      flags: this.ctor.flags,
      strict: this.ctor.strict,
    })
    this.flags = flags as CommandFlags<T>
    this.args = args as CommandArgs<T>
    if (this.flags.debug) createDebug.enable(`transship*${process.env.DEBUG ? `,${process.env.DEBUG}` : ''}`)
    process.on('SIGINT', this.onSignal)
    process.on('SIGTERM', this.onSignal)
  }

  /** Warnings and notes go to stderr, so stdout stays the command's result. */
  protected logger(): Logger {
    const debug = createDebug(`transship:${this.id?.replaceAll(' ', ':') ?? 'cli'}`)
    return {
      debug: (message) => debug(message),
      info: (message) => {
        if (!this.jsonEnabled()) this.logToStderr(message)
      },
      warn: (message) => this.logToStderr(`Warning: ${message}`),
    }
  }

  protected override toErrorJson(error: unknown): unknown {
    const json = super.toErrorJson(error) as {error: Record<string, unknown>}
    const details = (error as {details?: unknown}).details
    if (details !== undefined) json.error.details = details
    return json
  }
}
