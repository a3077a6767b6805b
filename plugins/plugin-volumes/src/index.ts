export {volumesSection} from './section.js'
