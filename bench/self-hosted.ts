/**
 * What a task costs when a self-hosted worker runs it: the worker's HTTP requests to the API (each an API
 * Gateway request and a Lambda invocation on AWS) and the AWS requests the API makes for them, against
 * the same task on a worker the stack runs. The worker runs in this process, through the API only, with
 * a fetch that counts what it sends.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { apiBackend } from "../containers/worker/api-backend.ts";
import { runWorker } from "../containers/worker/worker.ts";
import type { PoolConfig } from "../core/config.ts";
import { type CountResult, countRequests, type Driver } from "./driver.ts";

/** The worker's long poll: the longest a claim waits, so that an idle worker asks seldom. */
const WAIT_SECONDS = 15;

export interface SelfHostedResult {
  count: CountResult;
  /** The worker's requests to the API per task, by route. */
  httpPerTask: Record<string, number>;
}

const routeOf = (method: string, url: string) =>
  `${method} ${new URL(url).pathname.replace(/\/v2\/worker\/runs\/[^/]+/, "/v2/worker/runs/{run_id}")}`;

export async function measureSelfHosted(
  d: Driver,
  pool: PoolConfig,
  adminKey: string,
  tasks: number,
): Promise<SelfHostedResult> {
  const res = await fetch(`${d.stack.url}/v2/workers`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
    body: JSON.stringify({ pool: pool.name }),
  });
  if (res.status !== 201)
    throw new Error(`registering the worker answered ${res.status}: ${await res.text()}`);
  const { api_key: key } = ((await res.json()) as { data: { api_key: string } }).data;
  const http: Record<string, number> = {};
  const counting: typeof fetch = (input, init) => {
    const route = routeOf(init?.method ?? "GET", String(input));
    http[route] = (http[route] ?? 0) + 1;
    return fetch(input, init);
  };
  const quiet = { info: () => undefined, warn: () => undefined, error: console.error };
  const stopping = new AbortController();
  const loop = runWorker(apiBackend({ url: d.stack.url, key, fetch: counting }, quiet), {
    waitSeconds: WAIT_SECONDS,
    credentials: {},
    stopping: stopping.signal,
    drainSeconds: 1,
    checkpointSeconds: 120,
  });
  try {
    while (!http["POST /v2/worker/claims"]) await sleep(50);
    for (const route of Object.keys(http)) http[route] = 0;
    const count = await countRequests(d, tasks, undefined, pool);
    const httpPerTask = Object.fromEntries(Object.entries(http).map(([route, n]) => [route, n / tasks]));
    return { count, httpPerTask };
  } finally {
    stopping.abort();
    await loop;
  }
}
