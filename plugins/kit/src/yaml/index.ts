export * from './issues.js'
export * from './paths.js'
export * from './source.js'
