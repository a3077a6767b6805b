import type {Hook} from '@oclif/core'

import createDebug from 'debug'

import {coreServices} from '../services.js'

const debug = createDebug('transship:plugin')

const hook: Hook<'transship:services'> = async function () {
  return coreServices(this.config, {
    debug: (message) => debug(message),
    info: (message) => process.stderr.write(`${message}\n`),
    warn: (message) => process.stderr.write(`Warning: ${message}\n`),
  })
}

export default hook
