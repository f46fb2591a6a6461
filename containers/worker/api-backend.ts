import type { Deps } from "../../core/deps.ts";
import type { HeldRun } from "../../core/execution.ts";
import { LOG_CONTENT_TYPE, SESSION_CONTENT_TYPE } from "../../core/identifiers.ts";
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

/** The bytes at a presigned URL; undefined when there is no URL or no such object. */
async function download(url: string | undefined, what: string): Promise<Uint8Array | undefined> {
  if (!url) return undefined;
  const response = await transfer(url);
  if (response.status === 404) return undefined;
  if (!response.ok) throw new Error(`${what}: the store answered ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
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
  /** The URLs of each run taken to GET its input files and its task's saved session, until it is settled. */
  const reads = new Map<string, { inputs: Record<string, string>; session?: string }>();
  const uploads = (held: HeldRun, body: { log?: boolean; session?: boolean; files?: string[] }) =>
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
          resume: answer.resume,
        };
      } catch (err) {
        if (err instanceof SwitchyardError && err.status === 401) return undefined;
        throw err;
      }
    },
    async take(max, waitSeconds) {
      const wait = Math.min(Math.ceil(waitSeconds), WORKER_CLAIM_WAIT_SECONDS);
      const answer = await client.call("workers.claim", { body: { max, wait_seconds: wait } });
      for (const { run, inputs, session } of answer.runs) reads.set(run.run_id, { inputs, session });
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
      reads.delete(held.run.run_id);
      return answer.settled;
    },
    async releaseHeldSlot(held) {
      await client.call("workers.release", { run_id: held.run.run_id });
    },
    inputFile: async (held, name) =>
      (await download(reads.get(held.run.run_id)?.inputs[name], `input file ${name}`)) ?? new Uint8Array(),
    getSession: (held) => download(reads.get(held.run.run_id)?.session, "the saved session"),
    async putSession(held, session) {
      const { session: url } = await uploads(held, { session: true });
      if (url) await put(url, session, SESSION_CONTENT_TYPE);
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
