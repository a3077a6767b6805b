// The base command in-process (oclif's Config and run, output captured by @oclif/test): how an error is shown to
// a person and to a program, the exit code of each error class, and Ctrl-C.
import {Config, Flags} from '@oclif/core'
import {captureOutput} from '@oclif/test'
import {fileURLToPath} from 'node:url'
import {beforeAll, describe, expect, it} from 'vitest'

import {BaseCommand} from '../../src/base-command.js'
import {
  AuthError,
  EngineError,
  ExitCode,
  InterruptedError,
  RecipeError,
  StepFailedError,
  TransshipError,
  UnreachableError,
  UsageError,
} from '../../src/errors.js'

const root = fileURLToPath(new URL('../../../..', import.meta.url))
let config: Config

beforeAll(async () => {
  config = await Config.load(root)
})

const recipeError = new RecipeError([
  {
    column: 7,
    file: 'recipe.yaml',
    line: 3,
    message: 'unknown host "egde" (did you mean "edge"?)',
    path: 'images[0].from',
  },
  {file: 'recipe.yaml', line: 5, message: 'expected a string', path: 'images[1].ref'},
])

/** The errors each class stands for, by the name a test gives on the command line. */
const errors: Record<string, () => Error> = {
  auth: () => new AuthError('SSH_HOST_KEY_MISMATCH', 'the host key of edge does not match known_hosts'),
  engine: () => new EngineError('no such image: app:1', {host: 'local', status: 404}),
  interrupted: () => new InterruptedError(),
  plain: () => new Error('a bug'),
  recipe: () => recipeError,
  step: () => new StepFailedError('1 of 3 steps failed'),
  unreachable: () =>
    new UnreachableError('SSH_UNREACHABLE', 'edge: connection refused', {details: {cause: 'ECONNREFUSED'}}),
  usage: () =>
    new UsageError('--from and --to name the same host', {code: 'SAME_HOST', suggestions: ['name another host']}),
  verify: () => new TransshipError('VERIFY_MISMATCH', ExitCode.Verify, '2 files differ'),
}

class Fails extends BaseCommand<typeof Fails> {
  static override flags = {
    with: Flags.string({options: Object.keys(errors), required: true}),
  }

  async run(): Promise<void> {
    throw errors[this.flags.with]!()
  }
}

/** Waits for its signal, then fails the way a transfer torn down by the abort would (not with the abort itself). */
class Waits extends BaseCommand<typeof Waits> {
  static started: () => void = () => {}

  async run(): Promise<void> {
    await new Promise((resolve) => {
      this.signal.addEventListener('abort', resolve, {once: true})
      Waits.started()
    })
    throw new Error('socket closed while writing')
  }
}

class Succeeds extends BaseCommand<typeof Succeeds> {
  async run(): Promise<{done: boolean}> {
    this.logger().warn('the destination has less than 1 GB free')
    this.logger().info('a note for people')
    return {done: true}
  }
}

async function runFails(...argv: string[]) {
  Fails.id = 'fails'
  const output = await captureOutput(() => Fails.run(argv, config))
  return {...output, exit: output.error?.oclif?.exit}
}

describe('BaseCommand: errors for people', () => {
  it('prints the message and what to try, no stack, and exits with the error class code', async () => {
    const {exit, stderr, stdout} = await runFails('--with', 'usage')
    expect(exit).toBe(2)
    expect(stderr).toBe('Error: --from and --to name the same host\n  Try: name another host\n')
    expect(stdout).toBe('')
  })

  it('prints recipe issues one per line as file:line:col path: message, without "Error:"', async () => {
    const {exit, stderr} = await runFails('--with', 'recipe')
    expect(exit).toBe(2)
    expect(stderr.trimEnd().split('\n')).toEqual([
      'recipe.yaml:3:7 images[0].from: unknown host "egde" (did you mean "edge"?)',
      'recipe.yaml:5:1 images[1].ref: expected a string',
    ])
  })

  it('adds the stack with --debug', async () => {
    const {exit, stderr} = await runFails('--with', 'step', '--debug')
    expect(exit).toBe(1)
    expect(stderr).toMatch(/^Error: 1 of 3 steps failed\nStepFailedError: 1 of 3 steps failed\n\s+at /)
  })

  it.each([
    ['usage', ExitCode.Usage],
    ['recipe', ExitCode.Usage],
    ['step', ExitCode.Failed],
    ['engine', ExitCode.Failed],
    ['unreachable', ExitCode.Unreachable],
    ['auth', ExitCode.Auth],
    ['verify', ExitCode.Verify],
    ['interrupted', ExitCode.Interrupted],
  ])('exits %s errors with %i', async (name, code) => {
    expect((await runFails('--with', name)).exit).toBe(code)
    expect((await runFails('--with', name, '--json')).exit).toBe(code)
  })

  it("leaves an error outside the hierarchy (a bug) to oclif's handler: rethrown as it is, nothing rendered", async () => {
    const {error, exit, stderr} = await runFails('--with', 'plain')
    expect(error?.message).toBe('a bug')
    expect(exit).toBeUndefined()
    expect(stderr).toBe('')
  })
})

