/**
 * The worker program the benchmark runs instead of containers/worker/main.ts: the same worker, whose AWS
 * requests are counted; on SIGUSR2 it writes the counts so far, with the DynamoDB writes recorded since
 * the last signal, to $SWITCHYARD_BENCH_COUNTS_DIR/<pool>.json.
 */
import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runWorkerProcess } from "../containers/worker/process.ts";
import { ENV } from "../core/names.ts";
import { awsClients } from "../runtime/composition.ts";
import { RequestCounter } from "./request-counter.ts";
import { COUNTS_DIR_ENV, type WorkerDump } from "./worker-dump.ts";

const clients = awsClients();
const dir = process.env[COUNTS_DIR_ENV];
if (dir) {
  const counter = new RequestCounter();
  counter.attach(Object.values(clients));
  process.on("SIGUSR2", () => {
    const file = join(dir, `${process.env[ENV.pool] ?? "worker"}.json`);
    // Written whole, then renamed: the reader never sees half a file.
    const dump: WorkerDump = { tally: counter.snapshot(), ...counter.takeWrites() };
    writeFileSync(`${file}.tmp`, JSON.stringify(dump));
    renameSync(`${file}.tmp`, file);
  });
}

await runWorkerProcess(() => clients);
