export * from './image-load.js'
export * from './ndjson.js'
