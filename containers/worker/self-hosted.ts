import { ENV } from "../../core/names.ts";
import { processLog } from "../../runtime/log.ts";
import { apiBackend } from "./api-backend.ts";
import { runWorker, type WorkerOptions } from "./worker.ts";

/** The settings every worker process takes from its environment, and SIGTERM or SIGINT to stop it. */
export function processOptions(): WorkerOptions {
  const credentials = JSON.parse(process.env[ENV.credentials] ?? "{}") as Record<string, string>;
  // The credentials reach the CLI only: no later code (or child) reads them from this environment.
  delete process.env[ENV.credentials];
  const stopping = new AbortController();
  for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => stopping.abort());
  return {
    waitSeconds: Number(process.env[ENV.waitSeconds] ?? 20),
    credentials,
    stopping: stopping.signal,
    drainSeconds: Number(process.env[ENV.drainSeconds] ?? 25),
    checkpointSeconds: Number(process.env[ENV.sessionCheckpointSeconds] ?? 120),
    // Injected by ECS (Fargate): the agent endpoint that sets the task's scale-in protection.
    ecsAgentUri: process.env.ECS_AGENT_URI,
  };
}

/**
 * A self-hosted worker (on a developer's machine, a GPU box): its pool and settings come from the API at
 * `url`, and its key (POST /v2/workers) is all it holds. Served until drained, SIGTERM or SIGINT.
 */
export async function runSelfHostedWorker(url: string, key: string): Promise<void> {
  await runWorker(apiBackend({ url, key }, processLog("switchyard-worker")), processOptions());
}
