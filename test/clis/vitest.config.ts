import { defineConfig } from "vitest/config";

/** `npm run test:clis`: the pinned CLIs against the model-API stand-in; not part of `npm test`. */
export default defineConfig({
  test: {
    include: ["test/clis/**/*.test.ts"],
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    // Installing the CLIs the first time takes a minute or two; gemini retries a 429 for about 4 minutes.
    hookTimeout: 600_000,
    testTimeout: 420_000,
    maxConcurrency: 3,
  },
});
