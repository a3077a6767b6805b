export * from './exec.js'
export * from './image-load.js'
export * from './ndjson.js'
