import { resolve } from "node:path";

/** The folder of the fake claude, codex and gemini CLIs (test/fakes/fake-cli.mjs). */
const FAKE_CLI_BIN = resolve(import.meta.dirname, "../fakes/bin");
/** A PATH on which the fake CLIs come first. */
export const FAKE_CLI_PATH = `${FAKE_CLI_BIN}:${process.env.PATH}`;

/** One pool per tool on account `main`, with short leases and retries: for tests that run real workers. */
export const POOL_PER_TOOL_CONFIG = `
pools:
  - { name: claude-pool, tool: claude, account: main, max_concurrency: 3, lease_seconds: 10, retry: { base_seconds: 1, max_seconds: 2 } }
  - { name: codex-pool, tool: codex, account: main, max_concurrency: 2, lease_seconds: 10, retry: { base_seconds: 1, max_seconds: 2 } }
  - { name: gemini-pool, tool: gemini, account: main, max_concurrency: 2, lease_seconds: 10, retry: { base_seconds: 1, max_seconds: 2 } }
`;
