/**
 * Where schedulerctl finds the API and its key: the flags (`--url`, `--key`), else SWITCHYARD_URL and
 * SWITCHYARD_API_KEY, else the config file (`$XDG_CONFIG_HOME/switchyard/config.json`, by default under
 * `~/.config`), which holds `{"url": …, "key": …}`.
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export const ENV_URL = "SWITCHYARD_URL";
export const ENV_KEY = "SWITCHYARD_API_KEY";
export const DEFAULT_URL = "http://localhost:3000";

/** A problem with how schedulerctl was called or configured: exit code 2. */
export class UsageError extends Error {}

export function configFilePath(env: NodeJS.ProcessEnv): string {
  return join(env.XDG_CONFIG_HOME || join(homedir(), ".config"), "switchyard", "config.json");
}

function configFile(env: NodeJS.ProcessEnv): { url?: string; key?: string } {
  const path = configFilePath(env);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return {};
  }
  try {
    const parsed = JSON.parse(text) as { url?: unknown; key?: unknown };
    return {
      url: typeof parsed.url === "string" ? parsed.url : undefined,
      key: typeof parsed.key === "string" ? parsed.key : undefined,
    };
  } catch {
    throw new UsageError(`${path} is not JSON: write {"url": "…", "key": "…"} there, or remove it`);
  }
}

export interface Connection {
  url: string;
  key?: string;
}

/** The URL and key to call with; a missing key (`needsKey`) is a UsageError that says how to set one. */
export function connection(
  flags: { url?: string; key?: string },
  env: NodeJS.ProcessEnv,
  needsKey = true,
): Connection {
  const file = configFile(env);
  const url = flags.url ?? env[ENV_URL] ?? file.url ?? DEFAULT_URL;
  const key = flags.key ?? env[ENV_KEY] ?? file.key;
  if (!key && needsKey) {
    throw new UsageError(
      `no API key: export ${ENV_KEY}=<key> (npm start prints the admin key), pass --key <key>, ` +
        `or write {"key": "<key>"} to ${configFilePath(env)}`,
    );
  }
  try {
    new URL(url);
  } catch {
    throw new UsageError(
      `${url} is not a URL: set ${ENV_URL} or --url to the API's address, e.g. ${DEFAULT_URL}`,
    );
  }
  return { url, key };
}
