/**
 * Preloaded into each worker process by the benchmark (`node --import tsx --import <this>`): counts the
 * worker's AWS requests, and on SIGUSR2 writes the counts so far, with the DynamoDB writes recorded since the
 * last signal, to $SWITCHYARD_BENCH_COUNTS_DIR/<pool>.json.
 */
import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ENV } from "../core/names.ts";
import { type RecordedWrite, RequestCounter, type Tally } from "../local/request-counter.ts";
import { onAwsClients } from "../runtime/composition.ts";

export const COUNTS_DIR_ENV = "SWITCHYARD_BENCH_COUNTS_DIR";

/** What a worker writes on SIGUSR2. */
export interface WorkerDump {
  tally: Tally;
  writes: RecordedWrite[];
  dropped: number;
}

const dir = process.env[COUNTS_DIR_ENV];
if (dir) {
  const counter = new RequestCounter();
  onAwsClients((clients) => counter.attach(Object.values(clients)));
  process.on("SIGUSR2", () => {
    const file = join(dir, `${process.env[ENV.pool] ?? "worker"}.json`);
    // Written whole, then renamed: the reader never sees half a file.
    const dump: WorkerDump = { tally: counter.snapshot(), ...counter.takeWrites() };
    writeFileSync(`${file}.tmp`, JSON.stringify(dump));
    renameSync(`${file}.tmp`, file);
  });
}
