/** Tenants against each other and against their limits, over HTTP on one local stack: isolation, scopes, rate limits, quotas. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROUTES } from "../../functions/_shared/routes.ts";
import { startTestStack, type TestStack } from "../support/stack.ts";

const CONFIG = `
pools:
  - { name: main, tool: claude, account: main, max_concurrency: 5 }
  - { name: held, tool: codex, account: main, max_concurrency: 1 }
`;

let stack: TestStack;
interface Tenant {
  id: string;
  key: string;
  keyId: string;
}

async function newTenant(name: string, limits: object = {}): Promise<Tenant> {
  const res = await stack.call("POST", "/v2/tenants", { body: { name, ...limits } });
  expect(res.status, res.text).toBe(201);
  const { tenant, api_key, key_id } = res.json?.data ?? {};
  return { id: tenant.id, key: api_key, keyId: key_id };
}

async function submit(key: string, body: object = {}) {
  const res = await stack.call("POST", "/v2/tasks", { key, body: { pool: "main", prompt: "p", ...body } });
  expect(res.status, res.text).toBe(201);
  return res.json?.data as { uuid: string; run_id: string | null; status: string };
}

/** Runs `fn` so that it starts at least `ms` before the current rate window (one minute) ends. */
async function earlyInWindow<T>(ms: number, fn: () => Promise<T>): Promise<T> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < ms) await new Promise((done) => setTimeout(done, left + 50));
  return fn();
}

const secondsToNextMinute = () => Math.ceil((60_000 - (Date.now() % 60_000)) / 1000);

beforeAll(async () => {
  stack = await startTestStack(CONFIG, { workers: false });
});
afterAll(async () => {
  await stack?.stop();
});

/** Alice's template, named as `concrete` names a `{name}`. */
const TEMPLATE = { name: "main", type: "prompt", schema: 'prompt: "alice\'s secret plan"' };

