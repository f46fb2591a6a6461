/** The API handlers' guards on in-memory fakes with a manual clock: rate limits, quotas, key caches, errors. */
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from "aws-lambda";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Deps } from "../../core/deps.ts";
import { rateWindow } from "../../core/limits.ts";
import { apiHandler, logger } from "../../functions/_shared/http.ts";
import { matchPath, ROUTES, type Route } from "../../functions/_shared/routes.ts";
import { memoryDeps } from "../support/memory-deps.ts";

const CONFIG = `
pools:
  - { name: main, tool: claude, account: a, max_concurrency: 1 }
  - { name: held, tool: codex, account: a, max_concurrency: 1 }
`;

const context = {
  functionName: "switchyard-test",
  functionVersion: "$LATEST",
  awsRequestId: "req-1",
  invokedFunctionArn: "arn:aws:lambda:local:000000000000:function:switchyard-test",
  memoryLimitInMB: "256",
  getRemainingTimeInMillis: () => 30_000,
} as Context;

interface Answer {
  status: number;
  headers: Record<string, string>;
  // biome-ignore lint/suspicious/noExplicitAny: tests read answers field by field.
  json: any;
  body: string;
}

/** One API "container": the route groups' handlers over one Deps object, as API Gateway would call them. */
function container(deps: Deps, extra: Route[] = []) {
  const routes = [...ROUTES, ...extra];
  const handler = apiHandler(routes, async () => deps);
  return async (
    method: string,
    path: string,
    options: { key?: string | null; body?: unknown; raw?: string; query?: Record<string, string> } = {},
  ): Promise<Answer> => {
    const [pathOnly = path] = path.split("?");
    const route = routes.find((r) => r.method === method && matchPath(r.path, pathOnly));
    const key = options.key === undefined ? deps.adminKey : options.key;
    const text = options.raw ?? (options.body === undefined ? null : JSON.stringify(options.body));
    const event = {
      resource: route?.path ?? pathOnly,
      path: pathOnly,
      httpMethod: method,
      headers: key === null ? {} : { authorization: `Bearer ${key}` },
      queryStringParameters: options.query ?? null,
      pathParameters: route ? (matchPath(route.path, pathOnly) ?? null) : null,
      body: text,
      isBase64Encoded: false,
    } as unknown as APIGatewayProxyEvent;
    const result = (await handler(event, context)) as APIGatewayProxyResult;
    const headers = Object.fromEntries(
      Object.entries(result.headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)]),
    );
    const json = headers["content-type"]?.includes("json") ? JSON.parse(result.body) : undefined;
    return { status: result.statusCode, headers, json, body: result.body };
  };
}

let deps: ReturnType<typeof memoryDeps>["deps"];
let clock: ReturnType<typeof memoryDeps>["clock"];
let call: ReturnType<typeof container>;

async function newTenant(fields: object = {}) {
  const res = await call("POST", "/v2/tenants", { body: { name: "acme", ...fields } });
  expect(res.status, res.body).toBe(201);
  return { id: res.json.data.tenant.id as string, key: res.json.data.api_key as string };
}

beforeEach(() => {
  ({ deps, clock } = memoryDeps(CONFIG));
  // Each test gets fresh uuids; the clock starts at 2026-01-01T00:00:00Z, a window's start.
  let n = 0;
  deps.ids = { uuid: () => `${String(++n).padStart(8, "0")}-0000-4000-8000-${String(n).padStart(12, "0")}` };
  call = container(deps);
});
afterEach(() => {
  vi.restoreAllMocks();
});

