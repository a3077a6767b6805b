export * from './errors.js'
export * from './framer.js'
export * from './header.js'
export * from './reader.js'