describe('BaseCommand: errors for programs (--json)', () => {
  it('writes the error as one JSON document on stdout: code, exit, message, suggestions, details', async () => {
    const {exit, stderr, stdout} = await runFails('--with', 'unreachable', '--json')
    expect(exit).toBe(3)
    expect(JSON.parse(stdout)).toEqual({
      error: {
        code: 'SSH_UNREACHABLE',
        details: {cause: 'ECONNREFUSED'},
        exit: 3,
        message: 'edge: connection refused',
        suggestions: [],
      },
    })
    expect(stderr).toBe('')
  })

  it('gives a recipe error its issues with their positions', async () => {
    const {stdout} = await runFails('--with', 'recipe', '--json')
    expect(JSON.parse(stdout).error).toMatchObject({
      code: 'RECIPE_INVALID',
      details: {issues: [{column: 7, file: 'recipe.yaml', line: 3, path: 'images[0].from'}, {line: 5}]},
      exit: 2,
    })
  })

  it('writes warnings as JSON-lines events on stderr and leaves notes out; the result is stdout', async () => {
    Succeeds.id = 'succeeds'
    const human = await captureOutput(() => Succeeds.run([], config))
    expect(human.stderr).toBe('Warning: the destination has less than 1 GB free\na note for people\n')
    const json = await captureOutput(() => Succeeds.run(['--json'], config))
    expect(json.error).toBeUndefined()
    expect(JSON.parse(json.stdout)).toEqual({done: true})
    const events = json.stderr.trimEnd().split('\n')
    expect(events).toHaveLength(1)
    expect(JSON.parse(events[0]!)).toMatchObject({message: 'the destination has less than 1 GB free', type: 'warning'})
  })
})

describe('BaseCommand: Ctrl-C', () => {
  it('aborts the signal, reports the interruption rather than what broke on the way down, and exits 130', async () => {
    Waits.id = 'waits'
    const before = new Set(process.listeners('SIGINT'))
    const started = new Promise<void>((resolve) => {
      Waits.started = resolve
    })
    const running = captureOutput(() => Waits.run([], config))
    await started
    // the command's own handler, as the process would call it on Ctrl-C (not vitest's)
    const added = process.listeners('SIGINT').filter((listener) => !before.has(listener))
    expect(added).toHaveLength(1)
    added[0]!('SIGINT')
    const {error, stderr} = await running
    expect(error?.oclif?.exit).toBe(130)
    expect(stderr).toContain('Interrupting: stopping transfers and cleaning up')
    expect(stderr).toContain('Error: interrupted\n')
    expect(stderr).not.toContain('socket closed')
    // the handlers are gone once the command ends
    expect(process.listeners('SIGINT').filter((listener) => !before.has(listener))).toHaveLength(0)
    expect(process.listeners('SIGTERM').filter((listener) => !before.has(listener))).toHaveLength(0)
  })

  it('with --json, reports the interruption as the INTERRUPTED error', async () => {
    Waits.id = 'waits'
    const before = new Set(process.listeners('SIGTERM'))
    const started = new Promise<void>((resolve) => {
      Waits.started = resolve
    })
    const running = captureOutput(() => Waits.run(['--json'], config))
    await started
    for (const listener of process.listeners('SIGTERM').filter((l) => !before.has(l))) listener('SIGTERM')
    const {error, stdout} = await running
    expect(error?.oclif?.exit).toBe(130)
    expect(JSON.parse(stdout)).toMatchObject({error: {code: 'INTERRUPTED', exit: 130, message: 'interrupted'}})
  })
})
