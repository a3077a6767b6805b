export {
  loadRecipe,
  type LoadRecipeOptions,
  MAX_ALIAS_COUNT,
  parseRecipe,
  type Recipe,
  recipeContext,
  type RecipeSection,
  type RecipeSource,
} from './load.js'
export {
  CORE_KEYS,
  DEFAULT_REMOTE_SOCKET,
  hostEngine,
  type HostSpec,
  KNOWN_SECTIONS,
  LOCAL_HOST,
  type RecipeData,
  recipeJsonSchema,
  type RecipeJsonSchemaOptions,
  recipeSchema,
  type RegistryAuth,
  type RegistrySpec,
  SUPPORTED_VERSIONS,
} from './schema.js'
export {formatPath} from '@transship/kit/yaml'
