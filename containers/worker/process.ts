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
import { directBackend } from "./backend.ts";
import { processOptions, runSelfHostedWorker } from "./self-hosted.ts";
import { runWorker } from "./worker.ts";

/**
 * The worker process. With SWITCHYARD_WORKER_KEY it is a self-hosted worker of the API at SWITCHYARD_URL.
 * Without, it is a Fargate task (or a child process of the local stack): its pool from SWITCHYARD_POOL,
 * the table, queues and bucket from the environment. Served until drained, SIGTERM or SIGINT.
 */
export async function runWorkerProcess(clients: () => AwsClients): Promise<void> {
  const workerKey = process.env[ENV.workerKey];
  if (workerKey) {
    delete process.env[ENV.workerKey];
    const url = process.env[ENV.apiUrl];
    if (!url) throw new Error(`${ENV.workerKey} is set: ${ENV.apiUrl} must name the API`);
    return runSelfHostedWorker(url, workerKey);
  }
  const pool = process.env[ENV.pool];
  if (!pool) throw new Error(`${ENV.pool} is not set (or ${ENV.workerKey}, for a self-hosted worker)`);
  const options = processOptions();
  const deps = depsFromEnv(clients(), processLog("switchyard-worker"), loadSchedulerConfig());
  const stopLooking = await keepConfigFresh(deps, configRefreshSecondsFrom());
  const workerId = `${hostname()}-${process.pid}`;
  const slots = poolConfig(deps, pool).worker.slots;
  await runWorker(directBackend(deps, { pool, workerId, slots }), options);
  stopLooking();
}
