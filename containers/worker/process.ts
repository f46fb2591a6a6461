import { hostname } from "node:os";
import { poolConfig } from "../../core/admission.ts";
import { ENV } from "../../core/names.ts";
import {
  type AwsClients,
  configRefreshSecondsFrom,
  depsFromEnv,
  keepConfigFresh,
} from "../../runtime/composition.ts";
import { processLog } from "../../runtime/log.ts";
import { loadSchedulerConfig } from "../../runtime/scheduler-config.ts";
import { runWorker } from "./worker.ts";

/**
 * The worker process (a Fargate task, or a child process of the local stack): its pool, credentials and
 * settings from the environment, served until SIGTERM or SIGINT.
 */
export async function runWorkerProcess(clients: AwsClients): Promise<void> {
  const pool = process.env[ENV.pool];
  if (!pool) throw new Error(`${ENV.pool} is not set`);
  const credentials = JSON.parse(process.env[ENV.credentials] ?? "{}") as Record<string, string>;
  // The credentials reach the CLI only: no later code (or child) reads them from this environment.
  delete process.env[ENV.credentials];

  const deps = depsFromEnv(clients, processLog("switchyard-worker"), loadSchedulerConfig());
  const stopLooking = await keepConfigFresh(deps, configRefreshSecondsFrom());
  const stopping = new AbortController();
  for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => stopping.abort());

  await runWorker(deps, {
    pool,
    workerId: `${hostname()}-${process.pid}`,
    slots: poolConfig(deps, pool).worker.slots,
    waitSeconds: Number(process.env[ENV.waitSeconds] ?? 20),
    credentials,
    stopping: stopping.signal,
    drainSeconds: Number(process.env[ENV.drainSeconds] ?? 25),
    // Injected by ECS (Fargate): the agent endpoint that sets the task's scale-in protection.
    ecsAgentUri: process.env.ECS_AGENT_URI,
  });
  stopLooking();
}
