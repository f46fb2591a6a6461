/**
 * Preloaded with `--import` into worker processes by tests (LocalStackOptions.workerImports): appends all
 * that the process writes to stdout and stderr to the file that SWITCHYARD_TEST_CAPTURE names, and still
 * writes it through. The worker's stdio is inherited, so this is how a test reads the worker's own logs.
 */
import { appendFileSync } from "node:fs";

export const CAPTURE_FILE_VARIABLE = "SWITCHYARD_TEST_CAPTURE";

const file = process.env[CAPTURE_FILE_VARIABLE];
if (file) {
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
    stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      appendFileSync(file, chunk);
      return write(chunk, ...rest);
    }) as typeof stream.write;
  }
  appendFileSync(file, `[capture] worker process ${process.pid} started\n`);
}
