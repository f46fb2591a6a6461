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
export function writeInstantClis(dir: string): void {
  for (const tool of TOOLS) {
    const { command, args } = commandFor(tool, { prompt: "benchmark task", allowDangerousFlags: false });
    const answer = execFileSync(join(FAKES, command), args, { encoding: "utf8" });
    const answerFile = join(dir, `${command}.answer`);
    writeFileSync(answerFile, answer);
    writeFileSync(join(dir, command), `#!/bin/sh\nexec cat '${answerFile}'\n`);
    chmodSync(join(dir, command), 0o755);
  }
}
