/** The process entry of `schedulerctl` (bin/schedulerctl.mjs loads it). */
import { run } from "./schedulerctl.ts";

process.exitCode = await run(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  env: process.env,
  tty: process.stdout.isTTY === true,
});
