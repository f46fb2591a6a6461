import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROUTES } from "../../functions/_shared/routes.ts";
import { startTestStack, type TestStack } from "../support/stack.ts";

const GUARD = {
  namespaces: ["ml"],
  tags: { team: ["ml", "infra"] },
  max_timeout: 600,
  max_priority: 5,
  max_prompt_bytes: 64,
};
const CONFIG = `pools:
  - { name: main, tool: claude, account: main, max_concurrency: 2 }
  - { name: guarded, tool: codex, account: g, max_concurrency: 1, policy: ${JSON.stringify(GUARD)} }
`;

let stack: TestStack;
let alice: { id: string; key: string };
let bob: { id: string; key: string };

async function newTenant(name: string) {
  const res = await stack.call("POST", "/v2/tenants", { body: { name } });
  expect(res.status).toBe(201);
  return { id: res.json?.data.tenant.id as string, key: res.json?.data.api_key as string };
}

beforeAll(async () => {
  stack = await startTestStack(CONFIG, { workers: false });
  alice = await newTenant("alice");
  bob = await newTenant("bob");
});
afterAll(async () => {
  await stack?.stop();
});

describe("authentication", () => {
  it("needs a key on every route but health (401, 1008)", async () => {
    for (const [method, path] of [
      ["GET", "/v2/tasks"],
      ["POST", "/v2/tasks"],
      ["GET", "/v2/instances"],
      ["GET", "/v2/tenants"],
    ] as const) {
      const res = await stack.call(method, path, { key: null });
      expect([res.status, res.json?.code]).toEqual([401, "1008"]);
    }
    const wrong = await stack.call("GET", "/v2/tasks", { key: "sy_not-a-key" });
    expect([wrong.status, wrong.json?.code]).toEqual([401, "1008"]);
  });

  it("accepts the key in x-api-key too", async () => {
    const res = await fetch(`${stack.url}/v2/tasks`, { headers: { "x-api-key": alice.key } });
    expect(res.status).toBe(200);
  });

  it("refuses tenant keys on admin routes (403, 1009)", async () => {
    const res = await stack.call("POST", "/v2/tenants", { key: alice.key, body: { name: "eve" } });
    expect([res.status, res.json?.code]).toEqual([403, "1009"]);
  });

  it("stores keys hashed, shows them once, and refuses a revoked key", async () => {
    const rotated = await stack.call("POST", `/v2/tenants/${alice.id}/keys`);
    expect(rotated.status).toBe(201);
    const newKey = rotated.json?.data.api_key as string;
    expect((await stack.call("GET", "/v2/tasks", { key: newKey })).status).toBe(200);
    const keys = await stack.call("GET", `/v2/tenants/${alice.id}/keys`);
    expect(keys.text).not.toContain(newKey);
    expect(keys.json?.data.map((k: { key_id: string }) => k.key_id)).toContain(rotated.json?.data.key_id);

    const revoked = await stack.call("DELETE", `/v2/tenants/${alice.id}/keys/${rotated.json?.data.key_id}`);
    expect(revoked.status).toBe(200);
    const refused = await stack.call("GET", "/v2/tasks", { key: newKey });
    expect([refused.status, refused.json?.code]).toEqual([401, "1008"]);
    expect((await stack.call("GET", "/v2/tasks", { key: alice.key })).status).toBe(200);
  });

  it("lists tenants for the admin", async () => {
    const res = await stack.call("GET", "/v2/tenants");
    expect(res.json?.data.map((t: { name: string }) => t.name)).toEqual(
      expect.arrayContaining(["alice", "bob"]),
    );
  });
});

