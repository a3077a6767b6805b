import oclif from 'eslint-config-oclif'
import prettier from 'eslint-config-prettier'

export default [
  {ignores: ['**/dist/**', 'native/build/**', 'test/.state/**', 'coverage/**']},
  ...oclif,
  prettier,
  {
    rules: {
      // streams and engine replies are naturally handled with classes and callbacks
      'n/no-unsupported-features/node-builtins': 'off',
      'no-await-in-loop': 'off',
      'unicorn/no-array-reduce': 'off',
      'unicorn/prefer-event-target': 'off',
      'perfectionist/sort-classes': 'off',
      'perfectionist/sort-objects': 'off',
      'perfectionist/sort-object-types': 'off',
      'perfectionist/sort-interfaces': 'off',
      'perfectionist/sort-switch-case': 'off',
      'max-params': ['warn', 6],
    },
  },
  {
    // the tests use vitest, not mocha
    files: ['test/**/*.ts', 'plugins/*/test/**/*.ts'],
    rules: Object.fromEntries(
      Object.keys(oclif.find((config) => config.plugins?.mocha)?.plugins.mocha.rules ?? {}).map((rule) => [
        `mocha/${rule}`,
        'off',
      ]),
    ),
  },
]
