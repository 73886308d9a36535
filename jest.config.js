// Tests are compiled by `tsc` first (type-checked with the rest), then run from dist/ as ESM.
const common = { testEnvironment: 'node', transform: {}, moduleFileExtensions: ['js'] };
export default {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/dist/test/unit/**/*.test.js'] },
    { ...common, displayName: 'remote', testMatch: ['<rootDir>/dist/test/remote/**/*.test.js'] },
    { ...common, displayName: 'twin', testMatch: ['<rootDir>/dist/test/twin/**/*.test.js'] },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/dist/test/e2e/**/*.test.js'] },
  ],
};
