// The CLI's help and wiring: every command of the core and of the plugins is there, with examples.
import os from 'node:os'
import {describe, expect, it} from 'vitest'

import {transship} from '../helpers/cli.js'

describe('transship --help', () => {
  it('lists the core and plugin commands', async () => {
    const result = await transship(['--help'], {home: os.tmpdir()})
    expect(result.code).toBe(0)
    for (const topic of ['apply', 'plan', 'recipe', 'hosts', 'image'])
      expect(result.stdout).toMatch(new RegExp(`^  ${topic}\\s`, 'm'))
  })

  it.each([
    ['apply'],
    ['plan'],
    ['recipe', 'validate'],
    ['recipe', 'schema'],
    ['hosts', 'check'],
    ['image', 'tag'],
    ['image', 'ls'],
    ['image', 'copy'],
    ['image', 'save'],
    ['image', 'load'],
    ['image', 'commit'],
    ['image', 'history'],
  ])('shows usage and examples for %s', async (...command) => {
    const result = await transship([...command, '--help'], {home: os.tmpdir()})
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('EXAMPLES')
    expect(result.stdout).toContain(`$ transship ${command.join(' ')}`)
  })

  it('exits 2 on an unknown flag', async () => {
    const result = await transship(['plan', 'recipes/quickstart.yaml', '--no-such-flag'], {home: os.tmpdir()})
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('Nonexistent flag: --no-such-flag')
  })
})
