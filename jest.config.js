// Tests are compiled by `tsc` first (type-checked with the rest), then run from dist/ as ESM.
const common = {
  testEnvironment: 'node',
  transform: {},
  moduleFileExtensions: ['js'],
  // The SDK's Node-version notice is for people, not test logs.
  setupFiles: ['<rootDir>/test/support/quiet-sdk.cjs'],
};
export default {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/dist/test/unit/**/*.test.js'] },
    { ...common, displayName: 'remote', testMatch: ['<rootDir>/dist/test/remote/**/*.test.js'] },
    { ...common, displayName: 'twin', testMatch: ['<rootDir>/dist/test/twin/**/*.test.js'] },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/dist/test/e2e/**/*.test.js'] },
  ],
};
