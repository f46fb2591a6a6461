import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { runView } from "../../core/views.ts";
import { FAKE_CLI_PATH } from "../support/fake-clis.ts";
import { startTestStack, type TestStack } from "../support/stack.ts";
import { waitFor } from "../support/wait.ts";

const CONFIG = `
pools:
  - { name: main, tool: claude, account: main, max_concurrency: 4, lease_seconds: 30, worker: { slots: 4 } }
  - { name: spare, tool: codex, account: main, max_concurrency: 1 }
`;

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack(CONFIG, {
    workerEnv: { PATH: FAKE_CLI_PATH },
  });
});
afterAll(async () => {
  await stack?.stop();
});

const submit = (body: object) => stack.submit({ tool: "claude", ...body });
const task = async (uuid: string) => (await stack.call("GET", `/v2/tasks/${uuid}`)).json?.data;
const runs = async (uuid: string) =>
  (await stack.call("GET", `/v2/instances?task_id=${uuid}&size=100`)).json?.data.instances as ReturnType<
    typeof runView
  >[];

describe("time", () => {
  it("starts a delayed task no earlier than its time", async () => {
    const at = new Date(Date.now() + 3000).toISOString();
    const uuid = await submit({ prompt: "later", scheduled_at: at });
    expect((await task(uuid)).status).toBe("scheduled");
    const done = await waitFor(
      () => task(uuid),
      (t) => t.status === "succeeded",
    );
    expect(done.status).toBe("succeeded");
    const [run] = await runs(uuid);
    expect(Date.parse(run?.create_time ?? "")).toBeGreaterThanOrEqual(Date.parse(at));
  });

  it("runs an interval task its `times` occurrences, then completes", async () => {
    // overlap queue: on a slow machine an occurrence may outlast the 1 s interval; none is skipped then.
    const uuid = await submit({ prompt: "tick", interval: 1, times: 3, overlap: "queue" });
    const done = await waitFor(
      () => task(uuid),
      (t) => t.status === "completed",
    );
    expect(done).toMatchObject({ status: "completed", occurrence: 3 });
    expect((await runs(uuid)).map((r) => [r.occurrence, r.status])).toEqual([
      [1, "succeeded"],
      [2, "succeeded"],
      [3, "succeeded"],
    ]);
  });

  it("stops occurrences while paused and restarts them on resume", async () => {
    const uuid = await submit({ prompt: "every second", interval: 1 });
    await waitFor(
      () => runs(uuid),
      (r) => r.length >= 2,
    );
    const paused = await stack.call("POST", `/v2/tasks/${uuid}/pause`);
    expect(paused.status).toBe(200);
    await waitFor(
      () => task(uuid),
      (t) => t.status === "paused",
    );
    const before = (await runs(uuid)).length;
    await new Promise((r) => setTimeout(r, 3000));
    expect((await runs(uuid)).length).toBe(before);

    expect((await stack.call("POST", `/v2/tasks/${uuid}/resume`)).status).toBe(200);
    await waitFor(
      () => runs(uuid),
      (r) => r.length >= before + 2,
    );
    expect((await runs(uuid)).length).toBeGreaterThanOrEqual(before + 2);
    await stack.call("DELETE", `/v2/tasks/${uuid}`);
  });

  it("moves the next run with reorder", async () => {
    const uuid = await submit({ prompt: "hourly", interval: 3600 });
    const first = await waitFor(
      () => task(uuid),
      (t) => t.status === "scheduled" && t.occurrence === 1,
    );
    const res = await stack.call("POST", `/v2/tasks/${uuid}/reorder`, { body: { priority_offset: -3598 } });
    expect(res.status, res.text).toBe(200);
    expect(Date.parse(res.json?.data.next_run_time)).toBe(Date.parse(first.next_run_time) - 3_598_000);
    const second = await waitFor(
      () => task(uuid),
      (t) => t.occurrence === 2 && t.status === "scheduled",
    );
    expect(second.occurrence).toBe(2);
    await stack.call("DELETE", `/v2/tasks/${uuid}`);
  });

  it("refuses a reorder while the occurrence runs (409)", async () => {
    const uuid = await submit({ prompt: "[sleep:5] slow", interval: 3600 });
    await waitFor(
      () => task(uuid),
      (t) => t.status === "running",
    );
    const res = await stack.call("POST", `/v2/tasks/${uuid}/reorder`, { body: { priority_offset: 60 } });
    expect([res.status, res.json?.code]).toEqual([409, "1007"]);
    await stack.call("DELETE", `/v2/tasks/${uuid}`);
  });

  it("records skipped runs when occurrences overlap (overlap skip)", async () => {
    const uuid = await submit({ prompt: "[sleep:4] slow", interval: 1, overlap: "skip" });
    const list = await waitFor(
      () => runs(uuid),
      (r) => r.some((run) => run.status === "skipped"),
    );
    expect(list.filter((r) => r.status === "skipped").length).toBeGreaterThan(0);
    await stack.call("DELETE", `/v2/tasks/${uuid}`);
  });

  it("answers bad recurrences with 400, code 1001, naming the field", async () => {
    for (const [body, field] of [
      [{ schedule: "not a cron" }, "schedule"],
      [{ schedule: "0 * * * *", timezone: "Nowhere/City" }, "timezone"],
      [{ interval: 60, valid_time_range: [18, 6] }, "valid_time_range"],
      [{ interval: 60, end_time: "2001-01-01T00:00:00Z" }, "end_time"],
      [{ interval: 60, schedule: "0 * * * *" }, "interval"],
    ] as const) {
      const res = await stack.call("POST", "/v2/tasks", { body: { tool: "claude", prompt: "x", ...body } });
      expect([res.status, res.json?.code]).toEqual([400, "1001"]);
      expect(res.json?.message).toContain(field);
    }
  });
});

describe("pools and the dispatcher", () => {
  it("pauses and resumes a pool, and reports the dispatcher's state", async () => {
    const paused = await stack.call("POST", "/v2/pools/spare/pause");
    expect(paused.json?.data).toMatchObject({ name: "spare", paused: true });
    const uuid = await submit({ tool: "codex", prompt: "waits" });
    expect((await task(uuid)).status).toBe("queued");
    const status = await stack.call("GET", "/v2/dispatcher/status");
    expect(status.json?.data).toMatchObject({ running: true, counts: { queued: expect.any(Number) } });
    expect(status.json?.data.counts.queued).toBeGreaterThanOrEqual(1);

    await stack.call("POST", "/v2/pools/spare/resume");
    expect((await task(uuid)).status).not.toBe("queued");
    await stack.call("DELETE", `/v2/tasks/${uuid}`);
  });

  it("stops and starts the whole dispatcher; tenants may not", async () => {
    const tenant = await stack.call("POST", "/v2/tenants", { body: { name: "t" } });
    const denied = await stack.call("POST", "/v2/dispatcher/stop", { key: tenant.json?.data.api_key });
    expect([denied.status, denied.json?.code]).toEqual([403, "1009"]);
    const stopped = await stack.call("POST", "/v2/dispatcher/stop");
    expect(stopped.json?.data.running).toBe(false);
    const started = await stack.call("POST", "/v2/dispatcher/start");
    expect(started.json?.data.running).toBe(true);
  });
});
