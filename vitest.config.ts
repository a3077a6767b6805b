import {defineConfig} from 'vitest/config'

export default defineConfig({
  test: {
    disableConsoleIntercept: true,
    projects: [
      {
        extends: true,
        test: {
          include: ['test/unit/**/*.test.ts', 'plugins/*/test/unit/**/*.test.ts'],
          name: 'unit',
        },
      },
      {
        extends: true,
        test: {
          // the real test bed (engines, sshd, registry) is brought up once for all end-to-end tests
          fileParallelism: false,
          globalSetup: ['test/bed/global-setup.ts'],
          hookTimeout: 600_000,
          include: ['test/e2e/**/*.test.ts', 'plugins/*/test/e2e/**/*.test.ts'],
          name: 'e2e',
          testTimeout: 180_000,
        },
      },
    ],
  },
})
