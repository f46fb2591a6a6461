/** Concurrency scopes: a cap on a tool's (or a model's) tasks holding a slot at once, over all pools. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FAKE_CLI_PATH } from "../support/fake-clis.ts";
import { startTestStack, type TestStack } from "../support/stack.ts";
import { waitFor } from "../support/wait.ts";

const worker = "worker: { max: 1, slots: 2 }";
const CONFIG = `
concurrency_limits: { "tool:claude": 2, "model:opus": 1 }
pools:
  - { name: claude-a, tool: claude, account: a, max_concurrency: 2, ${worker} }
  - { name: claude-b, tool: claude, account: b, max_concurrency: 2, ${worker} }
  - { name: codex, tool: codex, account: main, max_concurrency: 2, ${worker} }
`;

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack(CONFIG, { workerEnv: { PATH: FAKE_CLI_PATH } });
});
afterAll(async () => {
  await stack?.stop();
});

const submit = (body: object) => stack.submit(body);

/** Each task's run, once all have ended: when it started and ended. */
async function runsOf(uuids: string[]) {
  await waitFor(
    async () =>
      Promise.all(
        uuids.map(async (uuid) => (await stack.call("GET", `/v2/tasks/${uuid}`)).json?.data.status),
      ),
    (statuses) => statuses.every((s) => s === "succeeded"),
    60_000,
  );
  return Promise.all(
    uuids.map(async (uuid) => {
      const task = (await stack.call("GET", `/v2/tasks/${uuid}`)).json?.data;
      return { uuid, pool: task.pool, start: Date.parse(task.start_time), end: Date.parse(task.end_time) };
    }),
  );
}

/** The most runs going at one moment. */
function mostAtOnce(runs: { start: number; end: number }[]): number {
  const edges = runs.flatMap((r) => [
    [r.start, 1],
    [r.end, -1],
  ]);
  // An end before a start at the same moment: a slot handed over is not two at once.
  edges.sort((a, b) => (a[0] as number) - (b[0] as number) || (a[1] as number) - (b[1] as number));
  let [now, most] = [0, 0];
  for (const [, step] of edges) {
    now += step as number;
    most = Math.max(most, now);
  }
  return most;
}

describe("concurrency scopes", () => {
  it("run no more than the tool's limit at once across its pools, and each pool's tasks all run", async () => {
    const claude = await Promise.all(
      [1, 2, 3, 4, 5, 6].map((n) =>
        submit({ pool: n % 2 ? "claude-a" : "claude-b", prompt: `[sleep:2] claude ${n}` }),
      ),
    );
    // Another tool's pool is not held back.
    const codex = await Promise.all(
      [1, 2].map((n) => submit({ pool: "codex", prompt: `[sleep:2] codex ${n}` })),
    );
    const [claudeRuns, codexRuns] = await Promise.all([runsOf(claude), runsOf(codex)]);
    expect(mostAtOnce(claudeRuns)).toBe(2);
    expect(new Set(claudeRuns.map((r) => r.pool))).toEqual(new Set(["claude-a", "claude-b"]));
    expect(mostAtOnce(codexRuns)).toBe(2);
    // Within three rounds of two: a freed scope slot was taken by the other pool's task at once.
    const span = Math.max(...claudeRuns.map((r) => r.end)) - Math.min(...claudeRuns.map((r) => r.start));
    expect(span).toBeLessThan(3 * 2_000 + 6_000);
  });

  it("hold a model's tasks to its limit, while the tool's other tasks go past them", async () => {
    const opus = await Promise.all(
      [1, 2, 3].map((n) => submit({ pool: "claude-a", model: "opus", prompt: `[sleep:2] opus ${n}` })),
    );
    const others = await Promise.all(
      [1, 2].map((n) => submit({ pool: "claude-a", prompt: `[sleep:1] other ${n}` })),
    );
    const [opusRuns, otherRuns] = await Promise.all([runsOf(opus), runsOf(others)]);
    expect(mostAtOnce(opusRuns)).toBe(1);
    // Queued behind the model's tasks, the others did not wait for all of them.
    const lastOpusStart = Math.max(...opusRuns.map((r) => r.start));
    expect(Math.min(...otherRuns.map((r) => r.start))).toBeLessThan(lastOpusStart);
  });
});