describe("tenant isolation on every route with an id", () => {
  let alice: Tenant;
  let bob: Tenant;
  let task: { uuid: string; run_id: string | null };
  let workflow: { id: string; taskId: string };

  beforeAll(async () => {
    alice = await newTenant("alice");
    bob = await newTenant("bob");
    task = await submit(alice.key, {
      input_files: [{ name: "docs/plan.md", content: "alice's plan" }],
      idempotency_key: "shared-key",
      concurrency_key: "shared-account",
    });
    expect(task.run_id).toBeTruthy();
    const template = await stack.call("POST", "/v2/templates", { key: alice.key, body: TEMPLATE });
    expect(template.status).toBe(201);
    const created = await stack.call("POST", "/v2/workflows", {
      key: alice.key,
      body: {
        name: "alice's secret plan",
        tasks: [
          { name: "a", task: { pool: "main", prompt: "p" } },
          { name: "b", task: { pool: "main", prompt: "p" } },
        ],
      },
    });
    expect(created.status, created.text).toBe(201);
    workflow = { id: created.json?.data.workflow_id, taskId: created.json?.data.tasks[1].task_id };
  });

  const concrete = (path: string) =>
    (path.startsWith("/v2/workflows/") ? path.replace("{id}", workflow.id) : path)
      .replace("{task_id}", workflow.taskId)
      .replace(/\/edges$/, "/edges?source=a&target=b")
      .replace("{uuid}", task.uuid)
      .replace("{run_id}", task.run_id ?? "")
      .replace("{path+}", "docs/plan.md")
      .replace("{id}", alice.id)
      .replace("{key_id}", alice.keyId)
      .replace("{name}", "main")
      .replace("{account}", "shared-account");
  const bodyOf = (route: { method: string; path: string }) =>
    route.path.endsWith("/tags")
      ? { tags: { x: "y" } }
      : route.method === "POST" && route.path.endsWith("/{id}/tasks")
        ? { name: "c", task: { pool: "main", prompt: "p" } }
        : route.method === "POST" && route.path.endsWith("/{id}/edges")
          ? { source: "a", target: "b", on: "always" }
          : route.path.endsWith("/reorder")
            ? { priority_offset: 60 }
            : route.method === "PUT" && route.path.startsWith("/v2/templates/")
              ? TEMPLATE
              : undefined;

  it("answers another tenant's task and run ids with 404 on every route, and admin routes with 403", async () => {
    const withIds = ROUTES.filter((route) => route.path.includes("{"));
    expect(withIds.length).toBeGreaterThanOrEqual(20);
    for (const route of withIds) {
      const path = concrete(route.path);
      const res = await stack.call(route.method, path, { key: bob.key, body: bodyOf(route) });
      // The pools' and queues' aggregates are every key's (test/e2e/queues.test.ts shows no task leaks);
      // an account is a name within each tenant: bob's of that name has no tasks.
      const listsOwn = route.group === "pools" || route.path.startsWith("/v2/accounts/");
      const expected =
        route.scope === "admin" || route.scope === "worker"
          ? [403, "1009"]
          : listsOwn
            ? [200, "0"]
            : route.path.startsWith("/v2/instances")
              ? [404, "1003"]
              : route.group === "templates"
                ? [404, "1006"]
                : route.group === "workflows"
                  ? [404, "1015"]
                  : route.group === "tenants"
                    ? [404, "1013"]
                    : [404, "1002"];
      expect([route.method, route.path, res.status, res.json?.code]).toEqual([
        route.method,
        route.path,
        ...expected,
      ]);
      // The answer says nothing of what alice's task holds (an aggregate not even that it exists).
      expect(res.text).not.toMatch(/alice|docs\/plan|shared-key/);
      if (listsOwn) expect(res.text).not.toContain(task.uuid);
      if (route.path.startsWith("/v2/accounts/")) expect(res.json?.data.total).toBe(0);
    }
    // Alice herself reaches the same task and run.
    for (const path of [
      `/v2/tasks/${task.uuid}`,
      `/v2/instances/${task.run_id}`,
      `/v2/tasks/${task.uuid}/files/docs/plan.md`,
    ]) {
      expect((await stack.call("GET", path, { key: alice.key })).status).toBe(200);
    }
    const account = await stack.call("GET", "/v2/accounts/shared-account/tasks", { key: alice.key });
    expect(account.json?.data.tasks.map((t: { uuid: string }) => t.uuid)).toEqual([task.uuid]);
  });

  it("lets no query name another tenant: ?tenant=, ?task_id=, ?run_id= and idempotency keys stay within the caller's", async () => {
    const list = await stack.call("GET", `/v2/tasks?tenant=${alice.id}`, { key: bob.key });
    expect(list.json?.data).toMatchObject({ total: 0, tasks: [] });
    const account = await stack.call("GET", `/v2/accounts/shared-account/tasks?tenant=${alice.id}`, {
      key: bob.key,
    });
    expect(account.json?.data).toMatchObject({ total: 0, tasks: [] });
    const runs = await stack.call("GET", `/v2/instances?task_id=${task.uuid}&tenant=${alice.id}`, {
      key: bob.key,
    });
    expect(runs.json?.data).toMatchObject({ total: 0, instances: [] });

    const own = await submit(bob.key);
    const foreignRun = await stack.call("GET", `/v2/tasks/${own.uuid}/logs?run_id=${task.run_id}`, {
      key: bob.key,
    });
    expect([foreignRun.status, foreignRun.json?.code]).toEqual([404, "1003"]);

    // The same idempotency key and body in another tenant is another task, not alice's.
    const body = {
      pool: "main",
      prompt: "p",
      input_files: [{ name: "docs/plan.md", content: "alice's plan" }],
      idempotency_key: "shared-key",
      concurrency_key: "shared-account",
    };
    const bobs = await stack.call("POST", "/v2/tasks", { key: bob.key, body });
    expect(bobs.status).toBe(201);
    expect(bobs.json?.data.uuid).not.toBe(task.uuid);
    const replay = await stack.call("POST", "/v2/tasks", { key: alice.key, body });
    expect([replay.status, replay.json?.data.uuid]).toEqual([200, task.uuid]);
  });

  it("refuses to revoke a key through another tenant's id", async () => {
    const res = await stack.call("DELETE", `/v2/tenants/${bob.id}/keys/${alice.keyId}`);
    expect([res.status, res.json?.code]).toEqual([404, "1013"]);
    expect((await stack.call("GET", "/v2/tasks", { key: alice.key })).status).toBe(200);
  });
});

