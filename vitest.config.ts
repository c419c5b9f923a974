// Test runner configuration: unit tests sit beside the code (*.test.ts), hardware tests in test/hw/.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["**/*.test.ts"],
    exclude: ["node_modules/**", "**/.scratch/**", "**/assembly/**", "out/**", "artifacts/**"],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // Two cores on CI: hardware tests boot QEMU and must not starve each other.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    pool: "forks",
  },
});
