/**
 * The CLI accounts over HTTP with real workers and the fake claude: a rejected rate_limit_event limits its
 * account, the account's queued tool-only tasks run on the other account's pool meanwhile, a pinned task
 * waits with its reason, and the account is available again after the reset; an allowed one limits nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FAKE_CLI_PATH } from "../support/fake-clis.ts";
import { startTestStack, type TestStack } from "../support/stack.ts";
import { waitFor } from "../support/wait.ts";

const CONFIG = `pools:
  - { name: claude-a, tool: claude, account: a, max_concurrency: 1 }
  - { name: claude-b, tool: claude, account: b, max_concurrency: 1 }
`;

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack(CONFIG, {
    workerEnv: {
      PATH: FAKE_CLI_PATH,
      // Each account's CLI knows which one it is: [limited-account:a] limits a's runs only.
      SWITCHYARD_CREDENTIALS_A: JSON.stringify({ FAKE_CLI_ACCOUNT: "a" }),
      SWITCHYARD_CREDENTIALS_B: JSON.stringify({ FAKE_CLI_ACCOUNT: "b" }),
    },
  });
});
afterAll(async () => {
  await stack?.stop();
});

const task = async (uuid: string) => (await stack.call("GET", `/v2/tasks/${uuid}`)).json?.data;
const accounts = async () =>
  (await stack.call("GET", "/v2/tool-accounts")).json?.data as { account: string; state: string }[];
const accountA = async () => (await accounts()).find((a) => a.account === "a");
const runsOf = async (uuid: string) =>
  (await stack.call("GET", `/v2/instances?task_id=${uuid}`)).json?.data.instances as {
    pool: string;
    status: string;
    start_time: string;
  }[];
const until = (uuid: string, status: string, ms = 30_000) =>
  waitFor(
    () => task(uuid),
    (t) => t?.status === status,
    ms,
  );

describe("a claude account's usage window", () => {
  it("an allowed status, even with a warning, limits nothing: only the account's last usage shows it", async () => {
    const uuid = await stack.submit({ pool: "claude-a", prompt: "[limit-warning] nearly there" });
    await until(uuid, "succeeded");
    const a = await waitFor(accountA, (found) => (found as { last_usage?: unknown })?.last_usage != null);
    expect(a).toMatchObject({
      tool: "claude",
      account: "a",
      state: "available",
      reset_at: null,
      last_usage: { status: "allowed_warning", window: "five_hour", utilization: 0.91, overage: false },
      pools: ["claude-a"],
    });
    const pools = (await stack.call("GET", "/v2/pools")).json?.data as { name: string; paused: boolean }[];
    expect(pools.map((p) => p.paused)).toEqual([false, false]);
  });

  it("a rejection limits the account until its reset: its tool-only tasks run on the other account meanwhile", async () => {
    // Whole seconds: the event's resetsAt is epoch seconds.
    const reset = new Date(Math.ceil((Date.now() + 60_000) / 1000) * 1000);
    const limit = `[limited-account:a] [ratelimit-reset:${reset.toISOString()}]`;
    // The first run holds claude-a a moment, then its account's five-hour window is exhausted.
    const first = await stack.submit({ pool: "claude-a", prompt: `[sleep:3] ${limit} first` });
    await until(first, "running");
    // Meanwhile tool-only tasks queue on both pools (each full), all of them told to hit the limit on a.
    const movable = [];
    for (let i = 0; i < 4; i++) {
      movable.push(await stack.submit({ tool: "claude", prompt: `[sleep:1] ${limit} movable ${i}` }));
    }
    const limited = await waitFor(accountA, (a) => a?.state === "limited", 30_000);
    expect(limited).toMatchObject({
      state: "limited",
      reset_at: reset.toISOString(),
      limit_source: "rate_limit_event",
      window: "five_hour",
    });
    // A task pinned to the limited account's pool waits, and says why and until when.
    const pinned = await stack.submit({ pool: "claude-a", prompt: `${limit} pinned` });
    expect(await task(pinned)).toMatchObject({
      status: "queued",
      waiting_reason: "account_limited",
      waiting_until: reset.toISOString(),
    });
    // The pinned first task waits for the reset too, its attempt given back.
    expect(await task(first)).toMatchObject({
      status: "scheduled",
      attempt: 0,
      next_run_time: reset.toISOString(),
    });

    // The tool-only tasks all succeed before the reset, each of its runs on claude-b.
    for (const uuid of movable) await until(uuid, "succeeded", 40_000);
    expect(Date.now()).toBeLessThan(reset.getTime());
    for (const uuid of movable) {
      const runs = await runsOf(uuid);
      expect(runs.filter((r) => r.status === "succeeded").map((r) => r.pool)).toEqual(["claude-b"]);
    }
    expect((await accountA())?.state).toBe("limited");

    // After the reset the account is available, and its pool runs what waited for it.
    await waitFor(accountA, (a) => a?.state === "available", 70_000);
    expect(Date.now()).toBeGreaterThanOrEqual(reset.getTime());
    for (const uuid of [first, pinned]) {
      const done = await until(uuid, "succeeded", 30_000);
      expect(done.pool).toBe("claude-a");
    }
    const afterReset = (await runsOf(first)).at(-1);
    expect(Date.parse(afterReset?.start_time ?? "")).toBeGreaterThanOrEqual(reset.getTime());
  }, 150_000);

  it("an admin clears a limit at once; a tenant key cannot", async () => {
    const reset = new Date(Date.now() + 3600_000);
    const uuid = await stack.submit({
      pool: "claude-a",
      prompt: `[ratelimit-reset:${reset.toISOString()}] limited for an hour`,
    });
    await waitFor(accountA, (a) => a?.state === "limited", 30_000);
    const tenant = await stack.call("POST", "/v2/tenants", { body: { name: "accounts-tenant" } });
    const key = tenant.json?.data.api_key as string;
    const refused = await stack.call("POST", "/v2/tool-accounts/claude/a/clear", { key });
    expect(refused.status).toBe(403);
    expect((await stack.call("POST", "/v2/tool-accounts/cobol/a/clear")).json?.code).toBe("1001");
    expect((await stack.call("POST", "/v2/tool-accounts/claude/zzz/clear")).status).toBe(404);
    const cleared = await stack.call("POST", "/v2/tool-accounts/claude/a/clear");
    expect(cleared.json?.data).toMatchObject({ account: "a", state: "available", reset_at: null });
    const pools = (await stack.call("GET", "/v2/pools")).json?.data as { name: string; paused: boolean }[];
    expect(pools.find((p) => p.name === "claude-a")?.paused).toBe(false);
    await stack.call("DELETE", `/v2/tasks/${uuid}`);
  });
});
