import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openApiPath } from "../../functions/_shared/openapi.ts";
import { ROUTES } from "../../functions/_shared/routes.ts";
import { startTestStack, type TestStack } from "../support/stack.ts";

const CONFIG = "pools:\n  - { name: main, tool: claude, account: main, max_concurrency: 2 }\n";

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack(CONFIG, { workers: false });
});
afterAll(async () => {
  await stack?.stop();
});

describe("the API document", () => {
  it("is served without a key at /v2/openapi.json, covering every route", async () => {
    const res = await stack.call("GET", "/v2/openapi.json", { key: null });
    expect([res.status, res.headers.get("content-type")]).toEqual([200, "application/json"]);
    const document = JSON.parse(res.text);
    expect([document.openapi, document.servers]).toEqual(["3.1.0", [{ url: "/" }]]);
    const served = Object.entries(document.paths as Record<string, object>).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(served.sort()).toEqual(ROUTES.map((r) => `${r.method} ${openApiPath(r.path)}`).sort());
  });
});