describe("rate limit per tenant", () => {
  it("refuses the request past the limit with 429, code 1010 and the seconds to the next window", async () => {
    const alice = await newTenant({ rate_limit_per_minute: 3 });
    clock.advance(45_500);
    for (let i = 0; i < 3; i++) expect((await call("GET", "/v2/tasks", { key: alice.key })).status).toBe(200);
    const refused = await call("GET", "/v2/tasks", { key: alice.key });
    expect([refused.status, refused.json.code, refused.json.success]).toEqual([429, "1010", false]);
    expect(refused.headers["retry-after"]).toBe("15");
    expect(refused.json.message).toMatch(/3 requests per minute/);
    // The refusal did not count: the next window grants the limit afresh.
    clock.advance(14_500);
    for (let i = 0; i < 3; i++) expect((await call("GET", "/v2/tasks", { key: alice.key })).status).toBe(200);
    expect((await call("GET", "/v2/tasks", { key: alice.key })).status).toBe(429);
  });

  it("counts every request of the tenant, over all its keys, even malformed ones; never the admin's", async () => {
    const bob = await newTenant({ rate_limit_per_minute: 4 });
    const second = (await call("POST", `/v2/tenants/${bob.id}/keys`)).json.data.api_key as string;
    expect((await call("POST", "/v2/tasks", { key: bob.key, raw: "{oops" })).status).toBe(400);
    expect((await call("GET", "/v2/tasks/not-a-uuid", { key: bob.key })).status).toBe(404);
    expect((await call("GET", "/v2/tasks", { key: second })).status).toBe(200);
    expect((await call("GET", "/v2/instances", { key: second })).status).toBe(200);
    expect((await call("GET", "/v2/tasks", { key: bob.key })).status).toBe(429);
    expect((await call("GET", "/v2/tasks", { key: second })).status).toBe(429);
    for (let i = 0; i < 150; i++) expect((await call("GET", "/v2/tasks")).status).toBe(200);
    const other = await newTenant({ rate_limit_per_minute: 1 });
    expect((await call("GET", "/v2/tasks", { key: other.key })).status).toBe(200);
  });

  it("defaults to 100 requests per minute", async () => {
    const carol = await newTenant();
    for (let i = 0; i < 100; i++)
      expect((await call("GET", "/v2/tasks", { key: carol.key })).status).toBe(200);
    expect((await call("GET", "/v2/tasks", { key: carol.key })).headers["retry-after"]).toBe("60");
  });

  it("computes windows on minute boundaries", () => {
    expect(rateWindow(new Date("2026-01-01T10:20:59.001Z"))).toEqual({
      start: "2026-01-01T10:20:00.000Z",
      retryAfterSeconds: 1,
      expiresAt: Date.parse("2026-01-01T10:21:00Z") / 1000 + 300,
    });
    expect(rateWindow(new Date("2026-01-01T10:20:00.000Z")).retryAfterSeconds).toBe(60);
  });
});

describe("key caching and revocation", () => {
  it("a key revoked in another container stops working here within a minute", async () => {
    const dave = await newTenant();
    const elsewhere = container({ ...deps });
    expect((await call("GET", "/v2/tasks", { key: dave.key })).status).toBe(200);
    const keys = await elsewhere("GET", `/v2/tenants/${dave.id}/keys`);
    const revoked = await elsewhere("DELETE", `/v2/tenants/${dave.id}/keys/${keys.json.data[0].key_id}`);
    expect(revoked.status).toBe(200);
    expect((await elsewhere("GET", "/v2/tasks", { key: dave.key })).status).toBe(401);
    clock.advance(59_000);
    expect((await call("GET", "/v2/tasks", { key: dave.key })).status).toBe(200);
    clock.advance(1_000);
    const refused = await call("GET", "/v2/tasks", { key: dave.key });
    expect([refused.status, refused.json.code]).toEqual([401, "1008"]);
  });

  it("reads a tenant's key and record once a minute, not per request", async () => {
    const erin = await newTenant();
    const findKey = vi.spyOn(deps.tenants, "findApiKey");
    const getTenant = vi.spyOn(deps.tenants, "getTenant");
    for (let i = 0; i < 5; i++) await call("GET", "/v2/tasks", { key: erin.key });
    expect([findKey.mock.calls.length, getTenant.mock.calls.length]).toEqual([1, 1]);
    clock.advance(60_000);
    await call("GET", "/v2/tasks", { key: erin.key });
    expect([findKey.mock.calls.length, getTenant.mock.calls.length]).toEqual([2, 2]);
  });
});

