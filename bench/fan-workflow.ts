/**
 * A wide workflow: one root, `leaves` nodes that each read the root's result, and one node that joins
 * them all (a fan-out and a fan-in). It runs in a pool of the instant CLIs; the phase measures the time
 * from the run's start to its end, and checks that every node's task ran exactly once.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { TaskStore } from "../core/ports.ts";
import { round } from "./stats.ts";

export interface FanWorkflowResult {
  nodes: number;
  status: string;
  /** From POST …/runs to the run's end. */
  seconds: number;
  nodes_per_second: number;
  /** POST /v2/workflows with the whole graph, and POST …/runs. */
  create_ms: number;
  start_ms: number;
  /** Every node succeeded, and its task had exactly one run. */
  exactly_once: boolean;
  /** The first few tasks that did not run exactly once, as they ended. */
  not_once?: { uuid?: string; status?: string; run_count?: number; attempt?: number; error?: string }[];
}

export async function measureFanWorkflow(options: {
  url: string;
  apiKey: string;
  pool: string;
  leaves: number;
  store: Pick<TaskStore, "getTask">;
}): Promise<FanWorkflowResult> {
  const { url, apiKey, pool, leaves, store } = options;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${path} answered ${res.status}: ${text.slice(0, 500)}`);
    return JSON.parse(text).data;
  };
  const job = (prompt: string) => ({ pool, prompt, max_attempts: 1 });
  const names = Array.from({ length: leaves }, (_, i) => `leaf-${i}`);
  const graph = {
    name: "fan-out, fan-in",
    tasks: [
      { name: "root", task: job("benchmark: answer at once") },
      ...names.map((name) => ({
        name,
        task: job(`${name} of {{ inputs.r }}`),
        inputs: { r: { from: "root.result" } },
      })),
      { name: "join", task: job("benchmark: join") },
    ],
    edges: names.map((name) => ({ source: name, target: "join" })),
  };
  let t = performance.now();
  const { workflow_id: id } = await call("POST", "/v2/workflows", graph);
  const createMs = performance.now() - t;
  t = performance.now();
  const { run_id: runId } = await call("POST", `/v2/workflows/${id}/runs`);
  const startMs = performance.now() - t;
  let run: { status: string; nodes: { status: string; task_uuid?: string }[] };
  for (;;) {
    run = await call("GET", `/v2/workflows/${id}/runs/${runId}`);
    if (run.status !== "running") break;
    if (performance.now() - t > 15 * 60_000) throw new Error("the wide workflow ran past 15 minutes");
    // Each look reads the whole run (a thousand items): not too often, so as not to slow what it measures.
    await sleep(2000);
  }
  const seconds = (performance.now() - t) / 1000;
  const tasks = await Promise.all(
    run.nodes.map((n) => (n.task_uuid ? store.getTask(n.task_uuid) : undefined)),
  );
  const once = (task: (typeof tasks)[number]) =>
    task?.status === "succeeded" && task.run_count === 1 && task.attempt === 1;
  const exactlyOnce = run.nodes.every((n) => n.status === "succeeded") && tasks.every(once);
  // What went otherwise, for the few tasks that did: their status, runs, attempts and last error.
  const otherwise = tasks
    .filter((task) => !once(task))
    .slice(0, 5)
    .map((task) => ({
      uuid: task?.uuid,
      status: task?.status,
      run_count: task?.run_count,
      attempt: task?.attempt,
      error: task?.error_message?.slice(0, 300),
    }));
  return {
    nodes: run.nodes.length,
    status: run.status,
    seconds: round(seconds, 1),
    nodes_per_second: round(run.nodes.length / seconds, 1),
    create_ms: Math.round(createMs),
    start_ms: Math.round(startMs),
    exactly_once: exactlyOnce,
    ...(otherwise.length > 0 && { not_once: otherwise }),
  };
}
