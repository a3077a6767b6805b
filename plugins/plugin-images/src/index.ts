export * from './image-store.js'
export * from './reference.js'
export {imagesSection} from './section.js'
