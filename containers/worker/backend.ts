import { poolConfig } from "../../core/admission.ts";
import type { Deps } from "../../core/deps.ts";
import {
  type HeartbeatResult,
  type HeldRun,
  heartbeat,
  type RunEnding,
  settleRun,
} from "../../core/execution.ts";
import { blobKeys, LOG_CONTENT_TYPE, SESSION_CONTENT_TYPE } from "../../core/identifiers.ts";
import { releaseHeldSlot } from "../../core/tasks.ts";
import { takeWork } from "../../core/work.ts";
import { reportWorker } from "../../core/workers.ts";

/** What the worker runs with, as its last report answered. */
export interface WorkerSettings {
  /** Jobs it runs at once. */
  slots: number;
  /** Take no new work: finish what runs, then exit. */
  draining: boolean;
  leaseSeconds: number;
  allowDangerousFlags: boolean;
  /** The pool's default for a task that does not say whether its retry takes up the failed run's session. */
  resume: boolean;
}

export interface OutputFile {
  path: string;
  content: Uint8Array;
}

/**
 * What the worker loop needs of Switchyard. A Fargate worker has the table, queues and bucket
 * (directBackend); a self-hosted worker has only its key and the API (containers/worker/api-backend.ts).
 */
export interface WorkerBackend {
  readonly log: Deps["log"];
  readonly clock: Deps["clock"];
  /** Says the worker is alive and what it runs; answers its settings, or undefined once it was removed. */
  report(jobs: string[], startedAt: string, stopped?: boolean): Promise<WorkerSettings | undefined>;
  /**
   * Up to `max` runs claimed for this worker, waiting up to `waitSeconds` for a first one; `draining`
   * when the claim found the worker drained (a Fargate worker learns it from its reports).
   */
  take(max: number, waitSeconds: number): Promise<{ runs: HeldRun[]; draining: boolean }>;
  renewLease(held: HeldRun): Promise<HeartbeatResult>;
  /** Records how the run ended; false when it had ended elsewhere (canceled, or taken by the tick). */
  settle(held: HeldRun, ending: RunEnding): Promise<boolean>;
  /** Frees the slots a canceled run's task kept, once its process is gone. */
  releaseHeldSlot(held: HeldRun): Promise<void>;
  /** An input file's bytes (empty when it is missing). */
  inputFile(held: HeldRun, name: string): Promise<Uint8Array>;
  putLog(held: HeldRun, log: string): Promise<void>;
  putOutputFiles(held: HeldRun, files: OutputFile[]): Promise<void>;
  /** The task's saved CLI session (containers/worker/sessions.ts), undefined when there is none. */
  getSession(held: HeldRun): Promise<Uint8Array | undefined>;
  putSession(held: HeldRun, session: Uint8Array): Promise<void>;
}

/** The worker of a Fargate task (or of the local stack): the stores themselves, through core. */
export function directBackend(
  deps: Deps,
  { pool, workerId, slots }: { pool: string; workerId: string; slots: number },
): WorkerBackend {
  return {
    log: deps.log,
    clock: deps.clock,
    async report(jobs, startedAt, stopped) {
      const record = await reportWorker(deps, { workerId, pool, slots, jobs, startedAt, stopped });
      const config = poolConfig(deps, pool);
      return {
        slots,
        draining: record?.draining === true,
        leaseSeconds: config.lease_seconds,
        allowDangerousFlags: config.allow_dangerous_flags,
        resume: config.resume,
      };
    },
    take: async (max, waitSeconds) => ({
      runs: await takeWork(deps, { pool, workerId, max, waitSeconds }),
      draining: false,
    }),
    renewLease: (held) => heartbeat(deps, held),
    settle: async (held, ending) => (await settleRun(deps, held, ending)) !== undefined,
    releaseHeldSlot: async ({ task, run }) => {
      await releaseHeldSlot(deps, task.uuid, run.run_id);
    },
    inputFile: async ({ task }, name) =>
      (await deps.blobs.get(blobKeys.input(task.uuid, name))) ?? new Uint8Array(),
    putLog: ({ task, run }, log) =>
      deps.blobs.put(blobKeys.log(task.uuid, run.run_id), log, LOG_CONTENT_TYPE),
    putOutputFiles: async ({ task, run }, files) => {
      await Promise.all(
        files.map((f) => deps.blobs.put(blobKeys.output(task.uuid, run.run_id, f.path), f.content)),
      );
    },
    getSession: ({ task }) => deps.blobs.get(blobKeys.session(task.uuid)),
    putSession: ({ task }, session) =>
      deps.blobs.put(blobKeys.session(task.uuid), session, SESSION_CONTENT_TYPE),
  };
}
