/** Accounts (the TaskDispatcher's): a concurrency key's tasks, and one open task per account when asked. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FAKE_CLI_PATH } from "../support/fake-clis.ts";
import { startTestStack, type TestStack } from "../support/stack.ts";
import { waitFor } from "../support/wait.ts";

const CONFIG = `pools:
  - { name: wide, tool: claude, account: main, max_concurrency: 4 }
`;

let stack: TestStack;
let alice: string;
let bob: string;

const newTenant = async (name: string) =>
  // Its status polls are many requests: room for them.
  (await stack.call("POST", "/v2/tenants", { body: { name, rate_limit_per_minute: 100_000 } })).json?.data
    .api_key as string;
const submit = (key: string, body: object) =>
  stack.call("POST", "/v2/tasks", { key, body: { pool: "wide", prompt: "[sleep:1] sync", ...body } });
const statusOf = async (key: string, uuid: string) =>
  (await stack.call("GET", `/v2/tasks/${uuid}`, { key })).json?.data.status as string;
const ended = (key: string, uuid: string) =>
  waitFor(
    () => statusOf(key, uuid),
    (s) => s === "succeeded" || s === "failed",
  );

beforeAll(async () => {
  stack = await startTestStack(CONFIG, { workerEnv: { PATH: FAKE_CLI_PATH } });
  [alice, bob] = await Promise.all([newTenant("alice"), newTenant("bob")]);
});
afterAll(async () => {
  await stack?.stop();
});

describe("exclusive submissions", () => {
  it("let one of racing submissions for an account in, and refuse the rest (409, 1007) naming it", async () => {
    const account = { concurrency_key: "acct-race", exclusive: true };
    const answers = await Promise.all([1, 2, 3, 4].map(() => submit(alice, account)));
    const statuses = answers.map((res) => res.status).sort();
    expect(statuses).toEqual([201, 409, 409, 409]);
    const holder = answers.find((res) => res.status === 201)?.json?.data.uuid as string;
    for (const refused of answers.filter((res) => res.status === 409)) {
      expect(refused.json?.code).toBe("1007");
      expect(refused.json?.message).toBe(`concurrency_key: acct-race is held by task ${holder} (exclusive)`);
    }
    // Nothing of a refused one was stored.
    const listed = (await stack.call("GET", "/v2/accounts/acct-race/tasks", { key: alice })).json?.data;
    expect(listed.total).toBe(1);

    // While it is open, the account takes no other task either; once it ends, it takes the next.
    const plain = await submit(alice, { concurrency_key: "acct-race" });
    expect([plain.status, plain.json?.code]).toEqual([409, "1007"]);
    await ended(alice, holder);
    expect((await submit(alice, account)).status).toBe(201);
  });

  it("wait for the account's open tasks, exclusive or not, and leave other accounts and tenants alone", async () => {
    const first = await submit(alice, { concurrency_key: "acct-busy", prompt: "[sleep:2] busy" });
    expect(first.status).toBe(201);
    const exclusive = await submit(alice, { concurrency_key: "acct-busy", exclusive: true });
    expect(exclusive.json?.message).toBe(
      `concurrency_key: acct-busy is held by task ${first.json?.data.uuid}`,
    );
    expect((await submit(alice, { concurrency_key: "acct-other", exclusive: true })).status).toBe(201);
    expect((await submit(bob, { concurrency_key: "acct-busy", exclusive: true })).status).toBe(201);
    // A refused submission is not half-written: its retry, with the same idempotency key, goes in later.
    const retry = { concurrency_key: "acct-busy", exclusive: true, idempotency_key: "sync-1" };
    expect((await submit(alice, retry)).status).toBe(409);
    await ended(alice, first.json?.data.uuid);
    expect((await submit(alice, retry)).status).toBe(201);
  });

  it("free the account when the task holding it is canceled", async () => {
    const later = new Date(Date.now() + 3_600_000).toISOString();
    const account = { concurrency_key: "acct-cancel", exclusive: true };
    const scheduled = await submit(alice, { ...account, scheduled_at: later });
    expect([scheduled.status, scheduled.json?.data.status]).toEqual([201, "scheduled"]);
    expect((await submit(alice, account)).status).toBe(409);
    const uuid = scheduled.json?.data.uuid;
    expect((await stack.call("DELETE", `/v2/tasks/${uuid}`, { key: alice })).status).toBe(200);
    expect((await submit(alice, account)).status).toBe(201);
  });

  it("need a concurrency key (400, 1001 naming exclusive)", async () => {
    const res = await submit(alice, { exclusive: true });
    expect([res.status, res.json?.code]).toEqual([400, "1001"]);
    expect(res.json?.message).toContain("exclusive");
  });
});

describe("an account's tasks", () => {
  it("list the tasks whose concurrency_key it is, newest first, with total, only the caller's", async () => {
    const uuids: string[] = [];
    for (const n of [1, 2, 3]) {
      const res = await submit(alice, { concurrency_key: "acct-list", prompt: `task ${n}` });
      uuids.push(res.json?.data.uuid);
    }
    await submit(alice, { concurrency_key: "acct-unlisted" });
    await submit(bob, { concurrency_key: "acct-list" });
    const list = async (key: string, query = "") =>
      (await stack.call("GET", `/v2/accounts/acct-list/tasks${query}`, { key })).json?.data;
    const all = await list(alice);
    expect(all.total).toBe(3);
    expect(all.tasks.map((t: { uuid: string }) => t.uuid)).toEqual([...uuids].reverse());
    expect(all.tasks[0]).toMatchObject({ concurrency_key: "acct-list", pool: "wide" });
    const first = await list(alice, "?size=2");
    const rest = await list(alice, `?size=2&cursor=${first.next_cursor}`);
    expect([...first.tasks, ...rest.tasks].map((t: { uuid: string }) => t.uuid)).toEqual(
      [...uuids].reverse(),
    );
    expect(rest.next_cursor).toBeNull();
    expect((await list(bob)).total).toBe(1);

    await Promise.all(uuids.map((uuid) => ended(alice, uuid)));
    expect((await list(alice, "?status=succeeded")).total).toBe(3);
    expect((await list(alice, "?status=queued")).tasks).toEqual([]);
    // An admin lists a tenant's account by naming the tenant.
    const tenant = (await stack.call("GET", `/v2/tasks/${uuids[0]}`, { key: alice })).json?.data.tenant;
    expect((await list(stack.adminKey, `?tenant=${tenant}`)).total).toBe(3);
  });

  it("refuse an account name that no concurrency_key could have (400 naming account)", async () => {
    const res = await stack.call("GET", `/v2/accounts/${"a".repeat(200)}/tasks`, { key: alice });
    expect([res.status, res.json?.code]).toEqual([400, "1001"]);
    expect(res.json?.message).toContain("account");
  });
});
