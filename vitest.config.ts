import { defineConfig } from "vitest/config";

const env = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" };

export default defineConfig({
  test: {
    projects: [
      { test: { name: "unit", include: ["test/unit/**/*.test.ts"], env } },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          env,
          globalSetup: ["test/support/emulators-setup.ts"],
          testTimeout: 30_000,
          hookTimeout: 120_000,
        },
      },
      { test: { name: "infra", include: ["test/infra/**/*.test.ts"], env, testTimeout: 120_000 } },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          env,
          globalSetup: ["test/support/emulators-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: "browser",
          include: ["test/browser/**/*.test.ts"],
          env,
          globalSetup: ["test/support/emulators-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
