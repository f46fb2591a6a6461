/**
 * Bundles each Lambda function as the CDK app does (NodejsFunction with infra/secure-defaults.ts: ESM,
 * minified, node22, the AWS SDK v3 left to the runtime), then times how long a fresh Node process takes to
 * import each bundle: the module-scope work of a Lambda cold start.
 */
import { execFile } from "node:child_process";
import { mkdir, rm, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { build } from "esbuild";
import { median } from "./stats.ts";

const ROOT = resolve(import.meta.dirname, "..");
/** Inside the project (git-ignored), so that the bundles resolve @aws-sdk/* from node_modules as Lambda's runtime would. */
const OUT = resolve(ROOT, "dist/bench");
const run = promisify(execFile);

/** The code the stateless stack deploys: the API (one function per route group, all the same bundle) and the rest. */
export const FUNCTIONS: Record<string, string> = {
  api: "functions/api/handler.ts",
  tick: "functions/tick.ts",
  "events-relay": "functions/events-relay.ts",
  "events-replay": "functions/events-replay.ts",
  callbacks: "functions/callbacks.ts",
};

export interface BundleFigures {
  bundle_kb: Record<string, number>;
  cold_init_ms: Record<string, number>;
  /** Per function, the largest parts of its bundle (packages, or the project's top-level folders), in KB. */
  bundle_largest_parts_kb: Record<string, Record<string, number>>;
}

/** The package (or project folder) a bundled input belongs to. */
const partOf = (input: string) =>
  /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input)?.[1] ?? input.split("/")[0] ?? input;

async function bundle(name: string, entry: string) {
  const outfile = resolve(OUT, name, "index.mjs");
  const result = await build({
    entryPoints: [resolve(ROOT, entry)],
    outfile,
    bundle: true,
    platform: "node",
    target: "node22",
    format: "esm",
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    mainFields: ["module", "main"],
    // NodejsFunction's default for Node.js 18+ runtimes: the runtime provides the AWS SDK v3.
    external: ["@aws-sdk/*"],
    banner: {
      js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
    },
    logLevel: "warning",
    metafile: true,
  });
  const parts: Record<string, number> = {};
  for (const output of Object.values(result.metafile.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      parts[partOf(input)] = (parts[partOf(input)] ?? 0) + bytesInOutput;
    }
  }
  const largest = Object.entries(parts)
    .sort(([, a], [, b]) => b - a)
    .slice(0, 4)
    .map(([part, bytes]) => [part, Math.round(bytes / 1024)]);
  return { outfile, largest: Object.fromEntries(largest) as Record<string, number> };
}

/** Milliseconds a fresh `node` takes to import the file (measured inside it, so Node's own boot is left out). */
async function importMs(file: string): Promise<number> {
  const script = `const t = performance.now(); await import(${JSON.stringify(pathToFileURL(file).href)}); process.stdout.write(String(performance.now() - t));`;
  const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], {
    env: {
      ...process.env,
      POWERTOOLS_LOG_LEVEL: "WARN",
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
    },
  });
  return Number(stdout);
}

export async function measureBundles(runs = 5): Promise<BundleFigures> {
  await rm(OUT, { recursive: true, force: true });
  await mkdir(OUT, { recursive: true });
  const figures: BundleFigures = { bundle_kb: {}, cold_init_ms: {}, bundle_largest_parts_kb: {} };
  for (const [name, entry] of Object.entries(FUNCTIONS)) {
    const { outfile: file, largest } = await bundle(name, entry);
    figures.bundle_largest_parts_kb[name] = largest;
    figures.bundle_kb[name] = Math.round((await stat(file)).size / 1024);
    const times: number[] = [];
    for (let i = 0; i < runs; i++) times.push(await importMs(file));
    figures.cold_init_ms[name] = Math.round(median(times));
  }
  return figures;
}
