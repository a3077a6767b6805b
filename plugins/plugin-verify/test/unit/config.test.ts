import {RecipeError, type RecipeIssue, UsageError} from '@transship/kit'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {loadVerifyConfig, parseVerifyConfig} from '../../src/config/load.js'
import {compilePattern, configJsonSchema, PERMISSIONS_PATTERN} from '../../src/config/schema.js'

/** The example of the research note (rootfs-verify-peers.md, 3.1), keys verified against CST's structs. */
const CST_EXAMPLE = `schemaVersion: "2.0.0"
globalEnvVars:
  - key: LANG
    value: C.UTF-8
commandTests:
  - name: "apt is usable"
    command: "apt-get"
    args: ["--version"]
    expectedOutput: ["^apt \\\\d"]
    exitCode: 0
fileExistenceTests:
  - name: "bash"
    path: "/bin/bash"
    shouldExist: true
    permissions: "-rwxr-xr-x"
    uid: 0
    gid: 0
    isExecutableBy: "any"
  - name: "no machine-id baked in"
    path: "/etc/machine-id"
    shouldExist: false
fileContentTests:
  - name: "bookworm"
    path: "/etc/os-release"
    expectedContents: ["VERSION_CODENAME=bookworm"]
    excludedContents: ["ubuntu"]
metadataTest:
  envVars:
    - key: PATH
      value: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  cmd: ["bash"]
  entrypoint: []
  labels:
    - key: org.opencontainers.image.source
      value: "^https://"
      isRegex: true
licenseTests:
  - debian: true
    files: []
containerRunOptions:
  user: "root"
  capabilities: ["NET_BIND_SERVICE"]
`

function issuesOf(text: string, file = 'verify.yaml'): RecipeIssue[] {
  try {
    parseVerifyConfig(text, file)
  } catch (error) {
    expect(error).toBeInstanceOf(RecipeError)
    expect((error as RecipeError).exit).toBe(2)
    return (error as RecipeError).issues
  }

  throw new Error('expected the config to be refused')
}

