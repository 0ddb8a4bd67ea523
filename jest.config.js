/**
 * One jest run for the whole repository. ESM throughout: jest runs under
 * `node --experimental-vm-modules` and ts-jest compiles TypeScript as ESM.
 * Unit specs sit beside the code (`*.spec.ts` under `libs/<lib>/src`); a library's integration specs
 * (a real PostgreSQL, real socket.io servers and clients) live in its own `test/` folder
 * (`libs/relay/test`); cross-library and end-to-end tests live in the repository's `test/`.
 * @type {import('jest').Config}
 */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
    '^@usm/(crypto|protocol|client|relay)$': '<rootDir>/libs/$1/src/index.ts',
    '^@usm/client/node$': '<rootDir>/libs/client/src/node.ts',
  },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
  },
  testMatch: [
    '<rootDir>/libs/*/src/**/*.spec.ts',
    '<rootDir>/libs/*/test/**/*.spec.ts',
    '<rootDir>/test/**/*.spec.ts',
    '<rootDir>/apps/*/test/**/*.spec.ts',
  ],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  modulePathIgnorePatterns: ['<rootDir>/libs/.*/dist/'],
  testTimeout: 120000,
  // The reliability suite (test/reliability) records its cases; this reporter turns them into
  // docs/reliability.md at the end of a run that recorded any.
  reporters: ['default', '<rootDir>/test/reliability/reliability-reporter.mjs'],
};
