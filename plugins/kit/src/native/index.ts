export * from './addon.js'
export * from './sparse.js'
export * from './xattrs.js'