describe('parseVerifyConfig', () => {
  it('reads a full container-structure-test file', () => {
    const config = parseVerifyConfig(CST_EXAMPLE, 'cst.yaml')
    expect(config.schemaVersion).toBe('2.0.0')
    expect(config.commandTests?.[0]).toEqual({
      args: ['--version'],
      command: 'apt-get',
      expectedOutput: [String.raw`^apt \d`],
      exitCode: 0,
      name: 'apt is usable',
    })
    expect(config.fileExistenceTests).toHaveLength(2)
    expect(config.fileExistenceTests?.[0]?.permissions).toBe('-rwxr-xr-x')
    expect(config.metadataTest?.entrypoint).toEqual([])
    expect(config.metadataTest?.labels?.[0]?.isRegex).toBe(true)
    expect(config.licenseTests).toEqual([{debian: true, files: []}])
    expect(config.containerRunOptions).toEqual({capabilities: ['NET_BIND_SERVICE'], user: 'root'})
    expect(compilePattern(config.commandTests![0]!.expectedOutput![0]!).test('apt 2.6.1 (amd64)')).toBe(true)
  })

  it('reads the JSON form, and the extensions', () => {
    const json = JSON.stringify(
      {
        commandTests: [{command: 'true', name: 'runs', setup: [['touch', '/x']], timeout: 5}],
        fileExistenceTests: [
          {linkTarget: '/usr/bin/bash', name: 'sh', path: '/bin/sh', permissions: 'Lrwxrwxrwx'},
          {name: 'ping', path: '/bin/ping', permissions: '-rwsr-xr-x', sha256: 'ab'.repeat(32)},
        ],
        metadataTest: {healthcheck: true},
        schemaVersion: '2.0.0',
        waitTests: [
          {log: 'ready to accept connections', name: 'postgres', timeout: 30},
          {healthy: true, name: 'healthy'},
          {name: 'port', port: 5432},
        ],
      },
      undefined,
      '\t',
    )
    const config = parseVerifyConfig(json, 'verify.json')
    expect(config.waitTests?.map((t) => t.name)).toEqual(['postgres', 'healthy', 'port'])
    expect(config.fileExistenceTests?.[1]?.sha256).toBe('ab'.repeat(32))
    expect(config.metadataTest?.healthcheck).toBe(true)
  })

  it('takes a plain number or boolean as text where a string is expected, as go-yaml does', () => {
    const config = parseVerifyConfig(
      'schemaVersion: 2.0.0\nmetadataTest:\n  envVars:\n    - key: PORT\n      value: 8080\n  user: 1000\n',
      'v.yaml',
    )
    expect(config.metadataTest?.envVars).toEqual([{key: 'PORT', value: '8080'}])
    expect(config.metadataTest?.user).toBe('1000')
  })

  it('accepts leading Go inline flags in a regex', () => {
    const config = parseVerifyConfig(
      'schemaVersion: "2.0.0"\ncommandTests:\n  - {name: x, command: y, expectedOutput: ["(?i)^hello"]}\n',
      'v.yaml',
    )
    expect(compilePattern(config.commandTests![0]!.expectedOutput![0]!).test('HELLO world')).toBe(true)
  })

  it('points at an unknown key, with a did-you-mean', () => {
    const issues = issuesOf(
      'schemaVersion: "2.0.0"\ncommandTests:\n  - name: a\n    command: echo\n    expectedOuput: ["a"]\n',
    )
    expect(issues).toEqual([
      {
        column: 5,
        file: 'verify.yaml',
        line: 5,
        message: 'unknown key "expectedOuput" (did you mean "expectedOutput"?)',
        path: 'commandTests[0].expectedOuput',
      },
    ])
  })

  it('lists the allowed keys when none is close, and takes every CST run option', () => {
    const issues = issuesOf(
      'schemaVersion: "2.0.0"\ncontainerRunOptions:\n  bindMounts: ["/srv:/srv:ro"]\n  allocateTty: true\n  frobnicate: 1\n',
    )
    expect(issues.map((i) => [i.line, i.message])).toEqual([
      [
        5,
        'unknown key "frobnicate" (allowed: allocateTty, bindMounts, capabilities, envFile, envVars, network, privileged, user)',
      ],
    ])
  })

  it('refuses a value of the wrong type', () => {
    const issues = issuesOf(
      'schemaVersion: "2.0.0"\nfileExistenceTests:\n  - name: a\n    path: /a\n    shouldExist: maybe\n    uid: 1.5\n',
    )
    expect(issues).toMatchObject([
      {
        line: 5,
        column: 18,
        path: 'fileExistenceTests[0].shouldExist',
        message: 'expected true or false, got the string "maybe"',
      },
      {line: 6, column: 10, path: 'fileExistenceTests[0].uid', message: 'expected an integer, got the number 1.5'},
    ])
  })

  it('refuses a regex that does not compile, naming it at its line', () => {
    const issues = issuesOf(
      "schemaVersion: '2.0.0'\ncommandTests:\n  - name: a\n    command: echo\n    expectedOutput: ['(unclosed']\n",
    )
    expect(issues).toHaveLength(1)
    expect(issues[0]).toMatchObject({column: 22, line: 5, path: 'commandTests[0].expectedOutput[0]'})
    expect(issues[0]!.message).toMatch(/^invalid regular expression "\(unclosed": unterminated group$/i)
  })

  it('checks a regex env value, and the wait test and file test extensions', () => {
    const issues = issuesOf(`schemaVersion: "2.0.0"
metadataTest:
  labels:
    - {key: a, value: "[", isRegex: true}
    - {key: b, value: "[", isRegex: false}
waitTests:
  - name: nothing
  - name: two
    log: "ready"
    port: 80
  - {name: bad-log, log: "*", timeout: 0}
fileExistenceTests:
  - {name: m, path: /m, permissions: "rwxr-xr-x", sha256: "abc"}
`)
    expect(issues.map((i) => `${i.line}:${i.path}: ${i.message}`)).toEqual([
      '4:metadataTest.labels[0].value: invalid regular expression "[": Unterminated character class',
      '7:waitTests[0]: give what to wait for: one of log, healthy or port',
      '8:waitTests[1]: wait for one thing only: give one of log, port, not both',
      '11:waitTests[2].log: invalid regular expression "*": Nothing to repeat',
      '11:waitTests[2].timeout: must be a positive number of seconds, got the number 0',
      '13:fileExistenceTests[0].permissions: expected a mode as Go\'s FileMode.String() writes it, such as -rwxr-xr-x, drwxr-xr-x or Lrwxrwxrwx, got the string "rwxr-xr-x"',
      '13:fileExistenceTests[0].sha256: expected a sha256 as 64 hexadecimal digits, got the string "abc"',
    ])
  })

  it('refuses another schemaVersion, or none', () => {
    expect(issuesOf('schemaVersion: "1.0.0"\n')).toEqual([
      {
        column: 16,
        file: 'verify.yaml',
        line: 1,
        message: 'expected "2.0.0" (the container-structure-test v2 schema), got the string "1.0.0"',
        path: 'schemaVersion',
      },
    ])
    expect(issuesOf('schemaVersion: 2.0\n')[0]?.message).toMatch(/got the number 2$/)
    expect(issuesOf('commandTests: []\n')).toMatchObject([{line: 1, message: 'missing required key "schemaVersion"'}])
  })

  it('reports several problems together, in file order', () => {
    const issues = issuesOf(`schemaVersion: "3"
commandTests:
  - command: ls
    exitCode: "0"
    expectedOutput: ["(("]
fileContentTests:
  - name: x
    path: /x
    expectedContent: ["a"]
`)
    expect(issues.map((i) => [i.line, i.path])).toEqual([
      [1, 'schemaVersion'],
      [3, 'commandTests[0]'],
      [4, 'commandTests[0].exitCode'],
      [5, 'commandTests[0].expectedOutput[0]'],
      [9, 'fileContentTests[0].expectedContent'],
    ])
    expect(issues[1]?.message).toBe('missing required key "name"')
    expect(issues[4]?.message).toBe('unknown key "expectedContent" (did you mean "expectedContents"?)')
  })

  it('reports YAML syntax errors with their position', () => {
    const issues = issuesOf('schemaVersion: "2.0.0"\ncommandTests:\n  - name: [a\n')
    expect(issues.length).toBeGreaterThan(0)
    expect(issues[0]).toMatchObject({file: 'verify.yaml', line: expect.any(Number), column: expect.any(Number)})
    expect(issues[0]!.message).toMatch(/^invalid YAML: /)
    expect(issuesOf('{\n  "schemaVersion": "2.0.0"\n', 'v.json')[0]).toMatchObject({
      line: expect.any(Number),
      message: expect.stringMatching(/^invalid JSON: /),
    })
  })

  it('refuses an empty file, a non-map and duplicate keys', () => {
    expect(issuesOf('')[0]?.message).toMatch(/empty/)
    expect(issuesOf('- a\n')[0]?.message).toMatch(/^a config is a map of keys, not a list/)
    expect(issuesOf('schemaVersion: "2.0.0"\nschemaVersion: "2.0.0"\n')[0]).toMatchObject({line: 2})
  })
})