describe("scopes", () => {
  it("holds a read-only key to reading and a write-only key to writing (403, code 1009)", async () => {
    const carol = await newTenant("carol");
    const task = await submit(carol.key);
    const keyWith = async (scopes: string[]) => {
      const res = await stack.call("POST", `/v2/tenants/${carol.id}/keys`, { body: { scopes } });
      expect(res.json?.data.scopes).toEqual(scopes);
      return res.json?.data.api_key as string;
    };
    const reader = await keyWith(["tasks:read"]);
    const writer = await keyWith(["tasks:write"]);

    const reads: [string, string][] = [
      ["GET", "/v2/tasks"],
      ["GET", `/v2/tasks/${task.uuid}`],
      ["GET", `/v2/tasks/${task.uuid}/status`],
      ["GET", `/v2/tasks/${task.uuid}/files`],
      ["GET", "/v2/instances"],
    ];
    const writes: [string, string, object?][] = [
      ["POST", "/v2/tasks", { pool: "main", prompt: "p" }],
      ["POST", `/v2/tasks/${task.uuid}/tags`, { tags: { a: "b" } }],
      ["POST", `/v2/tasks/${task.uuid}/pause`],
      ["DELETE", `/v2/tasks/${task.uuid}`],
    ];
    for (const [method, path] of reads) {
      expect([method, path, (await stack.call(method, path, { key: reader })).status]).toEqual([
        method,
        path,
        200,
      ]);
      const denied = await stack.call(method, path, { key: writer });
      expect([method, path, denied.status, denied.json?.code]).toEqual([method, path, 403, "1009"]);
    }
    for (const [method, path, body] of writes) {
      const denied = await stack.call(method, path, { key: reader, body });
      expect([method, path, denied.status, denied.json?.code]).toEqual([method, path, 403, "1009"]);
      expect(denied.json?.message).toContain("tasks:write");
    }
    // A scope is checked before the task is looked up: a foreign or absent uuid is a 403 too, not a 404.
    const absent = await stack.call("DELETE", "/v2/tasks/00000000-0000-4000-8000-000000000000", {
      key: reader,
    });
    expect(absent.status).toBe(403);
    expect(
      (await stack.call("POST", `/v2/tasks/${task.uuid}/tags`, { key: writer, body: { tags: { a: "b" } } }))
        .status,
    ).toBe(200);
    expect((await stack.call("DELETE", `/v2/tasks/${task.uuid}`, { key: writer })).status).toBe(200);

    for (const [method, path] of [
      ["GET", "/v2/tenants"],
      ["POST", `/v2/tenants/${carol.id}/keys`],
      ["POST", "/v2/pools/main/pause"],
      ["GET", "/v2/dispatcher/status"],
      ["GET", "/v2/workers"],
    ] as const) {
      const denied = await stack.call(method, path, { key: carol.key });
      expect([method, path, denied.status, denied.json?.code]).toEqual([method, path, 403, "1009"]);
    }
    const admin = await stack.call("POST", `/v2/tenants/${carol.id}/keys`, { body: { scopes: ["admin"] } });
    expect([admin.status, admin.json?.code]).toEqual([400, "1001"]);
  });
});

