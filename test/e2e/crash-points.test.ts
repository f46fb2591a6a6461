/**
 * Each crash point: a process dies there (SIGKILL, as on a host that fails), Switchyard goes on, and the
 * task still ends exactly as it should, with its outcome recorded once.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, inject, it } from "vitest";
import { ENV } from "../../core/names.ts";
import { FAULT_ENV } from "../../local/faults.ts";
import { FAKE_CLI_PATH } from "../support/fake-clis.ts";
import { startTestStack, type TestStack } from "../support/stack.ts";
import { waitFor } from "../support/wait.ts";

const CONFIG = `pools:
  - { name: p, tool: claude, account: main, max_concurrency: 2, lease_seconds: 10, retry: { base_seconds: 1, max_seconds: 2 } }
`;

let stack: TestStack | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

const crashMark = () => join(mkdtempSync(join(tmpdir(), "crash-")), "crashed");

async function workerStack(point: string) {
  const mark = crashMark();
  stack = await startTestStack(CONFIG, {
    workerEnv: { PATH: FAKE_CLI_PATH, [FAULT_ENV.crashAt]: point, [FAULT_ENV.crashMark]: mark },
  });
  return stack;
}

const taskOf = async (s: TestStack, uuid: string) => (await s.call("GET", `/v2/tasks/${uuid}`)).json?.data;
const runsOf = async (s: TestStack, uuid: string) =>
  ((await s.call("GET", `/v2/instances?task_id=${uuid}`)).json?.data.instances ?? []) as {
    status: string;
    error?: string;
  }[];
const finished = (s: TestStack, uuid: string) =>
  waitFor(
    () => taskOf(s, uuid),
    (t) => ["succeeded", "failed"].includes(t?.status),
    45_000,
  );

describe("crash points", () => {
  for (const point of ["after-claim", "after-cli"]) {
    it(`a worker killed ${point} loses its run to the lease, and the task succeeds on the next`, async () => {
      const s = await workerStack(point);
      const res = await s.call("POST", "/v2/tasks", { body: { pool: "p", prompt: "crash me" } });
      expect(res.status, res.text).toBe(201);
      const uuid = res.json?.data.uuid as string;
      const done = await finished(s, uuid);
      expect(done).toMatchObject({ status: "succeeded", attempt: 2 });
      const runs = await runsOf(s, uuid);
      expect(runs.map((r) => r.status)).toEqual(["lost", "succeeded"]);
      expect(runs[0]?.error).toMatch(/lease expired/);
      const events = (await s.call("GET", `/v2/tasks/${uuid}/events`)).json?.data.events as {
        type: string;
      }[];
      expect(events.filter((e) => e.type === "run.succeeded")).toHaveLength(1);
    }, 60_000);
  }

  /** Runs one step in a child process, which dies at `point` if one is given. */
  const runChild = (s: TestStack, point: string | undefined, args: string[]) => {
    const configPath = join(mkdtempSync(join(tmpdir(), "crash-config-")), "scheduler.config.yaml");
    writeFileSync(configPath, CONFIG);
    const program = resolve(import.meta.dirname, "../support/crash-child.ts");
    return spawnSync(process.execPath, ["--import", "tsx", program, ...args], {
      env: {
        ...process.env,
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
        CRASH_CHILD_ENDPOINTS: JSON.stringify(inject("emulators")),
        [ENV.tableName]: s.resources.tableName,
        [ENV.bucketName]: s.resources.bucketName,
        [ENV.queueUrls]: JSON.stringify(s.resources.queueUrls),
        [ENV.schedulerConfig]: configPath,
        ...(point && { [FAULT_ENV.crashAt]: point }),
      },
      encoding: "utf8",
      timeout: 30_000,
    });
  };

  it("a submit killed between its admission and the send is sent by the tick, and runs once", async () => {
    stack = await startTestStack(CONFIG, { workerEnv: { PATH: FAKE_CLI_PATH } });
    const s = stack;
    expect(runChild(s, "before-send", ["submit", "sent late"]).signal).toBe("SIGKILL");
    const listed = (await s.call("GET", "/v2/tasks")).json?.data.tasks as { uuid: string; status: string }[];
    expect(listed.map((t) => t.status)).toEqual(["dispatched"]);
    const uuid = listed[0]?.uuid as string;
    // No message went out: a tick a minute on finds the dispatch unconfirmed and sends it.
    const tickLater = runChild(s, undefined, ["tick", "61"]);
    expect(tickLater.status, tickLater.stderr).toBe(0);
    const done = await finished(s, uuid);
    expect(done).toMatchObject({ status: "succeeded", attempt: 1 });
    expect((await runsOf(s, uuid)).map((r) => r.status)).toEqual(["succeeded"]);
  }, 60_000);

  it("a tick killed in its middle leaves nothing half done: the next tick finishes the work", async () => {
    stack = await startTestStack(CONFIG, { workers: false });
    const s = stack;
    // Due in 30 s: the stack's own tick leaves them alone, a tick 60 s ahead finds them due.
    const at = new Date(Date.now() + 30_000).toISOString();
    const uuids: string[] = [];
    for (const prompt of ["one", "two", "three"]) {
      const res = await s.call("POST", "/v2/tasks", { body: { pool: "p", prompt, scheduled_at: at } });
      uuids.push(res.json?.data.uuid as string);
    }
    const statuses = async () => Promise.all(uuids.map(async (u) => (await taskOf(s, u)).status as string));
    expect(runChild(s, "mid-tick", ["tick", "60"]).signal).toBe("SIGKILL");
    // Killed as it sent its second write: the first one (shards are handled side by side, so it may still
    // have been on the wire) is in, or not; nothing else is.
    const halfway = await statuses();
    expect(halfway.filter((st) => st === "queued").length).toBeLessThanOrEqual(1);
    expect(halfway.filter((st) => st === "scheduled").length).toBeGreaterThanOrEqual(2);
    expect(runChild(s, undefined, ["tick", "60"]).status).toBe(0);
    // Each task started once: two hold the pool's two slots, one waits.
    expect((await statuses()).sort()).toEqual(["dispatched", "dispatched", "queued"]);
    for (const u of uuids) expect((await runsOf(s, u)).length).toBeLessThanOrEqual(1);
    const pool = (await s.call("GET", "/v2/dispatcher/status")).json?.data;
    expect(JSON.stringify(pool)).toContain('"active":2');
  }, 60_000);
});
