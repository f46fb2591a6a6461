import { describe, expect, it } from "vitest";
import { COVERAGE } from "../../cli/schedulerctl.ts";
import { operationIdOf } from "../../functions/_shared/openapi.ts";
import { ROUTES } from "../../functions/_shared/routes.ts";
import { SwitchyardClient, SwitchyardError } from "../../sdk/client.ts";
import { OPERATIONS } from "../../sdk/operations.ts";

describe("the clients against the route table", () => {
  it("the SDK has every route's operation, by its id in the API document, with its method and path", () => {
    const routes = Object.fromEntries(ROUTES.map((r) => [operationIdOf(r), [r.method, r.path]]));
    expect(OPERATIONS).toEqual(routes);
  });

  it("schedulerctl has a command for every operation", () => {
    const covered = new Set(Object.values(COVERAGE).flat());
    expect(ROUTES.map(operationIdOf).filter((id) => !covered.has(id as never))).toEqual([]);
  });
});

/** A fetch that answers from a script, one answer per call, and records what it was sent. */
function scripted(answers: (() => Response)[]) {
  const sent: { url: string; body?: string }[] = [];
  const fetch = (async (url: string, init?: RequestInit) => {
    sent.push({ url, body: init?.body as string | undefined });
    const next = answers.shift();
    if (!next) throw new Error("no more answers");
    return next();
  }) as typeof globalThis.fetch;
  return { fetch, sent };
}
const envelope =
  (status: number, body: object, headers: Record<string, string> = {}) =>
  () =>
    new Response(JSON.stringify(body), {
      status,
      headers: { "content-type": "application/json", ...headers },
    });
const ok = (data: unknown) => envelope(200, { code: "0", message: "OK", success: true, data });
const error = (status: number, code: string, headers?: Record<string, string>) =>
  envelope(status, { code, message: `failed with ${code}`, success: false, data: null }, headers);

describe("the SDK's retries", () => {
  it("retries 429 (after Retry-After) and 5xx with the same idempotency key, then answers", async () => {
    const { fetch, sent } = scripted([
      error(503, "2002"),
      error(429, "1010", { "retry-after": "0" }),
      envelope(201, { code: "0", message: "OK", success: true, data: { uuid: "u1", status: "queued" } }),
    ]);
    const client = new SwitchyardClient({ url: "http://api.test/", key: "k", backoffMs: 1, fetch });
    expect(await client.submit({ tool: "claude", prompt: "p" })).toEqual({ uuid: "u1", status: "queued" });
    const keys = sent.map((s) => JSON.parse(s.body ?? "{}").idempotency_key);
    expect(keys).toHaveLength(3);
    expect(new Set(keys).size).toBe(1);
    expect(sent[0]?.url).toBe("http://api.test/v2/tasks");
  });

  it("does not retry what a retry cannot mend, and stops after its attempts", async () => {
    const bad = scripted([error(400, "1001"), ok(null)]);
    const client = new SwitchyardClient({ url: "http://api.test", backoffMs: 1, fetch: bad.fetch });
    await expect(client.getTask("x")).rejects.toMatchObject({ status: 400, code: "1001" });
    expect(bad.sent).toHaveLength(1);

    const down = scripted(Array.from({ length: 5 }, () => error(500, "2001")));
    const tries = new SwitchyardClient({
      url: "http://api.test",
      attempts: 3,
      backoffMs: 1,
      fetch: down.fetch,
    });
    await expect(tries.getTask("x")).rejects.toBeInstanceOf(SwitchyardError);
    expect(down.sent).toHaveLength(3);
  });

  it("pages through a list by its cursor, and fills path parameters escaped", async () => {
    const { fetch, sent } = scripted([
      ok({ total: 3, tasks: [{ uuid: "a" }, { uuid: "b" }], next_cursor: "c1" }),
      ok({ total: 3, tasks: [{ uuid: "c" }] }),
    ]);
    const client = new SwitchyardClient({ url: "http://api.test", fetch });
    const seen: string[] = [];
    for await (const task of client.pages("tasks.list", "tasks", { query: { size: 2 } }))
      seen.push(task.uuid);
    expect(seen).toEqual(["a", "b", "c"]);
    expect(sent.map((s) => s.url)).toEqual([
      "http://api.test/v2/tasks?size=2",
      "http://api.test/v2/tasks?size=2&cursor=c1",
    ]);
    const file = scripted([
      () => new Response("x", { headers: { "content-type": "application/octet-stream" } }),
    ]);
    await new SwitchyardClient({ url: "http://api.test", fetch: file.fetch }).call("tasks.file", {
      uuid: "u",
      path: "out/a b.txt",
    });
    expect(file.sent[0]?.url).toBe("http://api.test/v2/tasks/u/files/out/a%20b.txt");
  });
});
