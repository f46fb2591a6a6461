import { fenceDelayMs, type HeldRun, retryAfterFailureMs } from "../../core/execution.ts";
import type { WorkerBackend } from "./backend.ts";

/** Why a lease keeper gave up the run: canceled, taken by the tick, or not renewed in time (fenced). */
export type LeaseEnd = "canceled" | "lost" | "fenced";

export interface Lease {
  /** The run as last written: its lease is renewed in it. */
  readonly held: HeldRun;
  /** No more heartbeats. */
  release(): void;
}

/**
 * Keeps a held run's lease until released: a heartbeat every third of the lease, sooner after a failure.
 * A heartbeat that finds the run canceled or taken ends it; so does the fence, when no heartbeat has
 * renewed the lease by the time the job must be killed to be gone before it runs out.
 */
export function keepLease(
  backend: WorkerBackend,
  first: HeldRun,
  leaseSeconds: number,
  killGraceMs: number,
  onEnd: (reason: LeaseEnd) => void,
): Lease {
  const beatEveryMs = (leaseSeconds * 1000) / 3;
  let held = first;
  let failures = 0;
  let released = false;
  let beatTimer: NodeJS.Timeout | undefined;
  let fenceTimer: NodeJS.Timeout | undefined;

  const end = (reason: LeaseEnd) => {
    lease.release();
    onEnd(reason);
  };
  const armFence = () => {
    clearTimeout(fenceTimer);
    const delay = fenceDelayMs(held, backend.clock.now(), leaseSeconds, killGraceMs);
    fenceTimer = setTimeout(
      () => {
        backend.log.error("lease not renewed in time: stopping the job", { run_id: held.run.run_id });
        end("fenced");
      },
      Math.max(0, delay),
    );
  };
  const schedule = (ms: number) => {
    if (!released) beatTimer = setTimeout(beat, ms);
  };
  const beat = async () => {
    try {
      const result = await backend.renewLease(held);
      if (released) return;
      if ("stop" in result) return end(result.stop);
      held = result.held;
      failures = 0;
      armFence();
      schedule(beatEveryMs);
    } catch (err) {
      failures++;
      backend.log.warn("heartbeat failed", { run_id: held.run.run_id, failures, error: String(err) });
      schedule(retryAfterFailureMs(failures));
    }
  };

  const lease: Lease = {
    get held() {
      return held;
    },
    release() {
      released = true;
      clearTimeout(beatTimer);
      clearTimeout(fenceTimer);
    },
  };
  armFence();
  schedule(beatEveryMs);
  return lease;
}