describe("scopes", () => {
  it("gives keys narrower scopes; the admin scope is the admin key's alone", async () => {
    const frank = await newTenant();
    const reader = await call("POST", `/v2/tenants/${frank.id}/keys`, { body: { scopes: ["tasks:read"] } });
    expect(reader.json.data.scopes).toEqual(["tasks:read"]);
    const key = reader.json.data.api_key as string;
    expect((await call("GET", "/v2/tasks", { key })).status).toBe(200);
    const denied = await call("POST", "/v2/tasks", { key, body: { tool: "claude", prompt: "x" } });
    expect([denied.status, denied.json.code]).toEqual([403, "1009"]);
    expect(denied.json.message).toContain("tasks:write");
    const admin = await call("POST", `/v2/tenants/${frank.id}/keys`, { body: { scopes: ["admin"] } });
    expect([admin.status, admin.json.code, admin.json.message]).toEqual([
      400,
      "1001",
      expect.stringMatching(/^scopes\.0/),
    ]);
  });
});

describe("the route table's scopes", () => {
  it("refuses every route to a key without the route's scope (403, 1009), before reading what it sent", async () => {
    const frank = await newTenant();
    const reader = await call("POST", `/v2/tenants/${frank.id}/keys`, { body: { scopes: ["tasks:read"] } });
    const keys = { "tasks:read": reader.json.data.api_key as string, "tasks:write": frank.key };
    const concrete = (path: string) => path.replace(/\{[^}]+\}/g, "x");
    for (const route of ROUTES.filter((r) => r.scope && r.scope !== "tasks:read")) {
      // A tenant's full key lacks admin; a read-only key lacks tasks:write.
      const key = route.scope === "admin" ? keys["tasks:write"] : keys["tasks:read"];
      const res = await call(route.method, concrete(route.path), { key, raw: "{not json" });
      expect([route.path, res.status, res.json.code]).toEqual([route.path, 403, "1009"]);
      expect(res.json.message).toContain(route.scope);
    }
    for (const route of ROUTES.filter((r) => r.scope === "tasks:read")) {
      const res = await call(route.method, concrete(route.path), { key: keys["tasks:read"] });
      expect([route.path, res.status]).not.toEqual([route.path, 403]);
    }
  });
});

describe("submission quotas", () => {
  it("refuses submissions past max_submissions_per_minute with 429 and Retry-After; replays pass", async () => {
    const gina = await newTenant({ max_submissions_per_minute: 2 });
    const submit = (body: object) =>
      call("POST", "/v2/tasks", { key: gina.key, body: { tool: "claude", prompt: "p", ...body } });
    expect((await submit({ idempotency_key: "a" })).status).toBe(201);
    expect((await submit({})).status).toBe(201);
    clock.advance(20_000);
    const refused = await submit({});
    expect([refused.status, refused.json.code, refused.headers["retry-after"]]).toEqual([429, "1010", "40"]);
    expect(refused.json.message).toMatch(/^max_submissions_per_minute/);
    expect((await submit({ idempotency_key: "a" })).status).toBe(200);
    expect((await submit({ prompt: "" })).status).toBe(400);
    clock.advance(40_000);
    expect((await submit({})).status).toBe(201);
  });

  it("refuses a submission past max_queued_tasks with 409, code 1005, naming the quota", async () => {
    const hank = await newTenant({ max_queued_tasks: 2 });
    const submit = () => call("POST", "/v2/tasks", { key: hank.key, body: { pool: "held", prompt: "p" } });
    // The pool's one slot takes the first; two more wait queued.
    const uuids = [];
    for (let i = 0; i < 3; i++) {
      const res = await submit();
      expect(res.status).toBe(201);
      uuids.push(res.json.data.uuid);
    }
    const refused = await submit();
    expect([refused.status, refused.json.code]).toEqual([409, "1005"]);
    expect(refused.json.message).toMatch(
      /^max_queued_tasks: the tenant's quota of 2 queued tasks is reached/,
    );
    await call("DELETE", `/v2/tasks/${uuids[2]}`, { key: hank.key });
    expect((await submit()).status).toBe(201);
    // The admin is not held to any tenant's quota.
    expect((await call("POST", "/v2/tasks", { body: { pool: "held", prompt: "p" } })).status).toBe(201);
  });

  it("validates the limits at tenant creation", async () => {
    for (const [field, value] of [
      ["max_queued_tasks", 0],
      ["max_submissions_per_minute", "many"],
      ["rate_limit_per_minute", 1.5],
    ] as const) {
      const res = await call("POST", "/v2/tenants", { body: { name: "x", [field]: value } });
      expect([res.status, res.json.code, res.json.message.split(":")[0]]).toEqual([400, "1001", field]);
    }
    const created = await call("POST", "/v2/tenants", { body: { name: "x", max_queued_tasks: "5" } });
    expect(created.json.data.tenant).toMatchObject({
      rate_limit_per_minute: 100,
      max_queued_tasks: 5,
      max_submissions_per_minute: 60,
    });
  });
});

