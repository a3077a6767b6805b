export {rootfsSection} from './section.js'
export type * from './source/entry.js'
