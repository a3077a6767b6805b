import {Command, Flags, type Interfaces} from '@oclif/core'
import createDebug from 'debug'

import type {Logger} from './plugin-api.js'

import {ExitCode, InterruptedError, isTransshipError, RecipeError, type TransshipError} from './errors.js'
import {configureNative} from './native/addon.js'
import {writeJsonEvent} from './ui/progress.js'

type CommandFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>
type CommandArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

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
      // a second Ctrl-C means "now": the user has seen the first one being handled
      // eslint-disable-next-line n/no-process-exit, unicorn/no-process-exit
      process.exit(ExitCode.Interrupted)
    }

    this.logToStderr('Interrupting: stopping transfers and cleaning up (Ctrl-C again to quit at once)…')
    this.abortController.abort(new InterruptedError())
  }

  /** Fired by Ctrl-C or SIGTERM; pass it to every long operation. */
  protected get signal(): AbortSignal {
    return this.abortController.signal
  }

  protected override async catch(thrown: Error & {exitCode?: number}): Promise<unknown> {
    // after Ctrl-C, whatever broke on the way down is a consequence: report the interruption
    const error = this.signal.aborted && !(thrown instanceof InterruptedError) ? (this.signal.reason as Error) : thrown
    if (!isTransshipError(error)) return super.catch(error)
    if (this.jsonEnabled()) this.logJson(this.toErrorJson(error))
    else this.logToStderr(renderError(error, Boolean(this.flags?.debug)))
    // ExitError: oclif exits with this code and prints nothing more
    return this.exit(error.exit)
  }

  protected override async finally(error: Error | undefined): Promise<unknown> {
    process.off('SIGINT', this.onSignal)
    process.off('SIGTERM', this.onSignal)
    return super.finally(error)
  }

  public override async init(): Promise<void> {
    await super.init()
    configureNative(this.config.root)
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

  /**
   * Warnings and notes go to stderr, so stdout stays the command's result. With --json a warning is a JSON-lines
   * event there (`{"type":"warning","message":…}`, like the progress events); notes are left out.
   */
  protected logger(): Logger {
    const debug = createDebug(`transship:${this.id?.replaceAll(' ', ':') ?? 'cli'}`)
    return {
      debug: (message) => debug(message),
      info: (message) => {
        if (!this.jsonEnabled()) this.logToStderr(message)
      },
      warn: (message) => {
        if (this.jsonEnabled()) writeJsonEvent(process.stderr, 'warning', {message})
        else this.logToStderr(`Warning: ${message}`)
      },
    }
  }

  protected override toErrorJson(error: unknown): unknown {
    if (isTransshipError(error)) return {error: error.toJSON()}
    return super.toErrorJson(error)
  }
}

/**
 * An expected failure, for people: recipe issues one per line (`file:line:col path: message`, as compilers
 * print them), anything else as `Error: …` followed by what to try. The stack only with --debug.
 */
function renderError(error: TransshipError, debug: boolean): string {
  const lines = error instanceof RecipeError ? [error.message] : [`Error: ${error.message}`]
  for (const suggestion of error.suggestions) lines.push(`  Try: ${suggestion}`)
  if (debug && error.stack) lines.push(error.stack)
  return lines.join('\n')
}
