import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Tool } from "../../core/fields.ts";
import { NO_WEBSOCKET_PREFIX, type Scenario, type StandIn } from "./model-api.ts";

/**
 * The cases each real CLI is run through against the model-API stand-in: what the stand-in answers, how
 * the CLI is logged in, and the prompt. The fixtures in test/fixtures/clis are their captured output.
 */
export interface CliCase {
  name: string;
  scenario: Scenario;
  /** An API key, a subscription login (claude's OAuth token), or nothing at all. */
  auth: "api-key" | "subscription" | "none";
  prompt: string;
  /** Codex only: the WebSocket transport is refused, so the CLI reconnects, then falls back to HTTPS. */
  noWebSocket?: boolean;
  /** The run takes up a session: one a first run of the case saved, or one that does not exist. */
  resume?: "saved" | "missing";
}

const prompt = (scenario: Scenario) => `[standin:${scenario}] Summarise the notes.`;
const COMMON: CliCase[] = [
  { name: "success", scenario: "success", auth: "api-key", prompt: prompt("success") },
  { name: "error", scenario: "error", auth: "api-key", prompt: prompt("error") },
  { name: "rate-limit", scenario: "rate-limit", auth: "api-key", prompt: prompt("rate-limit") },
  { name: "auth-missing", scenario: "success", auth: "none", prompt: prompt("success") },
  // A prompt that looks like options must reach the model as it is.
  { name: "dash-prompt", scenario: "success", auth: "api-key", prompt: "--help me; rm -rf / `whoami` $(id)" },
  { name: "resumed", scenario: "success", auth: "api-key", prompt: prompt("success"), resume: "saved" },
  {
    name: "resume-missing",
    scenario: "success",
    auth: "api-key",
    prompt: prompt("success"),
    resume: "missing",
  },
];

export const CASES: Record<Tool, CliCase[]> = {
  claude: [
    ...COMMON,
    { name: "usage-limit", scenario: "usage-limit", auth: "subscription", prompt: prompt("usage-limit") },
    { name: "weekly-limit", scenario: "weekly-limit", auth: "subscription", prompt: prompt("weekly-limit") },
    {
      name: "limit-warning",
      scenario: "limit-warning",
      auth: "subscription",
      prompt: prompt("limit-warning"),
    },
  ],
  codex: [
    ...COMMON,
    { name: "usage-limit", scenario: "usage-limit", auth: "api-key", prompt: prompt("usage-limit") },
    { name: "weekly-limit", scenario: "weekly-limit", auth: "api-key", prompt: prompt("weekly-limit") },
    {
      name: "reconnected",
      scenario: "success",
      auth: "api-key",
      prompt: prompt("success"),
      noWebSocket: true,
    },
  ],
  gemini: [
    ...COMMON,
    { name: "usage-limit", scenario: "usage-limit", auth: "api-key", prompt: prompt("usage-limit") },
  ],
};

/**
 * The environment that points a CLI at the stand-in, as a pool's credentials would hold it. Settings
 * that only a file can give (codex's base URL, gemini's auth type) go into `dir`.
 */
export async function standInEnvironment(
  tool: Tool,
  cliCase: CliCase,
  standIn: StandIn,
  dir: string,
): Promise<Record<string, string>> {
  const keyed = cliCase.auth !== "none";
  // Without a key the CLI stops before it calls any API, as on a worker whose pool has no credentials.
  if (tool === "gemini" && !keyed) return {};
  switch (tool) {
    case "claude":
      return {
        ANTHROPIC_BASE_URL: standIn.url,
        // Claude retries a refused request for minutes before it answers; the stand-in's refusals are final.
        CLAUDE_CODE_MAX_RETRIES: "0",
        ...(cliCase.auth === "api-key" ? { ANTHROPIC_API_KEY: "sk-ant-api03-standin" } : {}),
        ...(cliCase.auth === "subscription" ? { CLAUDE_CODE_OAUTH_TOKEN: "sk-ant-oat01-standin" } : {}),
      };
    case "codex": {
      const codexHome = join(dir, "codex-home");
      await mkdir(codexHome, { recursive: true });
      const base = `${standIn.url}${cliCase.noWebSocket ? NO_WEBSOCKET_PREFIX : ""}/v1`;
      await writeFile(join(codexHome, "config.toml"), `openai_base_url = ${JSON.stringify(base)}\n`);
      return { CODEX_HOME: codexHome, ...(keyed ? { CODEX_API_KEY: "sk-proj-standin" } : {}) };
    }
    case "gemini": {
      // With a base URL the CLI picks the "gateway" login, which headless mode refuses: name the key login.
      const geminiHome = join(dir, "gemini-home");
      await mkdir(join(geminiHome, ".gemini"), { recursive: true });
      await writeFile(
        join(geminiHome, ".gemini/settings.json"),
        JSON.stringify({ security: { auth: { selectedType: "gemini-api-key" } } }),
      );
      return {
        GOOGLE_GEMINI_BASE_URL: standIn.url,
        GEMINI_CLI_HOME: geminiHome,
        GEMINI_API_KEY: "AIza-standin",
      };
    }
  }
}
