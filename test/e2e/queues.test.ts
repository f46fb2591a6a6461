/** The pools and their queues over HTTP: the v2 API's fields, a queued task's place, and tenants kept apart. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ringSlot } from "../../core/estimate.ts";
import { runIdFor } from "../../core/identifiers.ts";
import { WAIT_OUTCOME_SLOTS } from "../../core/ports.ts";
import { FAKE_CLI_PATH } from "../support/fake-clis.ts";
import { startTestStack, type TestStack } from "../support/stack.ts";
import { waitFor } from "../support/wait.ts";

const CONFIG = `pools:
  - { name: one, tool: claude, account: main, max_concurrency: 1 }
  - { name: pods, tool: container, max_concurrency: 3, lease_seconds: 30 }
`;

let stack: TestStack;
let alice: string;
let aliceId: string;
let bob: string;

const newTenant = async (name: string) => {
  const { api_key, tenant } = (await stack.call("POST", "/v2/tenants", { body: { name } })).json?.data ?? {};
  return { key: api_key as string, id: tenant.id as string };
};
const submit = async (key: string, body: object) => {
  const res = await stack.call("POST", "/v2/tasks", { key, body: { pool: "one", ...body } });
  expect(res.status, res.text).toBe(201);
  return res.json?.data.uuid as string;
};
const get = async (path: string, key = alice) => stack.call("GET", path, { key });

beforeAll(async () => {
  stack = await startTestStack(CONFIG, { workerEnv: { PATH: FAKE_CLI_PATH } });
  const [a, b] = await Promise.all([newTenant("alice"), newTenant("bob")]);
  [alice, aliceId, bob] = [a.key, a.id, b.key];
});
afterAll(async () => {
  await stack?.stop();
});

describe("queues and pools", () => {
  let blocker: string;
  let queued: string[];

  beforeAll(async () => {
    blocker = await submit(alice, { prompt: "[sleep:8] blocker" });
    await waitFor(
      async () => (await get(`/v2/tasks/${blocker}`)).json?.data.status,
      (s) => s === "running",
    );
    // Admitted by priority, then age: the priority-9 task goes first although it came last.
    const first = await submit(alice, { prompt: "first", priority: 5 });
    const second = await submit(alice, { prompt: "second", priority: 5 });
    const urgent = await submit(alice, { prompt: "urgent", priority: 9 });
    queued = [urgent, first, second];
  });

  it("show a queued task's place in the admission order: 1 is next; a running task has none", async () => {
    const places = await Promise.all(queued.map(async (uuid) => (await get(`/v2/tasks/${uuid}`)).json?.data));
    expect(places.map((t) => [t.status, t.position])).toEqual([
      ["queued", 1],
      ["queued", 2],
      ["queued", 3],
    ]);
    expect((await get(`/v2/tasks/${blocker}`)).json?.data.position).toBeUndefined();
  });

  it("answer the v2 API's fields: a queue's size, waiting and running; a pool's usage and tasks", async () => {
    const queues = (await get("/v2/queues")).json?.data;
    // No run has ended yet: no wait can be estimated.
    const unknown = { waiting_time_expect: null, waiting_time_error: null };
    expect(queues).toEqual([
      { name: "one", size: 4, waiting: 3, running: 1, ...unknown },
      { name: "pods", size: 0, waiting: 0, running: 0, ...unknown },
    ]);
    const pools = (await get("/v2/pools")).json?.data;
    expect(pools).toEqual([
      {
        name: "one",
        tool: "claude",
        account: "main",
        usage: 1,
        tasks: 1,
        max_concurrency: 1,
        paused: false,
        paused_until: null,
      },
      {
        name: "pods",
        tool: "container",
        account: null,
        usage: 0,
        tasks: 0,
        max_concurrency: 3,
        paused: false,
        paused_until: null,
      },
    ]);
    const queue = (await get("/v2/queues/one?verbose=true")).json?.data;
    expect(queue.head).toEqual(
      queued.map((uuid, i) => ({ position: i + 1, uuid, priority: i === 0 ? 9 : 5 })),
    );
    const pool = (await get("/v2/pools/one?verbose=true")).json?.data;
    expect(pool).toMatchObject({
      name: "one",
      config: { max_concurrency: 1, lease_seconds: 120, allow_dangerous_flags: false },
      workers: { count: 1, slots: 1 },
    });
    expect((await get("/v2/pools/one")).json?.data.config).toBeUndefined();
    const missing = await get("/v2/queues/nope");
    expect([missing.status, missing.json?.code]).toEqual([404, "1004"]);
  });

  it("list a tenant's running tasks, with their pool's account, in the dispatcher's status (admin)", async () => {
    const status = (await get(`/v2/dispatcher/status?tenant=${aliceId}&size=5`, stack.adminKey)).json?.data;
    expect(status.running_tasks).toEqual({
      tasks: [{ uuid: blocker, pool: "one", account: "main", started_at: expect.any(String) }],
      next_cursor: null,
    });
  });

  it("show another tenant the aggregates only: none of alice's tasks, on any queue route", async () => {
    const queue = (await get("/v2/queues/one?verbose=true", bob)).json?.data;
    expect(queue).toMatchObject({ size: 4, waiting: 3, head: [] });
    for (const path of [
      "/v2/queues",
      "/v2/queues/one",
      "/v2/queues/one?verbose=true",
      "/v2/pools/one?verbose=true",
    ]) {
      const text = (await get(path, bob)).text;
      for (const uuid of [blocker, ...queued]) expect(text, path).not.toContain(uuid);
    }
    expect((await get(`/v2/tasks/${queued[0]}`, bob)).status).toBe(404);
    // Bob's own task takes its turn (fair share): after alice's priority-9 task and her first one at
    // priority 5, before her second; he sees it with its number.
    const own = await submit(bob, { prompt: "bob's" });
    expect((await get(`/v2/tasks/${own}`, bob)).json?.data.position).toBe(3);
    expect((await get("/v2/queues/one?verbose=true", bob)).json?.data.head).toEqual([
      { position: 3, uuid: own, priority: 5 },
    ]);
  });
});

describe("expected waits", () => {
  it("come once the pool has recent runs, grow with the place, and their bands hold the real waits", async () => {
    // Polled with the admin key: alice's would run into her 100 requests a minute.
    const admin = (path: string) => get(path, stack.adminKey);
    const done = async (uuids: string[]) => {
      for (const uuid of uuids) {
        await waitFor(
          async () => (await admin(`/v2/tasks/${uuid}`)).json?.data.status,
          (s) => s === "succeeded",
          60_000,
        );
      }
    };
    // History: the runs of the first block, and a few more of two seconds each, as long as the blocker's
    // and the queued tasks' runs (an estimate can only know the runs the pool had).
    await done(await Promise.all([1, 2, 3, 4].map(() => submit(alice, { prompt: "[sleep:2] history" }))));
    const blocker = await submit(alice, { prompt: "[sleep:2] blocker" });
    await waitFor(
      async () => (await admin(`/v2/tasks/${blocker}`)).json?.data.status,
      (s) => s === "running",
    );
    const waiting: string[] = [];
    const told: { expect: number; error: number }[] = [];
    for (const n of [1, 2, 3]) {
      const res = await stack.call("POST", "/v2/tasks", {
        key: alice,
        body: { pool: "one", prompt: `[sleep:2] queued ${n}` },
      });
      // The submit answer already says where the task waits, and for how long it should.
      expect(res.json?.data).toMatchObject({
        status: "queued",
        position: n,
        waiting_time_expect: expect.any(Number),
        waiting_time_error: expect.any(Number),
      });
      waiting.push(res.json?.data.uuid);
      told.push({ expect: res.json?.data.waiting_time_expect, error: res.json?.data.waiting_time_error });
      const events = (await admin(`/v2/tasks/${res.json?.data.uuid}/events`)).json?.data.events;
      expect(events[0]).toMatchObject({
        type: "task.created",
        predicted_wait: {
          expect: res.json?.data.waiting_time_expect,
          error: res.json?.data.waiting_time_error,
        },
      });
      expect(events[0].routed_by).toBeUndefined();
    }
    const estimated = await Promise.all(
      waiting.map(async (uuid) => ({ at: Date.now(), task: (await get(`/v2/tasks/${uuid}`)).json?.data })),
    );
    expect(estimated.map((e) => e.task.position)).toEqual([1, 2, 3]);
    const expects = estimated.map((e) => e.task.waiting_time_expect as number);
    expect(expects.every((x) => typeof x === "number" && x > 0)).toBe(true);
    expect(expects[0]).toBeLessThan(expects[1] as number);
    expect(expects[1]).toBeLessThan(expects[2] as number);
    const queue = (await get("/v2/queues/one")).json?.data;
    expect(queue.waiting_time_expect).toBeGreaterThan(expects[2] as number);

    await done(waiting);
    // Each kept the wait its submission predicted; the queue tells how good such predictions were, over
    // these three and the history tasks that queued (their outcomes only add to the sums).
    const calibration = (await admin("/v2/queues/one?verbose=true")).json?.data.calibration;
    const outcomes = await Promise.all(
      waiting.map(async (uuid, i) => {
        const task = (await admin(`/v2/tasks/${uuid}`)).json?.data;
        const actual = (Date.parse(task.start_time) - Date.parse(task.create_time)) / 1000;
        const miss = Math.abs(actual - (told[i]?.expect as number));
        // Clearly inside: the stored wait, to the tenth, is inside too.
        return { actual, miss, inside: miss <= (told[i]?.error as number) - 0.05 };
      }),
    );
    // A task's outcome takes a slot its run id picks; of two in one slot, the later (the one behind) stays.
    const slots = waiting.map((uuid) => ringSlot(runIdFor(uuid, 1), WAIT_OUTCOME_SLOTS));
    const kept = outcomes.filter((_, i) => !slots.slice(i + 1).includes(slots[i] as number));
    const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
    const n = calibration.samples;
    expect(n).toBeGreaterThanOrEqual(kept.length);
    // Stored to the tenth of a second: a twentieth each way.
    expect(calibration.mean_wait_s * n).toBeGreaterThanOrEqual(sum(kept.map((o) => o.actual)) - 0.05 * n);
    expect(calibration.mean_abs_error_s * n).toBeGreaterThanOrEqual(sum(kept.map((o) => o.miss)) - 0.05 * n);
    const inside = kept.filter((o) => o.inside).length;
    expect(calibration.coverage * n).toBeGreaterThanOrEqual(inside - 0.01);
    expect(calibration.coverage).toBeLessThanOrEqual(1);
    for (const { at, task } of estimated) {
      const started = Date.parse((await admin(`/v2/tasks/${task.uuid}`)).json?.data.start_time);
      const wait = (started - at) / 1000;
      const { waiting_time_expect: expected, waiting_time_error: error } = task;
      // Within the band, give or take the half second the GET took.
      const band = `${expected} ± ${error} s, waited ${wait} s`;
      expect(Math.abs(wait - expected), `place ${task.position}: ${band}`).toBeLessThanOrEqual(error + 0.5);
    }
  });
});