describe("hostile input reaching the handlers", () => {
  it("answers an unexpected error with 500, code 2001 and nothing of its internals", async () => {
    const logged = vi.spyOn(logger, "error").mockImplementation(() => undefined);
    const boom = container(deps, [
      {
        method: "GET",
        path: "/v2/boom",
        summary: "Fail",
        group: "health",
        handler: async () => {
          throw new TypeError(
            "Cannot read properties of undefined (reading 'pk') in table sy-1234 at /app/core/x.ts:9",
          );
        },
      },
    ]);
    const res = await boom("GET", "/v2/boom");
    expect([res.status, res.json]).toEqual([
      500,
      { code: "2001", message: "internal error", success: false, data: null },
    ]);
    expect(res.body).not.toMatch(/TypeError|sy-1234|\/app\/|at /);
    expect(logged).toHaveBeenCalledOnce();
  });

  it("refuses prototype keys and unpaired surrogates anywhere, naming the field", async () => {
    const cases: [string, string][] = [
      ['{"tool":"claude","prompt":"x","tags":{"a":"b","constructor":"c"}}', "tags.constructor"],
      [
        '{"tool":"claude","prompt":"x","input_files":[{"name":"a","content":"b","__proto__":{}}]}',
        "input_files.0.__proto__",
      ],
      ['{"tool":"claude","prompt":"bad \\ud800 half"}', "prompt"],
      ['{"tool":"claude","prompt":"x","tags":{"\\udfff":"v"}}', "tags.\udfff"],
    ];
    for (const [raw, field] of cases) {
      const res = await call("POST", "/v2/tasks", { raw });
      expect([res.status, res.json.code, res.json.message.startsWith(`${field}:`)]).toEqual([
        400,
        "1001",
        true,
      ]);
    }
    expect(Object.prototype).not.toHaveProperty("admin");
  });

  it("answers deep nesting and huge key lists with a short 400", async () => {
    const deep = await call("POST", "/v2/tasks", { raw: `${"[".repeat(200_000)}${"]".repeat(200_000)}` });
    expect([deep.status, deep.json.code]).toEqual([400, "1001"]);
    const keys = Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, 1]));
    const many = await call("POST", "/v2/tasks", { body: { tool: "claude", prompt: "x", ...keys } });
    expect([many.status, many.json.code]).toEqual([400, "1001"]);
    expect(many.body.length).toBeLessThan(1200);
  });

  it("refuses `..` and absolute paths in a file path with 400, before looking the task up", async () => {
    const getTask = vi.spyOn(deps.tasks, "getTask");
    for (const path of ["a/../../b", "..", "a/%2F..%2F..%2Fb", "%2Fetc%2Fpasswd", "a%5C..%5Cb"]) {
      const res = await call("GET", `/v2/tasks/00000000-0000-4000-8000-000000000001/files/${path}`);
      expect([path, res.status, res.json.code, res.json.message.split(":")[0]]).toEqual([
        path,
        400,
        "1001",
        "path",
      ]);
    }
    expect(getTask).not.toHaveBeenCalled();
  });

  it("never looks up ids that cannot exist", async () => {
    const getTask = vi.spyOn(deps.tasks, "getTask");
    const getTenant = vi.spyOn(deps.tenants, "getTenant");
    const long = "x".repeat(5000);
    expect((await call("GET", `/v2/tasks/${long}`)).json.code).toBe("1002");
    expect((await call("GET", `/v2/tenants/${long}/keys`)).json.code).toBe("1013");
    expect((await call("DELETE", `/v2/tenants/${long}/keys/${long}`)).json.code).toBe("1013");
    expect(getTask).not.toHaveBeenCalled();
    expect(getTenant).not.toHaveBeenCalled();
    const res = await call("GET", `/v2/tasks/${long}`);
    expect(res.json.message.length).toBeLessThan(1100);
  });
});
