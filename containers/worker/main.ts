import { hostname } from "node:os";
import { poolConfig } from "../../core/admission.ts";
import { ENV } from "../../core/names.ts";
import { awsClients, depsFromEnv } from "../../functions/_shared/composition.ts";
import { runWorker } from "./worker.ts";

/** Entry point of the worker process (Fargate task, or a child process of the local stack). */
const pool = process.env[ENV.pool];
if (!pool) throw new Error(`${ENV.pool} is not set`);
const deps = depsFromEnv(awsClients());
const controller = new AbortController();
for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => controller.abort());

await runWorker(deps, {
  pool,
  workerId: `${hostname()}-${process.pid}`,
  slots: poolConfig(deps, pool).worker.slots,
  waitSeconds: Number(process.env[ENV.waitSeconds] ?? 20),
  signal: controller.signal,
});