describe("rate limit", () => {
  it("answers the 101st request of a minute with 429, code 1010 and Retry-After; other callers go on", async () => {
    const dave = await newTenant("dave");
    const other = await newTenant("other");
    await earlyInWindow(20_000, async () => {
      const window = Math.floor(Date.now() / 60_000);
      const statuses: number[] = [];
      for (let batch = 0; batch < 10; batch++) {
        const answers = await Promise.all(
          Array.from({ length: 10 }, () => stack.call("GET", "/v2/tasks", { key: dave.key })),
        );
        statuses.push(...answers.map((a) => a.status));
      }
      expect(statuses.filter((s) => s === 200)).toHaveLength(100);
      const refused = await stack.call("GET", "/v2/tasks", { key: dave.key });
      const expected = secondsToNextMinute();
      expect(Math.floor(Date.now() / 60_000), "the 101 requests fell in one window").toBe(window);
      expect([refused.status, refused.json?.code, refused.json?.success]).toEqual([429, "1010", false]);
      const retryAfter = Number(refused.headers.get("retry-after"));
      expect(retryAfter).toBeGreaterThanOrEqual(expected - 1);
      expect(retryAfter).toBeLessThanOrEqual(expected + 1);
      expect(refused.json?.message).toContain("100 requests per minute");
      // Every route of the tenant is refused, its other keys too; the admin and other tenants are not.
      const rotated = (await stack.call("POST", `/v2/tenants/${dave.id}/keys`)).json?.data.api_key as string;
      expect(
        (await stack.call("POST", "/v2/tasks", { key: rotated, body: { pool: "main", prompt: "p" } })).status,
      ).toBe(429);
      expect((await stack.call("GET", "/v2/tasks")).status).toBe(200);
      expect((await stack.call("GET", "/v2/tasks", { key: other.key })).status).toBe(200);
    });
  });

  it("follows the tenant's own rate_limit_per_minute", async () => {
    const erin = await newTenant("erin", { rate_limit_per_minute: 5 });
    await earlyInWindow(10_000, async () => {
      for (let i = 0; i < 5; i++)
        expect((await stack.call("GET", "/v2/instances", { key: erin.key })).status).toBe(200);
      const refused = await stack.call("GET", "/v2/instances", { key: erin.key });
      expect([refused.status, refused.json?.code]).toEqual([429, "1010"]);
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    });
  });
});

