export * from './format.js'
export * from './progress.js'
