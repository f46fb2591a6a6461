import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Tool } from "../../core/fields.ts";

/** What a real CLI printed for one case, captured by `npm run fixtures:clis`. */
export interface CliFixture {
  tool: Tool;
  version: string;
  case: string;
  /** The engine's argv, as the worker passes it. */
  args: string[];
  /** The names (never the values) of the variables the CLI ran with. */
  env_names: string[];
  captured_at: string;
  /** When the stand-in said the limit lifts, for the limit cases. */
  reset_at?: string;
  /** The stand-in's answer to a success. */
  answer: { text: string; input: number; output: number };
  exit_code: number;
  stdout: string;
  stderr: string;
}

export const FIXTURES = resolve(import.meta.dirname, "../fixtures/clis");

export function readFixture(tool: Tool, name: string): CliFixture {
  return JSON.parse(readFileSync(resolve(FIXTURES, tool, `${name}.json`), "utf8")) as CliFixture;
}
