import type {Hook} from '@oclif/core'

import {imagesSection} from '../section.js'

const hook: Hook<'transship:sections'> = async function () {
  return [imagesSection]
}

export default hook