describe('loadVerifyConfig', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'verify-config-'))
  })
  afterAll(async () => {
    await rm(dir, {force: true, recursive: true})
  })

  it('reads a file', async () => {
    const file = join(dir, 'cst.yaml')
    await writeFile(file, CST_EXAMPLE)
    await expect(loadVerifyConfig(file)).resolves.toMatchObject({schemaVersion: '2.0.0'})
  })

  it('reports a missing file as FILE_NOT_FOUND, suggesting a close name', async () => {
    await writeFile(join(dir, 'cst.yaml'), CST_EXAMPLE)
    const error = await loadVerifyConfig(join(dir, 'cst.yml')).catch((error_: unknown) => error_)
    expect(error).toBeInstanceOf(UsageError)
    expect(error).toMatchObject({code: 'FILE_NOT_FOUND', exit: 2})
    expect((error as UsageError).message).toContain('cst.yml')
    expect((error as UsageError).suggestions[0]).toBe(`did you mean ${join(dir, 'cst.yaml')}?`)
  })

  it('reports a directory as FILE_WRONG_TYPE', async () => {
    await expect(loadVerifyConfig(dir)).rejects.toMatchObject({code: 'FILE_WRONG_TYPE', exit: 2})
  })

  it('names the file in validation issues', async () => {
    const file = join(dir, 'bad.yaml')
    await writeFile(file, 'schemaVersion: "2.0.0"\nfoo: 1\n')
    const error = await loadVerifyConfig(file).catch((error_: unknown) => error_)
    expect(error).toBeInstanceOf(RecipeError)
    expect((error as RecipeError).message).toBe(`${file}:2:1 foo: unknown key "foo" (allowed: ${ALLOWED_TOP})`)
  })
})

const ALLOWED_TOP =
  'commandTests, containerRunOptions, fileContentTests, fileExistenceTests, globalEnvVars, licenseTests, metadataTest, schemaVersion, waitTests'

describe('schema', () => {
  it('accepts permissions as Go or ls writes them', () => {
    for (const mode of [
      '-rwxr-xr-x',
      'drwxr-xr-x',
      'Lrwxrwxrwx',
      '-rwsr-xr-x',
      'urwxr-xr-x',
      'dtrwxrwxrwx',
      'drwxrwxrwt',
    ])
      expect(PERMISSIONS_PATTERN.test(mode), mode).toBe(true)
    for (const mode of ['rwxr-xr-x', '-rwxr-xr-', '0755', '--rwxr-xr-x', 'xrwxr-xr-x'])
      expect(PERMISSIONS_PATTERN.test(mode), mode).toBe(false)
  })

  it('gives a JSON Schema for editors', () => {
    const schema = configJsonSchema()
    expect(schema.additionalProperties).toBe(false)
    expect(schema.required).toEqual(['schemaVersion'])
    expect(Object.keys(schema.properties as object)).toContain('waitTests')
  })
})
