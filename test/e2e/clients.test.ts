import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RUN_STREAM_PATH } from "../../core/run-stream.ts";
import { ANSWERS } from "../../functions/_shared/answers.ts";
import { openApiPath } from "../../functions/_shared/openapi.ts";
import { ROUTES } from "../../functions/_shared/routes.ts";
import { SwitchyardClient } from "../../sdk/client.ts";
import { launchBrowser } from "../support/browser.ts";
import { FAKE_CLI_PATH, POOL_PER_TOOL_CONFIG } from "../support/fake-clis.ts";
import { startTestStack, type TestStack } from "../support/stack.ts";

const BIN = resolve(import.meta.dirname, "../../bin/schedulerctl.mjs");
/** A config folder of its own, so that no schedulerctl config of this machine is read. */
const CONFIG_HOME = mkdtempSync(join(tmpdir(), "schedulerctl-config-"));

let stack: TestStack;
let tenantKey: string;

beforeAll(async () => {
  stack = await startTestStack(POOL_PER_TOOL_CONFIG, { workerEnv: { PATH: FAKE_CLI_PATH } });
  const tenant = await stack.call("POST", "/v2/tenants", { body: { name: "clients" } });
  tenantKey = tenant.json?.data.api_key;
});
afterAll(async () => {
  await stack?.stop();
});

/** schedulerctl's environment: the stack's URL and `key` (null: none), and a config folder of its own. */
const cliEnv = (key: string | null) => ({
  PATH: process.env.PATH,
  XDG_CONFIG_HOME: CONFIG_HOME,
  SWITCHYARD_URL: stack.url,
  ...(key !== null && { SWITCHYARD_API_KEY: key }),
});

/** Runs a program to its end: its exit code and what it printed. */
function runToEnd(file: string, args: string[], env: NodeJS.ProcessEnv) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
    execFile(file, args, { env, timeout: 50_000 }, (err, stdout, stderr) =>
      done({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** Runs schedulerctl as a user would, with the stack's URL and `key` in its environment. */
const schedulerctl = (args: string[], key: string | null = tenantKey) =>
  runToEnd(process.execPath, [BIN, ...args], cliEnv(key));

describe("the API document", () => {
  it("is served without a key at /v2/openapi.json, covering every route and the run stream's WebSocket", async () => {
    const res = await stack.call("GET", "/v2/openapi.json", { key: null });
    expect([res.status, res.headers.get("content-type")]).toEqual([200, "application/json"]);
    const document = JSON.parse(res.text);
    expect([document.openapi, document.servers]).toEqual(["3.1.0", [{ url: "/" }]]);
    const served = Object.entries(document.paths as Record<string, object>).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(served.sort()).toEqual(
      [...ROUTES.map((r) => `${r.method} ${openApiPath(r.path)}`), `GET ${RUN_STREAM_PATH}`].sort(),
    );
  });
});

describe("the interactive docs", () => {
  it("serve at /v2/docs without a key, with every asset from this server and none from elsewhere", async () => {
    const page = await stack.call("GET", "/v2/docs", { key: null });
    expect([page.status, page.headers.get("content-type")]).toEqual([200, "text/html; charset=utf-8"]);
    const links = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] as string);
    expect(links.sort()).toEqual(["docs/init.js", "docs/swagger-ui-bundle.js", "docs/swagger-ui.css"]);
    for (const link of links) {
      const asset = await fetch(new URL(link, `${stack.url}/v2/docs`));
      expect([link, asset.status]).toEqual([link, 200]);
      expect(asset.headers.get("content-type")).toMatch(/^text\/(javascript|css)/);
      const text = await asset.text();
      expect(text.length).toBeGreaterThan(link.endsWith("init.js") ? 50 : 100_000);
      if (link.endsWith("init.js")) expect(text).toContain('new URL("openapi.json", window.location.href)');
    }
    for (const path of ["/v2/docs/nothing.js", "/v2/docs/constructor", "/v2/docs/"]) {
      const missing = await stack.call("GET", path, { key: null });
      expect([path, missing.status, missing.json?.code]).toEqual([path, 404, "1012"]);
    }
  });
});

describe("the interactive docs in a browser", () => {
  it("render every operation from this server alone, and Try it calls the API", async () => {
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      const origins = new Set<string>();
      page.on("request", (request) => {
        origins.add(new URL(request.url()).origin);
      });
      await page.goto(`${stack.url}/v2/docs`);
      await page.waitForSelector(".opblock", { timeout: 20_000 });
      expect(await page.locator(".opblock").count()).toBe(ROUTES.length + 1);
      expect([...origins]).toEqual([stack.url]);

      // Try it out on GET /v2/health: the page calls the API it documents, and shows the answer.
      const health = page.locator(".opblock-get").filter({ has: page.locator('[data-path="/v2/health"]') });
      await health.locator(".opblock-summary").click();
      await health.getByRole("button", { name: "Try it out" }).click();
      await health.getByRole("button", { name: "Execute" }).click();
      const status = health.locator(".live-responses-table tbody .response-col_status").first();
      await expect.poll(() => status.textContent(), { timeout: 10_000 }).toContain("200");
      expect(await health.locator(".live-responses-table tbody .microlight").first().textContent()).toContain(
        "healthy",
      );
    } finally {
      await browser.close();
    }
  });
});

