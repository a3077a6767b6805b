// Loading YAML (and JSON) files against a zod schema, with every problem positioned: see load.ts.
export {describeValue, MAX_ISSUES, quote, REQUIRED_MESSAGE} from './issues.js'
export {
  loadYamlFile,
  type LoadYamlOptions,
  parseYamlText,
  type YamlDocumentSpec,
  type YamlFileProblem,
  type YamlFileSpec,
} from './load.js'
export {formatPath, type KeyPath} from './paths.js'
export {expectedNoun, type IssueLocator, literal} from './schema-issues.js'
export {YAML_LIMITS, YamlErrorCode, type YamlSource} from './source.js'
export {closest, LISTED_NAMES, nameList, unknownKeyMessage} from './suggest.js'
