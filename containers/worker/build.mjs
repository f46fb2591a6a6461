// Bundles the worker into one ESM file: `node containers/worker/build.mjs [outfile]` (default dist/worker.mjs).
// Used by the Dockerfile; plain JS so that it runs without tsx.
import { build } from "esbuild";

await build({
  entryPoints: [new URL("./main.ts", import.meta.url).pathname],
  outfile: process.argv[2] ?? "dist/worker.mjs",
  bundle: true,
  platform: "node",
  target: "node22",
  format: "esm",
  // Bundled CommonJS dependencies (the AWS SDK's) call require() for Node built-ins.
  banner: {
    js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
  },
  logLevel: "warning",
});
