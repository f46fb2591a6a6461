/**
 * Fair share over HTTP with real workers: tenant A queues 200 tasks, then tenant B queues 20 at the same
 * priority in a pool of 4. Every B task starts before A's backlog is half done, each tenant in its order.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FAKE_CLI_PATH } from "../support/fake-clis.ts";
import { startTestStack, type TestStack } from "../support/stack.ts";
import { waitFor } from "../support/wait.ts";

const CONFIG = `pools:
  - { name: shared, tool: codex, account: a, max_concurrency: 4, worker: { slots: 4 } }
`;

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack(CONFIG, { workerEnv: { PATH: FAKE_CLI_PATH } });
});
afterAll(async () => {
  await stack?.stop();
});

const LIMITS = {
  rate_limit_per_minute: 100_000,
  max_queued_tasks: 10_000,
  max_submissions_per_minute: 100_000,
};

async function tenantKey(name: string): Promise<string> {
  const created = await stack.call("POST", "/v2/tenants", { body: { name, ...LIMITS } });
  expect(created.status).toBe(201);
  return created.json?.data.api_key;
}

/** Every page of a listing (`key` of the list in the answer). */
async function all<T>(path: string, key: string, list: string): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  do {
    const answer = await stack.call("GET", `${path}size=100${cursor ? `&cursor=${cursor}` : ""}`, { key });
    expect(answer.status, answer.text).toBe(200);
    const page = answer.json?.data;
    items.push(...(page[list] as T[]));
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
  return items;
}

/** When each of a tenant's tasks started, earliest first, once all `count` have succeeded. */
async function startsOf(key: string, count: number) {
  await waitFor(
    async () => (await stack.call("GET", "/v2/tasks?status=succeeded&size=1", { key })).json?.data.total,
    (total) => total === count,
    120_000,
  );
  const runs = await all<{ start_time: string }>("/v2/instances?", key, "instances");
  expect(runs).toHaveLength(count);
  return runs.map((r) => Date.parse(r.start_time)).sort((x, y) => x - y);
}

describe("fair share in a pool", () => {
  it("starts every one of B's 20 before A's 200-task backlog is half done", async () => {
    const [a, b] = [await tenantKey("flood"), await tenantKey("trickle")];
    const submit = (key: string, name: string) =>
      stack.submit({ pool: "shared", prompt: `[sleep:0.5] ${name}`, name }, key);
    // A's flood first (in batches, so that the stack keeps up), then B's trickle.
    for (let i = 0; i < 200; i += 20) {
      await Promise.all(Array.from({ length: 20 }, (_, j) => submit(a, `a-${i + j}`)));
    }
    await Promise.all(Array.from({ length: 20 }, (_, i) => submit(b, `b-${i}`)));
    const [aStarts, bStarts] = [await startsOf(a, 200), await startsOf(b, 20)];
    const halfOfA = aStarts[99] as number;
    const lastB = bStarts.at(-1) as number;
    expect(lastB).toBeLessThan(halfOfA);
  }, 180_000);
});
