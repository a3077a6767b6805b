export * from './image-store.js'
export {imagesSection} from './section.js'
