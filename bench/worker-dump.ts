import type { RecordedWrite, Tally } from "./request-counter.ts";

/** Where a counted worker (bench/worker-counter.ts) writes its counts on SIGUSR2. */
export const COUNTS_DIR_ENV = "SWITCHYARD_BENCH_COUNTS_DIR";

/** What a worker writes on SIGUSR2. */
export interface WorkerDump {
  tally: Tally;
  writes: RecordedWrite[];
  dropped: number;
}