describe("tenant isolation", () => {
  it("answers 404 to another tenant on every task and run route, and lists only its own", async () => {
    const res = await stack.call("POST", "/v2/tasks", {
      key: alice.key,
      body: { prompt: "secret plan", pool: "main", namespace: "iso" },
    });
    const uuid = res.json?.data.uuid as string;
    const runId = res.json?.data.run_id as string;
    expect((await stack.call("GET", `/v2/tasks/${uuid}`, { key: alice.key })).json?.data.tenant).toBe(
      alice.id,
    );

    for (const [method, path] of [
      ["GET", `/v2/tasks/${uuid}`],
      ["GET", `/v2/tasks/${uuid}/status`],
      ["GET", `/v2/tasks/${uuid}/logs`],
      ["GET", `/v2/tasks/${uuid}/files`],
      ["GET", `/v2/tasks/${uuid}/files/a.txt`],
      ["POST", `/v2/tasks/${uuid}/tags`],
      ["DELETE", `/v2/tasks/${uuid}`],
    ] as const) {
      const answer = await stack.call(method, path, {
        key: bob.key,
        body: method === "POST" ? { tags: {} } : undefined,
      });
      expect([method, path, answer.status, answer.json?.code]).toEqual([method, path, 404, "1002"]);
    }
    for (const [method, path] of [
      ["GET", `/v2/instances/${runId}`],
      ["GET", `/v2/instances/${runId}/status`],
      ["GET", `/v2/instances/${runId}/logs`],
      ["POST", `/v2/instances/${runId}/tags`],
    ] as const) {
      const answer = await stack.call(method, path, {
        key: bob.key,
        body: method === "POST" ? { tags: {} } : undefined,
      });
      expect([method, path, answer.status, answer.json?.code]).toEqual([method, path, 404, "1003"]);
    }
    const bobsList = await stack.call("GET", "/v2/tasks?namespace=iso", { key: bob.key });
    expect(bobsList.json?.data).toMatchObject({ total: 0, tasks: [] });
    const bobsRuns = await stack.call("GET", `/v2/instances?task_id=${uuid}`, { key: bob.key });
    expect(bobsRuns.json?.data).toMatchObject({ total: 0, instances: [] });
    const alicesRuns = await stack.call("GET", `/v2/instances?task_id=${uuid}`, { key: alice.key });
    expect(alicesRuns.json?.data.instances.map((r: { run_id: string }) => r.run_id)).toEqual([runId]);
    expect(await stack.call("GET", `/v2/tasks/${uuid}/status`, { key: alice.key })).toMatchObject({
      status: 200,
    });
    await stack.call("DELETE", `/v2/tasks/${uuid}`, { key: alice.key });
  });
});

describe("the route table", () => {
  it("is what the local server serves: each route answers, and a method no route of its path has is 1012", async () => {
    // Without a key each route answers 1008, the public ones answer: the server knows them all, and runs none.
    for (const route of ROUTES) {
      const path = route.path.replace(/\{[^}]+\}/g, "x");
      const served = await stack.call(route.method, path, { key: null });
      const code = route.public && route.raw ? String(served.status) : served.json?.code;
      expect([route.method, route.path, code]).toEqual([
        route.method,
        route.path,
        route.public ? (route.raw ? "200" : "0") : "1008",
      ]);
      const unused = ["PATCH", "PUT", "DELETE", "POST"].find(
        (method) => !ROUTES.some((r) => r.path === route.path && r.method === method),
      ) as string;
      const other = await stack.call(unused, path);
      expect([route.path, unused, other.status, other.json?.code]).toEqual([route.path, unused, 404, "1012"]);
    }
  });
});

describe("not found", () => {
  it("answers unknown routes and ids with 404 envelopes and codes", async () => {
    const cases: [string, string, string][] = [
      ["GET", "/v2/nothing-here", "1012"],
      ["PUT", "/v2/tasks", "1012"],
      ["GET", "/v2/tasks/00000000-0000-4000-8000-000000000000", "1002"],
      ["GET", "/v2/tasks/not-a-uuid/status", "1002"],
      ["GET", "/v2/instances/00000000-0000-4000-8000-000000000000-r1", "1003"],
      ["GET", "/v2/instances/garbage", "1003"],
      ["POST", "/v2/tenants/t_missing/keys", "1013"],
    ];
    for (const [method, path, code] of cases) {
      const res = await stack.call(method, path);
      expect([method, path, res.status, res.json?.code, res.json?.success]).toEqual([
        method,
        path,
        404,
        code,
        false,
      ]);
    }
    const pool = await stack.call("POST", "/v2/tasks", { body: { prompt: "x", pool: "nope" } });
    expect([pool.status, pool.json?.code]).toEqual([404, "1004"]);
  });
});

