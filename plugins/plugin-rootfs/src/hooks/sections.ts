import type {Hook} from '@oclif/core'

import {rootfsSection} from '../section.js'

const hook: Hook<'transship:sections'> = async function () {
  return [rootfsSection]
}

export default hook
