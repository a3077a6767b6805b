export * from './image-load.js'
export * from './ndjson.js'
export * from './exec.js'
