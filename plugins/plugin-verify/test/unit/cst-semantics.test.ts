// The pieces of container-structure-test's behaviour the runner reproduces: Go's os.Expand, godotenv's env
// files, RE2 regex semantics, which leftovers belong to a dead run, and its command environment.
import {describe, expect, it} from 'vitest'

import {parseDotenv} from '../../src/run/dotenv.js'
import {expandGo} from '../../src/run/go-expand.js'
import {
  currentOwner,
  isAbandoned,
  OWNER_BOOT_LABEL,
  OWNER_HOST_LABEL,
  OWNER_PID_LABEL,
  OWNER_START_LABEL,
  ownerLabels,
  RUNNER_LABEL,
  STALE_AFTER_MS,
} from '../../src/run/leftovers.js'
import {compileRegex} from '../../src/run/results.js'
import {commandEnvironment, type RunContext} from '../../src/run/run-options.js'

const env = new Map([
  ['HOME', '/root'],
  ['PATH', '/usr/bin:/bin'],
])
const lookup = (name: string) => env.get(name) ?? ''

/* eslint-disable no-template-curly-in-string -- ${NAME} is the syntax under test, not a template */
describe("Go's os.Expand", () => {
  it('replaces $NAME and ${NAME}, unset ones by nothing, and keeps a lone $', () => {
    expect(expandGo('/env/bin:$PATH', lookup)).toBe('/env/bin:/usr/bin:/bin')
    expect(expandGo('${HOME}/x $NOPE.', lookup)).toBe('/root/x .')
    expect(expandGo('cost: 5$ and $ 1', lookup)).toBe('cost: 5$ and $ 1')
    expect(expandGo('a${}b${c', lookup)).toBe('abc') // bad syntax is eaten: ${} and an unclosed ${
    expect(expandGo('$$ $1', lookup)).toBe(' ')
  })
})

describe('env files (godotenv 1.5)', () => {
  it('reads KEY=value and KEY: value, export, comments, quotes, escapes and earlier variables', () => {
    const vars = parseDotenv(
      [
        '# a comment',
        'FOO=keepitsecret!',
        'export BAR = keepitsafe! # trailing comment',
        String.raw`SINGLE='raw $FOO\n'`,
        'DOUBLE="line\\nnext ${FOO}"',
        'YAML: style',
        'EMPTY=',
        'LAST=x\r',
      ].join('\n'),
    )
    expect(Object.fromEntries(vars)).toEqual({
      BAR: 'keepitsafe!',
      DOUBLE: 'line\nnext keepitsecret!',
      EMPTY: '',
      FOO: 'keepitsecret!',
      LAST: 'x',
      SINGLE: String.raw`raw $FOO\n`,
      YAML: 'style',
    })
  })

  it('refuses a line that is not a variable', () => {
    expect(() => parseDotenv('FOO BAR\n')).toThrow(/variable name/)
    expect(() => parseDotenv('A="open\n')).toThrow(/unterminated/)
  })
})

function matches(pattern: string, text: string): boolean {
  const compiled = compileRegex(pattern)
  if ('error' in compiled) throw new Error(compiled.error)
  return compiled.regex.test(text)
}

describe('regexes mean what they mean in Go (RE2)', () => {
  it('anchors ^ and $ at the whole text, unless (?m)', () => {
    expect(matches('^hello$', 'hello\n')).toBe(false)
    expect(matches('^hello', 'hello\n')).toBe(true)
    expect(matches('(?m)^world$', 'hello\nworld\n')).toBe(true)
    expect(matches('^world', 'hello\nworld\n')).toBe(false)
  })

  it(String.raw`translates \A, \z, (?P<name>) and POSIX classes`, () => {
    expect(matches(String.raw`\Ahello`, 'hello')).toBe(true)
    expect(matches(String.raw`(?m)\Aworld`, 'hello\nworld')).toBe(false)
    expect(matches(String.raw`world\z`, 'hello world')).toBe(true)
    expect(matches('(?P<v>[[:digit:]]+)', 'v12')).toBe(true)
    expect(matches('^[[:upper:]]+$', 'ABC')).toBe(true)
  })
})

describe('leftovers of killed runs', () => {
  const me = currentOwner()
  const now = Date.now()

  it('are a dead process of this machine, or older than a day', () => {
    // a PID far beyond pid_max: no such process
    const dead = {...ownerLabels(), [OWNER_PID_LABEL]: '99999999'}
    expect(isAbandoned(dead, now)).toBe(true)
    // a live process with another start time is another process: its ID was reused
    const reused = {...ownerLabels(), [OWNER_START_LABEL]: '1'}
    expect(isAbandoned(reused, now)).toBe(me.start !== '')
  })

  it('are never a live run, another machine recent run, or a container without the label', () => {
    expect(isAbandoned(ownerLabels(), now)).toBe(false)
    const elsewhere = {...ownerLabels(), [OWNER_HOST_LABEL]: 'another-host', [OWNER_PID_LABEL]: '99999999'}
    expect(isAbandoned(elsewhere, now)).toBe(false)
    expect(isAbandoned(elsewhere, now - STALE_AFTER_MS - 1000)).toBe(true)
    const otherBoot = {...ownerLabels(), [OWNER_BOOT_LABEL]: 'x', [OWNER_PID_LABEL]: '99999999'}
    expect(isAbandoned(otherBoot, now)).toBe(false)
    expect(isAbandoned({[RUNNER_LABEL]: 'runner'}, now)).toBe(false)
    expect(isAbandoned({other: 'x'}, now - 10 * STALE_AFTER_MS)).toBe(false)
  })
})

describe('the environment of a command test, as CST builds it', () => {
  const context: RunContext = {
    envFileVars: new Map([
      ['EMPTY', ''],
      ['FROM_FILE', 'f'],
    ]),
    globalEnvVars: [{key: 'PATH', value: '/env/bin:$PATH'}],
    imageEnv: new Map(env),
    runOptions: {envVars: ['TRANSSHIP_TEST_PASSED', 'TRANSSHIP_TEST_UNSET']},
    signal: AbortSignal.timeout(1000),
  }

  it('expands globals against the image, args against the image after setup, and passes the run options', () => {
    process.env.TRANSSHIP_TEST_PASSED = 'p'
    const withoutSetup = commandEnvironment(context, {
      args: ['-c', 'echo $PATH $GREETING $HOME'],
      command: 'sh',
      envVars: [{key: 'GREETING', value: 'hi $HOME'}],
    })
    // $GREETING is not in the image: CST replaces it by nothing before the command runs
    expect(withoutSetup.command).toEqual(['sh', '-c', 'echo /env/bin:/usr/bin:/bin  /root'])
    expect(withoutSetup.commandEnv).toEqual([
      'PATH=/env/bin:/usr/bin:/bin',
      'GREETING=hi $HOME',
      'FROM_FILE=f',
      'TRANSSHIP_TEST_PASSED=p',
    ])
    const withSetup = commandEnvironment(context, {
      args: ['$GREETING'],
      command: 'echo',
      envVars: [{key: 'GREETING', value: 'hi $HOME'}],
      setup: [['true']],
    })
    // the setup container was committed with the test's variables, expanded
    expect(withSetup.command).toEqual(['echo', 'hi /root'])
    expect(withSetup.setupEnv).toEqual(['PATH=/env/bin:/usr/bin:/bin', 'GREETING=hi /root'])
  })
})
