/** Unit specs sit beside the code; end-to-end specs live in test/ and use real services. */
const transform = { '^.+\\.ts$': ['@swc/jest'] };

module.exports = {
  testTimeout: 180000,
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      rootDir: __dirname,
      testMatch: ['<rootDir>/src/**/*.spec.ts', '<rootDir>/examples/**/*.spec.ts'],
      transform,
    },
    {
      displayName: 'e2e',
      testEnvironment: 'node',
      rootDir: __dirname,
      testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
      transform,
      setupFiles: ['<rootDir>/test/support/setup-env.js'],
    },
  ],
};
