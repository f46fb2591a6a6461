import type { Deps } from "../../core/deps.ts";
import type { HeldRun } from "../../core/execution.ts";
import { LOG_CONTENT_TYPE } from "../../core/identifiers.ts";
import { WORKER_CLAIM_WAIT_SECONDS } from "../../core/names.ts";
import { settleBodyOf } from "../../core/work.ts";
import { SwitchyardClient, SwitchyardError } from "../../sdk/client.ts";
import type { WorkerBackend } from "./backend.ts";

/** Tries of a file's PUT or GET to the store that fails with a 5xx or a network error. */
const FILE_TRIES = 4;

/** GETs or PUTs a presigned URL (core/work.ts), again after a 5xx or a network error. */
async function transfer(url: string, init: RequestInit = {}): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    try {
      const response = await fetch(url, init);
      if (response.status < 500 || attempt >= FILE_TRIES) return response;
    } catch (err) {
      if (attempt >= FILE_TRIES) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt));
  }
}

async function put(url: string, body: string | Uint8Array, contentType: string): Promise<void> {
  const response = await transfer(url, {
    method: "PUT",
    body: typeof body === "string" ? body : Buffer.from(body),
    headers: { "content-type": contentType },
  });
  if (!response.ok)
    throw new Error(`the store refused an upload: ${response.status} ${await response.text()}`);
}

/**
 * A self-hosted worker's backend: everything through the API at `url` with the worker's key, which can
 * take its pool's work and do nothing else. Files go straight to and from the store by presigned URLs.
 */
export function apiBackend(
  options: { url: string; key: string; fetch?: typeof fetch },
  log: Deps["log"],
): WorkerBackend {
  const client = new SwitchyardClient({ url: options.url, key: options.key, fetch: options.fetch });
  /** The input files' URLs of each run taken, until it is settled. */
  const inputs = new Map<string, Record<string, string>>();
  const uploads = (held: HeldRun, body: { log?: boolean; files?: string[] }) =>
    client.call("workers.uploads", { run_id: held.run.run_id, body });
  return {
    log,
    clock: { now: () => new Date() },
    async report(jobs, startedAt, stopped) {
      try {
        const answer = await client.call("workers.report", {
          body: { jobs, started_at: startedAt, stopped },
        });
        return {
          slots: answer.slots,
          draining: answer.draining,
          leaseSeconds: answer.lease_seconds,
          allowDangerousFlags: answer.allow_dangerous_flags,
        };
      } catch (err) {
        if (err instanceof SwitchyardError && err.status === 401) return undefined;
        throw err;
      }
    },
    async take(max, waitSeconds) {
      const wait = Math.min(Math.ceil(waitSeconds), WORKER_CLAIM_WAIT_SECONDS);
      const answer = await client.call("workers.claim", { body: { max, wait_seconds: wait } });
      for (const run of answer.runs) inputs.set(run.run.run_id, run.inputs);
      return { runs: answer.runs.map(({ task, run }) => ({ task, run })), draining: answer.draining };
    },
    async renewLease(held) {
      const answer = await client.call("workers.lease", { run_id: held.run.run_id });
      if ("stop" in answer) return answer;
      const { lease_expires_at } = answer;
      return { held: { ...held, task: { ...held.task, lease_expires_at, due_time: lease_expires_at } } };
    },
    async settle(held, ending) {
      const answer = await client.call("workers.settle", {
        run_id: held.run.run_id,
        body: settleBodyOf(ending),
      });
      inputs.delete(held.run.run_id);
      return answer.settled;
    },
    async releaseHeldSlot(held) {
      await client.call("workers.release", { run_id: held.run.run_id });
    },
    async inputFile(held, name) {
      const url = inputs.get(held.run.run_id)?.[name];
      if (!url) return new Uint8Array();
      const response = await transfer(url);
      if (response.status === 404) return new Uint8Array();
      if (!response.ok) throw new Error(`input file ${name}: the store answered ${response.status}`);
      return new Uint8Array(await response.arrayBuffer());
    },
    async putLog(held, text) {
      const { log } = await uploads(held, { log: true });
      if (log) await put(log, text, LOG_CONTENT_TYPE);
    },
    async putOutputFiles(held, files) {
      const urls = (await uploads(held, { files: files.map((f) => f.path) })).files;
      await Promise.all(files.map((f) => put(urls[f.path] as string, f.content, "application/octet-stream")));
    },
  };
}