describe("the answers", () => {
  it("are what the document says, field for field", async () => {
    const client = new SwitchyardClient({ url: stack.url, key: tenantKey });
    const submitted = await stack.call("POST", "/v2/tasks", {
      key: tenantKey,
      body: { tool: "claude", prompt: "answer me", tags: { team: "docs" } },
    });
    const uuid = submitted.json?.data.uuid as string;
    await client.waitFor(uuid, undefined, { intervalMs: 200 });
    const task = await stack.call("GET", `/v2/tasks/${uuid}`, { key: tenantKey });
    const runId = task.json?.data.run_id as string;
    const answers: [keyof typeof ANSWERS, string, string, unknown?][] = [
      ["task", "GET", `/v2/tasks/${uuid}`],
      ["tasks", "GET", "/v2/tasks?size=5"],
      ["taskStatus", "GET", `/v2/tasks/${uuid}/status`],
      ["taskTags", "POST", `/v2/tasks/${uuid}/tags`, { tags: { more: "yes" } }],
      ["run", "GET", `/v2/instances/${runId}`],
      ["runs", "GET", "/v2/instances?size=5"],
      ["runStatus", "GET", `/v2/instances/${runId}/status`],
      ["runTags", "POST", `/v2/instances/${runId}/tags`, { tags: { more: "yes" } }],
    ];
    expect(ANSWERS.submitted.parse(submitted.json?.data)).toEqual(submitted.json?.data);
    for (const [name, method, path, body] of answers) {
      const data = (await stack.call(method, path, { key: tenantKey, body })).json?.data;
      expect([name, ANSWERS[name].parse(data)]).toEqual([name, data]);
    }
  });
});

describe("the SDK", () => {
  it("submits, waits for the task to succeed, and pages through the tenant's tasks", async () => {
    const client = new SwitchyardClient({ url: stack.url, key: tenantKey });
    const { uuid } = await client.submit({ tool: "claude", prompt: "write a haiku", name: "sdk-haiku" });
    const seen: string[] = [];
    const task = await client.waitFor(uuid, undefined, {
      intervalMs: 200,
      onStatus: (t) => seen.push(t.status),
    });
    expect(task).toMatchObject({ uuid, status: "succeeded", name: "sdk-haiku" });
    expect(seen.at(-1)).toBe("succeeded");

    const more = await Promise.all(
      Array.from({ length: 6 }, (_, i) => client.submit({ pool: "codex-pool", prompt: `page ${i}` })),
    );
    // The listing sorts by status, then newest first: a task that moves on while a client pages can move
    // past its cursor. Paged here once every task has ended.
    await Promise.all(more.map((m) => client.waitFor(m.uuid, undefined, { intervalMs: 200 })));
    const listed: string[] = [];
    for await (const t of client.pages("tasks.list", "tasks", { query: { size: 2 } })) listed.push(t.uuid);
    expect(listed).toEqual(expect.arrayContaining([uuid, ...more.map((m) => m.uuid)]));
    expect(new Set(listed).size).toBe(listed.length);
  });
});

