export * from './engine.js'
export * from './errors.js'
export * from './plugin-api.js'
