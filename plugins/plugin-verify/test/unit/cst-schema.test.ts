// container-structure-test's v2 schema as its Go structs read it: yaml tags with go-yaml v2 (YAML 1.1) for .yaml
// files, Go field names matched case-insensitively with encoding/json for .json files, and the defaults of each.
import {RecipeError} from '@transship/kit'
import {describe, expect, it} from 'vitest'

import {parseVerifyConfig} from '../../src/config/load.js'

describe('container-structure-test v2 files, read as CST reads them', () => {
  it('takes unboundEnvVars as a list of {key} maps (and the plain names transship took before)', () => {
    const config = parseVerifyConfig(
      'schemaVersion: "2.0.0"\nmetadataTest:\n  unboundEnvVars:\n    - key: BAR_FOO\n    - OLD_STYLE\n',
      'm.yaml',
    )
    expect(config.metadataTest?.unboundEnvVars).toEqual([
      {key: 'BAR_FOO', value: ''},
      {key: 'OLD_STYLE', value: ''},
    ])
  })

  it('leaves an omitted env var or label value empty, as Go does', () => {
    const config = parseVerifyConfig(
      "schemaVersion: '2.0.0'\nmetadataTest:\n  labels:\n    - key: only-the-key\n",
      'm.yaml',
    )
    expect(config.metadataTest?.labels).toEqual([{key: 'only-the-key', value: ''}])
  })

  it('treats null as not given, as go-yaml does (cmd: ~ is unchecked, unlike cmd: [])', () => {
    const config = parseVerifyConfig(
      'schemaVersion: 2.0.0\nmetadataTest:\n  cmd: ~\n  entrypoint: []\n  workdir: null\ncommandTests:\n  - name: a\n    command: true\n    args: null\n',
      'n.yaml',
    )
    expect(config.metadataTest).toEqual({entrypoint: []})
    expect(config.commandTests?.[0]).toEqual({command: 'true', name: 'a'})
  })

  it('reads YAML 1.1 booleans (yes, on) in boolean fields and keeps them as text in string fields', () => {
    const config = parseVerifyConfig(
      'schemaVersion: 2.0.0\nfileExistenceTests:\n  - name: yes\n    path: /x\n    shouldExist: no\ncontainerRunOptions:\n  privileged: on\n',
      'b.yaml',
    )
    expect(config.fileExistenceTests?.[0]).toEqual({name: 'yes', path: '/x', shouldExist: false})
    expect(config.containerRunOptions?.privileged).toBe(true)
  })

  it('reads a JSON file as encoding/json does: keys in any case, and the Go zero values as defaults', () => {
    const config = parseVerifyConfig(
      JSON.stringify({
        ContainerRunOptions: {TTY: true, User: 'root'},
        FileExistenceTests: [
          {Name: 'n', Path: '/etc/passwd'},
          {name: 'm', path: '/x', shouldExist: true, uid: -1},
        ],
        MetadataTest: {UnboundEnvVars: [{Key: 'X'}]},
        SchemaVersion: '2.0.0',
      }),
      'cst.json',
    )
    // without shouldExist, uid and gid a JSON test means: must not exist, owned by 0:0
    expect(config.fileExistenceTests).toEqual([
      {gid: 0, name: 'n', path: '/etc/passwd', shouldExist: false, uid: 0},
      {gid: 0, name: 'm', path: '/x', shouldExist: true, uid: -1},
    ])
    expect(config.containerRunOptions).toEqual({allocateTty: true, user: 'root'})
    expect(config.metadataTest?.unboundEnvVars).toEqual([{key: 'X', value: ''}])
  })

  it('refuses allocateTty in a JSON file, where CST reads the option as "tty"', () => {
    let error: unknown
    try {
      parseVerifyConfig('{"schemaVersion": "2.0.0", "containerRunOptions": {"allocateTty": true}}', 'x.json')
    } catch (error_) {
      error = error_
    }

    expect(error).toBeInstanceOf(RecipeError)
    expect((error as RecipeError).issues[0]?.message).toMatch(/JSON.*"tty"/)
  })

  it('takes network per file and per test, and any bind mount option Docker knows', () => {
    const config = parseVerifyConfig(
      [
        'schemaVersion: 2.0.0',
        'containerRunOptions:',
        '  network: none',
        '  bindMounts: ["/srv:/srv:ro,z", "cache:/cache"]',
        'commandTests:',
        '  - {name: a, command: wget, network: host}',
        'waitTests:',
        '  - {name: w, log: x, network: bridge}',
      ].join('\n'),
      'net.yaml',
    )
    expect(config.containerRunOptions).toEqual({bindMounts: ['/srv:/srv:ro,z', 'cache:/cache'], network: 'none'})
    expect(config.commandTests?.[0]?.network).toBe('host')
    expect(config.waitTests?.[0]?.network).toBe('bridge')
  })
})