describe("schedulerctl", () => {
  it("enqueue --wait prints the uuid and exits 0 when the task succeeds", async () => {
    const { code, stdout, stderr } = await schedulerctl([
      "enqueue",
      "claude",
      "Refactor this code",
      "--wait",
    ]);
    expect([code, stderr]).toEqual([0, expect.stringContaining("succeeded")]);
    const uuid = stdout.trim();
    expect(uuid).toMatch(/^[0-9a-f-]{36}$/);
    const task = await stack.call("GET", `/v2/tasks/${uuid}`, { key: tenantKey });
    expect(task.json?.data).toMatchObject({
      status: "succeeded",
      tool: "claude",
      prompt: "Refactor this code",
    });
  });

  it("enqueue --wait on a terminal keeps one live status line, rewritten in place", async () => {
    // script(1) gives schedulerctl a pseudo-terminal, as a user's shell would.
    const command = `${process.execPath} ${BIN} enqueue claude "[sleep:1] on a tty" --wait`;
    const { code, stdout } = await runToEnd("script", ["-qec", command, "/dev/null"], cliEnv(tenantKey));
    expect(code).toBe(0);
    expect(stdout).toMatch(/^[0-9a-f-]{36}\r?\n/);
    expect(stdout).toContain("\r\x1b[Ksucceeded");
    expect(stdout).not.toMatch(/\n(dispatched|running)\r?\n/);
  });

  it("enqueue --wait exits 1 when the task fails, with its error", async () => {
    const run = await schedulerctl(["enqueue", "codex", "[exit:2] break", "--max-attempts", "1", "--wait"]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/failed/);
    expect(run.stderr).toMatch(/exit code 2/);
  });

  it("logs -f prints the run's log once it ends and exits with the task", async () => {
    const client = new SwitchyardClient({ url: stack.url, key: tenantKey });
    const { uuid } = await client.submit({ tool: "gemini", prompt: "[sleep:2] follow me" });
    const { code, stdout } = await schedulerctl(["logs", "-f", uuid]);
    expect(code).toBe(0);
    expect(stdout).toContain("done: [sleep:2] follow me");
    expect((await client.getTask(uuid)).status).toBe("succeeded");
  });

  it("files lists a task's files, and --download saves them at their paths", async () => {
    const client = new SwitchyardClient({ url: stack.url, key: tenantKey });
    const { uuid } = await client.submit({
      tool: "claude",
      prompt: "[write:out/report.md=all good] write it",
      output_files: ["out/report.md"],
    });
    expect((await client.waitFor(uuid, undefined, { intervalMs: 200 })).status).toBe("succeeded");
    const listed = await schedulerctl(["files", uuid, "--json"]);
    expect(JSON.parse(listed.stdout)).toEqual([
      expect.objectContaining({ path: "out/report.md", is_input: false }),
    ]);
    const dir = mkdtempSync(join(tmpdir(), "schedulerctl-files-"));
    const saved = await schedulerctl(["files", uuid, "--download", dir]);
    expect([saved.code, saved.stdout.trim()]).toEqual([0, join(dir, "out/report.md")]);
    expect(readFileSync(join(dir, "out/report.md"), "utf8")).toBe("all good");
  });

  it("answers every read command with JSON under --json (admin key)", async () => {
    const admin = new SwitchyardClient({ url: stack.url, key: stack.adminKey });
    const { uuid } = await admin.submit({ tool: "codex", prompt: "read me", concurrency_key: "acct-ctl" });
    const task = await admin.waitFor(uuid, undefined, { intervalMs: 200 });
    const runId = task.run_id as string;
    const tenants = await admin.call("tenants.list", {});
    const tenantId = (tenants as { id: string }[])[0]?.id as string;
    const reads = [
      ["get", uuid],
      ["status", uuid],
      ["events", uuid],
      ["runs", "list", "--task", uuid],
      ["runs", "get", runId],
      ["runs", "status", runId],
      ["tenants", "list"],
      ["tenants", "keys", tenantId],
      ["dispatcher", "status"],
      ["workers"],
      ["workers", "list"],
      ["health"],
      ["pools", "list"],
      ["pools", "get", "codex-pool", "--verbose"],
      ["queues"],
      ["queues", "--priority", "9"],
      ["policies"],
      ["queues", "codex-pool"],
      ["accounts", "acct-ctl"],
      ["status"],
      ["slas"],
    ];
    for (const args of reads) {
      const run = await schedulerctl(["--json", ...args], stack.adminKey);
      expect([args.join(" "), run.code, run.stderr]).toEqual([args.join(" "), 0, ""]);
      expect(() => JSON.parse(run.stdout), args.join(" ")).not.toThrow();
    }
    const events = JSON.parse((await schedulerctl(["--json", "events", uuid], stack.adminKey)).stdout);
    expect(events.map((e: { type: string }) => e.type)).toEqual(
      expect.arrayContaining(["task.created", "task.succeeded"]),
    );
    const account = JSON.parse(
      (await schedulerctl(["--json", "accounts", "acct-ctl"], stack.adminKey)).stdout,
    );
    expect([account.total, account.tasks[0]?.uuid]).toEqual([1, uuid]);
    const exclusively = [
      "enqueue",
      "codex",
      "[sleep:2] alone",
      "--concurrency-key",
      "acct-ctl",
      "--exclusive",
    ];
    const holder = await schedulerctl(exclusively, stack.adminKey);
    expect(holder.code).toBe(0);
    const held = await schedulerctl(exclusively, stack.adminKey);
    expect([held.code, held.stderr.trim()]).toEqual([
      1,
      `schedulerctl: concurrency_key: acct-ctl is held by task ${holder.stdout.trim()} (exclusive) (1007)`,
    ]);
    const queues = await schedulerctl(["queues"], stack.adminKey);
    expect(queues.stdout).toMatch(/^codex-pool\t0 waiting\t\d running\twait (unknown|[\d.]+ ± [\d.]+ s)$/m);
    const log = await schedulerctl(["runs", "logs", runId], stack.adminKey);
    expect([log.code, log.stdout]).toEqual([0, expect.stringContaining("done: read me")]);
  });

  it("changes what the write commands say: tenants and keys, pools, the dispatcher, a queued task", async () => {
    const admin = (args: string[]) => schedulerctl(["--json", ...args], stack.adminKey);
    const expectOk = async (args: string[]) => {
      const run = await admin(args);
      expect([args.join(" "), run.code, run.stderr]).toEqual([args.join(" "), 0, ""]);
      return JSON.parse(run.stdout || "null");
    };
    const created = await expectOk(["tenants", "create", "ctl-made", "--max-queued", "7"]);
    expect(created.tenant).toMatchObject({ name: "ctl-made", max_queued_tasks: 7 });
    const added = await expectOk(["tenants", "add-key", created.tenant.id, "--scope", "tasks:read"]);
    await expectOk(["tenants", "revoke", created.tenant.id, added.key_id]);
    const refused = await schedulerctl(["list"], added.api_key);
    expect(refused.code).toBe(2);

    expect(await expectOk(["pools", "pause", "gemini-pool"])).toMatchObject({ paused: true });
    expect(await expectOk(["pools", "resume", "gemini-pool"])).toMatchObject({ paused: false });

    // The same file again: nothing changes, and its pools still admit more than one worker holds.
    expect(await expectOk(["reload"])).toEqual({
      data: "reload OK",
      changes: [],
      warnings: expect.arrayContaining([
        expect.stringMatching(/^pool claude-pool: max_concurrency 3 exceeds/),
      ]),
    });
    await expectOk(["dispatcher", "stop"]);
    await expectOk(["dispatcher", "start"]);

    const at = new Date(Date.now() + 3_600_000).toISOString();
    const scheduled = await schedulerctl(["enqueue", "claude", "later", "--at", at], tenantKey);
    const uuid = scheduled.stdout.trim();
    expect((await expectOk(["pause", uuid])).status).toBe("paused");
    expect((await expectOk(["resume", uuid])).status).toBe("scheduled");
    const moved = await expectOk(["reorder", uuid, "-60"]);
    expect(Date.parse(moved.next_run_time)).toBe(Date.parse(at) - 60_000);
    expect((await expectOk(["tag", uuid, "k=v"])).tags).toMatchObject({ k: "v" });
    expect((await expectOk(["cancel", uuid])).status).toBe("canceled");
  });

  it("templates create, update, list, get and render", async () => {
    const dir = mkdtempSync(join(tmpdir(), "schedulerctl-templates-"));
    writeFileSync(join(dir, "fix.liquid"), 'prompt: "Fix {{ value.issue }} ({{ extra.style }})"\n');
    const ok = async (args: string[]) => {
      const run = await schedulerctl(["--json", ...args]);
      expect([args.join(" "), run.code, run.stderr]).toEqual([args.join(" "), 0, ""]);
      return JSON.parse(run.stdout);
    };
    const schema = `@${join(dir, "fix.liquid")}`;
    expect(
      await ok([
        "templates",
        "create",
        "fix",
        "--type",
        "prompt",
        "--schema",
        schema,
        "--extra",
        '{"style":"small"}',
      ]),
    ).toMatchObject({ revision: 1 });
    expect(await ok(["templates", "update", "fix", "--type", "agent", "--schema", schema])).toMatchObject({
      revision: 2,
    });
    expect(await ok(["templates", "list"])).toEqual(["fix"]);
    expect(await ok(["templates", "get", "fix", "--revision", "1"])).toMatchObject({
      type: "prompt",
      revisions: 2,
    });
    const rendered = await ok([
      "templates",
      "render",
      "fix",
      "--value",
      '{"issue":"#12"}',
      "--extra",
      '{"style":"big"}',
    ]);
    expect(rendered.spec).toMatchObject({ prompt: "Fix #12 (big)" });
    const run = await schedulerctl(["enqueue", "--template", "fix@1", "--value", '{"issue":"#3"}', "--wait"]);
    expect(run.code).toBe(0);
    const task = (await stack.call("GET", `/v2/tasks/${run.stdout.trim()}`, { key: tenantKey })).json?.data;
    expect(task).toMatchObject({
      status: "succeeded",
      template: "fix",
      template_revision: 1,
      prompt: "Fix #3 (small)",
    });
    expect((await schedulerctl(["enqueue", "claude", "--template", "fix"])).code).toBe(2);
    const kube = await schedulerctl(["templates", "create", "k8s", "--type", "crd", "--schema", "x: 1"]);
    expect([kube.code, kube.stderr]).toEqual([2, expect.stringContaining("type: crd is a Kubernetes kind")]);
  });

  it("list --json answers JSON with the tenant's tasks", async () => {
    const { code, stdout } = await schedulerctl(["list", "--json", "--size", "100"]);
    expect(code).toBe(0);
    const page = JSON.parse(stdout);
    expect(page.tasks.length).toBeGreaterThan(0);
    expect(page.tasks.every((t: { uuid: string }) => typeof t.uuid === "string")).toBe(true);
  });

  it("get of an unknown task exits 1 and says so", async () => {
    const { code, stderr } = await schedulerctl(["get", "00000000-0000-4000-8000-000000000000"]);
    expect([code, stderr]).toEqual([1, expect.stringMatching(/task .* not found \(1002\)/)]);
  });

  it("exits 2 without a key, saying how to set one, and 2 for a key the API refuses", async () => {
    const missing = await schedulerctl(["list"], null);
    expect([missing.code, missing.stderr]).toEqual([
      2,
      expect.stringContaining("export SWITCHYARD_API_KEY="),
    ]);
    const refused = await schedulerctl(["list"], "sy_not-a-key");
    expect([refused.code, refused.stderr]).toEqual([2, expect.stringContaining("refused the key")]);
    const usage = await schedulerctl(["enqueue", "claude"]);
    expect(usage.code).toBe(2);
  });
});
