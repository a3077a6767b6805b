import type {Hook} from '@oclif/core'

import {verifySection} from '../section.js'

const hook: Hook<'transship:sections'> = async function () {
  return [verifySection]
}

export default hook
