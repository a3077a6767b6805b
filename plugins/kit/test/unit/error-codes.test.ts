import {ERROR_CODES, ExitCode, TransshipError, UsageError} from '@transship/kit'
import {readFile} from 'node:fs/promises'
import {describe, expect, it} from 'vitest'

import {errorCodeTable, readmeErrorCodeTable} from '../../../../test/helpers/error-code-table.js'

describe('the catalogue of error codes', () => {
  it('is the table in the README (npm run readme:error-codes writes it)', async () => {
    const readme = await readFile(new URL('../../../../README.md', import.meta.url), 'utf8')
    expect(readmeErrorCodeTable(readme)).toBe(errorCodeTable())
  })

  it('names each code SUBJECT_PROBLEM in capitals, with a documented exit code and a one-line meaning', () => {
    const documented = new Set<number>(Object.values(ExitCode))
    for (const [code, {exit, meaning}] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^[A-Z][A-Z\d]*(_[A-Z\d]+)*$/)
      for (const value of [exit].flat()) expect(documented.has(value), `${code}: exit ${value}`).toBe(true)
      expect(meaning, code).toMatch(/^[^\n|]{10,120}$/)
    }
  })

  it('gives errors the code and exit code they were made with, in --json', () => {
    expect(new UsageError('no').toJSON()).toMatchObject({code: 'USAGE', exit: ExitCode.Usage})
    expect(new TransshipError('VOLUME_DIFFERENT', ExitCode.Verify, 'differs').toJSON()).toMatchObject({
      code: 'VOLUME_DIFFERENT',
      exit: 5,
    })
  })

  it('refuses, at compile time, a code outside it and an exit code it does not give that code', () => {
    const made = [
      // @ts-expect-error a typo of VOLUME_DIFFERENT
      new TransshipError('VOLUME_DIFERENT', ExitCode.Verify, 'differs'),
      // @ts-expect-error VOLUME_DIFFERENT exits with 5
      new TransshipError('VOLUME_DIFFERENT', ExitCode.Usage, 'differs'),
      // @ts-expect-error a UsageError's code is one that exits with 2
      new UsageError('differs', {code: 'VOLUME_DIFFERENT'}),
    ]
    // (the constructors do not check at run time: the compiler does)
    expect(made.map((error) => error.code)).toEqual(['VOLUME_DIFERENT', 'VOLUME_DIFFERENT', 'VOLUME_DIFFERENT'])
  })
})
