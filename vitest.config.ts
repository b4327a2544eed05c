// Test runner settings: unit tests sit beside the code, integration tests in test/.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // Every file ends with a scan of its test apps' logs for leaked credentials.
    setupFiles: ["test/setup/no-secrets-in-logs.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // PGlite instances are memory-hungry and the CI machine has 2 cores.
    maxWorkers: 2,
  },
});
