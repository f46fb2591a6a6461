import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import type { Tool } from "../../core/fields.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const DOCKERFILE = join(ROOT, "containers/worker/Dockerfile");

/** Each CLI's npm package and the Dockerfile build argument that pins its version. */
const PACKAGES: Record<Tool, { name: string; arg: string }> = {
  claude: { name: "@anthropic-ai/claude-code", arg: "CLAUDE_CODE_VERSION" },
  codex: { name: "@openai/codex", arg: "CODEX_VERSION" },
  gemini: { name: "@google/gemini-cli", arg: "GEMINI_CLI_VERSION" },
};

/** The versions the worker image installs: the Dockerfile is the one place they are pinned. */
export async function pinnedVersions(): Promise<Record<Tool, string>> {
  const dockerfile = await readFile(DOCKERFILE, "utf8");
  const version = (tool: Tool) => {
    const { arg } = PACKAGES[tool];
    const found = new RegExp(`^ARG ${arg}=(\\S+)$`, "m").exec(dockerfile)?.[1];
    if (!found) throw new Error(`${DOCKERFILE} pins no ${arg}`);
    return found;
  };
  return { claude: version("claude"), codex: version("codex"), gemini: version("gemini") };
}

/**
 * Installs the pinned CLIs from npm into the git-ignored data dir, once per set of versions (about
 * 900 MB; the first install takes a minute), and returns the folder of their executables.
 */
export async function installPinnedClis(versions: Record<Tool, string>): Promise<string> {
  const key = (Object.keys(PACKAGES) as Tool[]).map((tool) => `${tool}-${versions[tool]}`).join("_");
  const dir = join(ROOT, ".data/clis", key);
  const bin = join(dir, "node_modules/.bin");
  const stamp = join(dir, "installed");
  if (existsSync(stamp)) return bin;
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "package.json"), JSON.stringify({ private: true }));
  const specs = (Object.keys(PACKAGES) as Tool[]).map((tool) => `${PACKAGES[tool].name}@${versions[tool]}`);
  await promisify(execFile)("npm", ["install", "--no-audit", "--no-fund", "--no-save", ...specs], {
    cwd: dir,
    maxBuffer: 16 * 1024 * 1024,
  });
  await writeFile(stamp, `${specs.join("\n")}\n`);
  return bin;
}
