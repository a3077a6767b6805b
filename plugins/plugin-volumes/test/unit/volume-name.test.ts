import {describe, expect, it} from 'vitest'

import {volumeSchema} from '../../src/section.js'
import {checkVolumeName} from '../../src/volume-name.js'

const BAD = ['../evil', 'a/b', '.hidden', '_x', '-rm', 'a', '', 'with space', 'naïve', 'x\u0000y', '..']
const GOOD = ['pgdata', 'my_app.data-1', '0x', 'A.b_c-D']

describe('volume names', () => {
  it('takes the names Docker takes', () => {
    for (const name of GOOD) expect(checkVolumeName(name)).toBe(name)
  })

  it('refuses the others with a usage error that names them', () => {
    for (const name of BAD) {
      expect(() => checkVolumeName(name, '--as'), name).toThrow(
        expect.objectContaining({
          code: 'VOLUME_NAME_INVALID',
          exit: 2,
          message: expect.stringContaining(`--as ${JSON.stringify(name)}`),
        }),
      )
    }
  })

  it('refuses them in a recipe too (name and as)', () => {
    for (const name of BAD) {
      expect(volumeSchema.safeParse({from: 'a', name, to: 'b'}).success, name).toBe(false)
      expect(volumeSchema.safeParse({as: name, from: 'a', name: 'ok-name', to: 'b'}).success, name).toBe(false)
    }

    expect(volumeSchema.safeParse({as: 'copy.1', from: 'a', name: 'pgdata', to: 'b'}).success).toBe(true)
  })
})
