import { execFileSync } from "node:child_process";
import { chmodSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { commandFor } from "../containers/worker/engines.ts";
import { TOOLS } from "../core/fields.ts";

const FAKES = resolve(import.meta.dirname, "../test/fakes/bin");

/**
 * CLIs that answer at once for almost no CPU: for each tool, the test fake's answer (test/fakes/fake-cli.mjs,
 * run once here with the worker's own arguments) replayed by a shell script. A Node fake costs ~0.13 s of
 * CPU a task to start, which on a small machine would make the benchmark measure Node start-up.
 * Writes them to `dir`, to put first on the workers' PATH.
 */
/** A prompt with this in it is answered after SLOW_SECONDS instead of at once. */
export const SLOW_MARKER = "bench-slow";
export const SLOW_SECONDS = 25;

export function writeInstantClis(dir: string): void {
  for (const tool of TOOLS) {
    const { command, args } = commandFor(tool, { prompt: "benchmark task", allowDangerousFlags: false });
    const answer = execFileSync(join(FAKES, command), args, { encoding: "utf8" });
    const answerFile = join(dir, `${command}.answer`);
    writeFileSync(answerFile, answer);
    // A prompt that names SLOW_MARKER makes the CLI run for SLOW_SECONDS first (heartbeats to count); one
    // with `[sleep:N]` runs N seconds first, as the test fakes do.
    const slow = `case "$*" in *${SLOW_MARKER}*) sleep ${SLOW_SECONDS};; esac\n`;
    const sleepFor = `n=$(printf '%s' "$*" | sed -n 's/.*\\[sleep:\\([0-9.]*\\)\\].*/\\1/p')\n[ -n "$n" ] && sleep "$n"\n`;
    writeFileSync(join(dir, command), `#!/bin/sh\n${slow}${sleepFor}exec cat '${answerFile}'\n`);
    chmodSync(join(dir, command), 0o755);
  }
}