describe("quotas", () => {
  it("refuses submissions past max_submissions_per_minute (429, 1010, Retry-After); replays still answer", async () => {
    const frank = await newTenant("frank", { max_submissions_per_minute: 3 });
    await earlyInWindow(15_000, async () => {
      const first = await submit(frank.key, { idempotency_key: "once" });
      await submit(frank.key);
      await submit(frank.key);
      const refused = await stack.call("POST", "/v2/tasks", {
        key: frank.key,
        body: { pool: "main", prompt: "p" },
      });
      expect([refused.status, refused.json?.code]).toEqual([429, "1010"]);
      expect(refused.json?.message).toMatch(/^max_submissions_per_minute: .*3 submissions per minute/);
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
      const replay = await stack.call("POST", "/v2/tasks", {
        key: frank.key,
        body: { pool: "main", prompt: "p", idempotency_key: "once" },
      });
      expect([replay.status, replay.json?.data.uuid]).toEqual([200, first.uuid]);
      // Reading is not submitting.
      expect((await stack.call("GET", "/v2/tasks", { key: frank.key })).json?.data.total).toBe(3);
    });
  });

  it("refuses a submission past max_queued_tasks (409, 1005, naming the quota) until queued work leaves", async () => {
    const gina = await newTenant("gina", { max_queued_tasks: 2 });
    await stack.call("POST", "/v2/pools/held/pause");
    try {
      const queued = [await submit(gina.key, { pool: "held" }), await submit(gina.key, { pool: "held" })];
      expect(queued.map((t) => t.status)).toEqual(["queued", "queued"]);
      const refused = await stack.call("POST", "/v2/tasks", {
        key: gina.key,
        body: { pool: "held", prompt: "p" },
      });
      expect([refused.status, refused.json?.code]).toEqual([409, "1005"]);
      expect(refused.json?.message).toMatch(
        /^max_queued_tasks: the tenant's quota of 2 queued tasks is reached/,
      );
      expect((await stack.call("DELETE", `/v2/tasks/${queued[0]?.uuid}`, { key: gina.key })).status).toBe(
        200,
      );
      expect((await submit(gina.key, { pool: "held" })).status).toBe("queued");
      // The admin's own submissions are not held to a tenant's quota.
      expect((await stack.call("POST", "/v2/tasks", { body: { pool: "held", prompt: "p" } })).status).toBe(
        201,
      );
    } finally {
      await stack.call("POST", "/v2/pools/held/resume");
    }
  });

  it("validates quotas at tenant creation and reports them", async () => {
    const bad = await stack.call("POST", "/v2/tenants", { body: { name: "h", max_queued_tasks: -1 } });
    expect([bad.status, bad.json?.code]).toEqual([400, "1001"]);
    expect(bad.json?.message).toMatch(/^max_queued_tasks/);
    const res = await stack.call("POST", "/v2/tenants", {
      body: { name: "h", max_submissions_per_minute: 7 },
    });
    expect(res.json?.data.tenant).toMatchObject({
      rate_limit_per_minute: 100,
      max_queued_tasks: 1000,
      max_submissions_per_minute: 7,
    });
    const listed = (await stack.call("GET", "/v2/tenants")).json?.data.find(
      (t: { id: string }) => t.id === res.json?.data.tenant.id,
    );
    expect(listed).toMatchObject({ max_submissions_per_minute: 7 });
  });
});

describe("Unicode and control characters in names and tags", () => {
  it("keeps any printable Unicode exactly, and refuses control, bidi-override and unpaired characters", async () => {
    const name = "Ünïcødé 株式会社 😀 e\u0301 👩‍💻";
    const tags = { équipe: "données", 键: "值", emoji: "🚀" };
    const created = await submit(stack.adminKey, { name, tags, namespace: "ñs" });
    const task = (await stack.call("GET", `/v2/tasks/${created.uuid}`)).json?.data;
    expect([task.name, task.tags, task.namespace]).toEqual([name, tags, "ñs"]);
    const found = await stack.call(
      "GET",
      `/v2/tasks?namespace=${encodeURIComponent("ñs")}&tag=${encodeURIComponent("键=值")}`,
    );
    expect(found.json?.data.tasks.map((t: { uuid: string }) => t.uuid)).toEqual([created.uuid]);

    const refused: [object, string][] = [
      [{ name: "a\u0000b" }, "name"],
      [{ name: "line\nbreak" }, "name"],
      [{ name: "invoice\u202efdp.exe" }, "name"],
      [{ namespace: "iso\u2066late" }, "namespace"],
      [{ tags: { "k\u0007": "v" } }, "tags.k\u0007"],
      [{ tags: { k: "v\u009b" } }, "tags.k"],
      [{ tags: "__proto__=x" }, "tags"],
      [{ prompt: "nul \u0000 byte" }, "prompt"],
    ];
    for (const [fields, field] of refused) {
      const res = await stack.call("POST", "/v2/tasks", { body: { pool: "main", prompt: "p", ...fields } });
      expect([JSON.stringify(fields), res.status, res.json?.code]).toEqual([
        JSON.stringify(fields),
        400,
        "1001",
      ]);
      expect(res.json?.message.startsWith(`${field}:`), res.json?.message).toBe(true);
    }
    const tenant = await stack.call("POST", "/v2/tenants", { body: { name: "evil\u202Etxt" } });
    expect([tenant.status, tenant.json?.message]).toEqual([400, expect.stringMatching(/^name:/)]);
  });
});
