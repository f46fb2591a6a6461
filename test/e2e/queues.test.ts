/** The pools and their queues over HTTP: the v2 API's fields, a queued task's place, and tenants kept apart. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FAKE_CLI_PATH } from "../support/fake-clis.ts";
import { startTestStack, type TestStack } from "../support/stack.ts";
import { waitFor } from "../support/wait.ts";

const CONFIG = `pools:
  - { name: one, tool: claude, account: main, max_concurrency: 1 }
  - { name: pods, tool: container, max_concurrency: 3, lease_seconds: 30 }
`;

let stack: TestStack;
let alice: string;
let bob: string;

const newTenant = async (name: string) =>
  (await stack.call("POST", "/v2/tenants", { body: { name } })).json?.data.api_key as string;
const submit = async (key: string, body: object) => {
  const res = await stack.call("POST", "/v2/tasks", { key, body: { pool: "one", ...body } });
  expect(res.status, res.text).toBe(201);
  return res.json?.data.uuid as string;
};
const get = async (path: string, key = alice) => stack.call("GET", path, { key });

beforeAll(async () => {
  stack = await startTestStack(CONFIG, { workerEnv: { PATH: FAKE_CLI_PATH } });
  [alice, bob] = await Promise.all([newTenant("alice"), newTenant("bob")]);
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
    expect(queues).toEqual([
      { name: "one", size: 4, waiting: 3, running: 1 },
      { name: "pods", size: 0, waiting: 0, running: 0 },
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
    const unknown = await get("/v2/queues/nope");
    expect([unknown.status, unknown.json?.code]).toEqual([404, "1004"]);
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
    // Bob's own task takes its place behind alice's, and he sees it with its number.
    const own = await submit(bob, { prompt: "bob's" });
    expect((await get(`/v2/tasks/${own}`, bob)).json?.data.position).toBe(4);
    expect((await get("/v2/queues/one?verbose=true", bob)).json?.data.head).toEqual([
      { position: 4, uuid: own, priority: 5 },
    ]);
  });
});
