import type { QueueMessageBody } from "../../core/admission.ts";
import type { Deps } from "../../core/deps.ts";
import { claimRun } from "../../core/runs.ts";

export interface WorkerOptions {
  pool: string;
  workerId: string;
  /** Jobs this process runs at once. */
  slots: number;
  /** Long-poll wait; short locally so that shutdown is quick. */
  waitSeconds: number;
  signal: AbortSignal;
}

/**
 * The pull loop of one pool: long-poll the FIFO queue and claim each run (dispatched → running).
 * A stale or duplicate message is deleted unrun. Executing the CLI is the worker issue's part; until
 * then a claimed run stays `running`.
 */
export async function runWorker(deps: Deps, options: WorkerOptions): Promise<void> {
  const { pool, workerId, slots, waitSeconds, signal } = options;
  while (!signal.aborted) {
    let messages: Awaited<ReturnType<Deps["queue"]["receive"]>>;
    try {
      messages = await deps.queue.receive(pool, slots, waitSeconds);
    } catch (err) {
      if (signal.aborted) break;
      deps.log.warn("receive failed; retrying", { pool, error: String(err) });
      await new Promise((resolve) => setTimeout(resolve, 1000));
      continue;
    }
    await Promise.all(
      messages.map(async (message) => {
        const body = JSON.parse(message.body) as QueueMessageBody;
        const outcome = await claimRun(deps, body, workerId);
        if (!outcome.claimed)
          deps.log.info("dropping message", { run_id: body.run_id, reason: outcome.reason });
        else deps.log.info("claimed run", { run_id: body.run_id, pool });
        await deps.queue.delete(pool, message.receiptHandle);
      }),
    );
  }
}