describe("field errors", () => {
  it("answers every bad field with 400, code 1001, naming the field", async () => {
    const cases: [unknown, string][] = [
      [{ tool: "claude" }, "prompt"],
      [{ prompt: "x" }, "tool"],
      [{ prompt: 42, tool: "claude" }, "prompt"],
      [{ prompt: "x", tool: "bard" }, "tool"],
      [{ prompt: "x", tool: "claude", priority: 11 }, "priority"],
      [{ prompt: "x", tool: "claude", prior: "high" }, "prior"],
      [{ prompt: "x", tool: "claude", timeout: "soon" }, "timeout"],
      [{ prompt: "x", tool: "claude", max_attempts: 0 }, "max_attempts"],
      [{ prompt: "x", tool: "claude", tags: "nokv" }, "tags"],
      [{ prompt: "x", tool: "claude", tags: { k: 1 } }, "tags.k"],
      [{ prompt: "x", tool: "claude", name: "n".repeat(300) }, "name"],
      [
        { prompt: "x", tool: "claude", input_files: [{ name: "../etc/passwd", content: "" }] },
        "input_files.0.name",
      ],
      [{ prompt: "x", tool: "claude", input_files: [{ name: "/abs", content: "" }] }, "input_files.0.name"],
      [{ prompt: "x", tool: "claude", output_files: ["a/../../b"] }, "output_files.0"],
      [{ prompt: "x", tool: "claude", callback: "not a url" }, "callback"],
      [{ prompt: "x", tool: "claude", scheduled_at: "tomorrow" }, "scheduled_at"],
      [{ prompt: "x", tool: "claude", pool: "Bad Pool" }, "pool"],
      [{ prompt: "x", tool: "claude", surprise: true }, "surprise"],
      [[1, 2], "body"],
    ];
    for (const [body, field] of cases) {
      const res = await stack.call("POST", "/v2/tasks", { body });
      expect([JSON.stringify(body).slice(0, 60), res.status, res.json?.code]).toEqual([
        JSON.stringify(body).slice(0, 60),
        400,
        "1001",
      ]);
      expect(res.json?.message).toContain(field);
    }
  });

  it("answers a submission a pool's policy refuses with 400, code 1001, naming the field and the pool", async () => {
    const fits = { pool: "guarded", prompt: "train it", namespace: "ml", tags: { team: "ml" }, timeout: 600 };
    const submit = (body: object) => stack.call("POST", "/v2/tasks", { key: alice.key, body });
    for (const [change, field] of [
      // Each field's rule is in test/unit/policies.test.ts; here, how the API answers.
      [{ tags: { team: "web" } }, "tags.team"],
      [{ priority: 6 }, "priority"],
      [{ prompt: "x".repeat(65) }, "prompt"],
    ] as const) {
      const res = await submit({ ...fits, ...change });
      expect([res.status, res.json?.code], JSON.stringify(change)).toEqual([400, "1001"]);
      expect(res.json?.message).toMatch(new RegExp(`^${field}: pool guarded accepts `));
    }
    // A task that names only the tool is refused by the tool's only pool the same way.
    const routed = await submit({ tool: "codex", prompt: "train it", namespace: "web" });
    expect([routed.status, routed.json?.message]).toEqual([
      400,
      "namespace: pool guarded accepts namespaces ml",
    ]);
    expect((await submit(fits)).status).toBe(201);
    expect((await submit({ ...fits, pool: undefined, tool: "codex" })).status).toBe(201);
    for (const path of ["/v2/policies", "/v2/policys"]) {
      const policies = (await stack.call("GET", path, { key: bob.key })).json?.data;
      expect(policies).toEqual([
        { pool: "main", tool: "claude", policy: null },
        { pool: "guarded", tool: "codex", policy: GUARD },
      ]);
    }
  });

  it("refuses malformed JSON and prototype-polluting keys", async () => {
    const malformed = await stack.call("POST", "/v2/tasks", { raw: "{not json" });
    expect([malformed.status, malformed.json?.code, malformed.json?.message]).toEqual([
      400,
      "1001",
      "body: is not valid JSON",
    ]);
    const polluted = await stack.call("POST", "/v2/tasks", {
      raw: '{"prompt":"x","tool":"claude","__proto__":{"admin":true}}',
    });
    expect([polluted.status, polluted.json?.code]).toEqual([400, "1001"]);
    expect(polluted.json?.message).toContain("__proto__");
  });

  it("refuses bodies that are too large with 413, code 1011", async () => {
    const res = await stack.call("POST", "/v2/tasks", {
      body: { prompt: "x".repeat(600_000), tool: "claude" },
    });
    expect([res.status, res.json?.code]).toEqual([413, "1011"]);
  });

  it("validates list queries", async () => {
    const res = await stack.call("GET", "/v2/tasks?status=sleeping");
    expect([res.status, res.json?.code]).toEqual([400, "1001"]);
    expect(res.json?.message).toContain("status");
    const size = await stack.call("GET", "/v2/instances?size=1000");
    expect([size.status, size.json?.message?.startsWith("size")]).toEqual([400, true]);
  });
});
