export {verifySection} from './section.js'
