/** A reload: the pools' runtime fields change without a redeploy or a restart, in every process. */
import { writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FAKE_CLI_PATH } from "../support/fake-clis.ts";
import { startTestStack, type TestStack } from "../support/stack.ts";
import { waitFor } from "../support/wait.ts";

const config = (maxConcurrency: number, extra = "") => `pools:
  - { name: p, tool: claude, account: main, max_concurrency: ${maxConcurrency}, worker: { max: 1, slots: 3 } }
${extra}`;
const REFRESH_SECONDS = 1;

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack(config(3), {
    workerEnv: { PATH: FAKE_CLI_PATH },
    configRefreshSeconds: REFRESH_SECONDS,
  });
});
afterAll(async () => {
  await stack?.stop();
});

const reload = () => stack.call("POST", "/v2/reload");
const poolLimit = async () => (await stack.call("GET", "/v2/pools/p")).json?.data.max_concurrency;

/** Runs tasks of `seconds` each, all at once, and answers the most that ran together. */
async function mostRunningOf(count: number, seconds: number): Promise<number> {
  const uuids = await Promise.all(
    Array.from({ length: count }, (_, n) =>
      stack.submit({ pool: "p", prompt: `[sleep:${seconds}] job ${n}` }),
    ),
  );
  const tasks = await waitFor(
    () => Promise.all(uuids.map(async (uuid) => (await stack.call("GET", `/v2/tasks/${uuid}`)).json?.data)),
    (all) => all.every((t) => t.status === "succeeded"),
    60_000,
  );
  expect(tasks.map((t) => t.status)).toEqual(uuids.map(() => "succeeded"));
  const spans = tasks.map((t) => [Date.parse(t.start_time), Date.parse(t.end_time)] as const);
  return Math.max(...spans.map(([start]) => spans.filter(([s, e]) => s <= start && start < e).length));
}

describe("POST /v2/reload", () => {
  it("lowers a pool's max_concurrency from 3 to 1 and holds new admissions to one, with no restart", async () => {
    expect(await mostRunningOf(3, 2)).toBe(3);
    writeFileSync(stack.configPath, config(1));
    const res = await reload();
    expect([res.status, res.json]).toEqual([
      200,
      {
        code: "0",
        message: "OK",
        success: true,
        data: "reload OK",
        changes: ["pools.p.max_concurrency: 3 → 1"],
        warnings: [],
      },
    ]);
    expect(await poolLimit()).toBe(1);
    // The tick and the worker process take it within their refresh period.
    await new Promise((resolve) => setTimeout(resolve, 2 * REFRESH_SECONDS * 1000 + 500));
    expect(await mostRunningOf(3, 1)).toBe(1);
  });

  it("refuses an invalid config as start-up does, and one that needs a deploy, changing nothing", async () => {
    const before = (await stack.call("GET", "/v2/pools/p?verbose=true")).json?.data;
    writeFileSync(stack.configPath, config(0));
    const invalid = await reload();
    expect([invalid.status, invalid.json?.code, invalid.json?.message]).toEqual([
      400,
      "1001",
      `${stack.configPath}: pools.0.max_concurrency: Too small: expected number to be >=1`,
    ]);
    writeFileSync(stack.configPath, "pools: [");
    expect((await reload()).json?.message).toMatch(/not valid YAML/);
    writeFileSync(
      stack.configPath,
      config(2, "  - { name: q, tool: codex, account: main, max_concurrency: 1 }\n"),
    );
    const needsDeploy = await reload();
    expect([needsDeploy.status, needsDeploy.json?.code, needsDeploy.json?.message]).toEqual([
      409,
      "1007",
      "config: needs deploy: pool q is new: its queue and workers do not exist",
    ]);
    expect((await stack.call("GET", "/v2/pools/p?verbose=true")).json?.data).toEqual(before);
  });

  it("is the admin's alone", async () => {
    const { api_key } = (await stack.call("POST", "/v2/tenants", { body: { name: "t" } })).json?.data ?? {};
    const res = await stack.call("POST", "/v2/reload", { key: api_key });
    expect([res.status, res.json?.code]).toEqual([403, "1009"]);
  });
});
