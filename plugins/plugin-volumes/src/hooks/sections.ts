import type {Hook} from '@oclif/core'

import {volumesSection} from '../section.js'

const hook: Hook<'transship:sections'> = async function () {
  return [volumesSection]
}

export default hook
