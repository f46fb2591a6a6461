import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchBrowser } from "../support/browser.ts";
import { FAKE_CLI_PATH } from "../support/fake-clis.ts";
import { startTestStack, type TestStack } from "../support/stack.ts";
import { waitFor } from "../support/wait.ts";

/** axe-core's browser build, which the accessibility check injects. */
const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
interface AxeResults {
  violations: { id: string; impact?: string; nodes: unknown[] }[];
}

/** Screenshots of the pages, kept as the run's artifacts. */
const SHOTS = resolve(import.meta.dirname, "../../test-results/dashboard");

let stack: TestStack;
let browser: Browser;
let key: string;

beforeAll(async () => {
  stack = await startTestStack(
    `
pools:
  - { name: main, tool: claude, account: main, max_concurrency: 2, lease_seconds: 10, retry: { base_seconds: 1, max_seconds: 1 }, worker: { max: 1, slots: 2 } }
`,
    { workerEnv: { PATH: FAKE_CLI_PATH } },
  );
  key = (await stack.call("POST", "/v2/tenants", { body: { name: "viewer" } })).json?.data.api_key;
  browser = await launchBrowser();
  mkdirSync(SHOTS, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

/** A page at laptop width, signed in with the key (the tenant's, unless given) in the URL fragment. */
async function signedIn(as = key): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${stack.url}/#key=${encodeURIComponent(as)}`);
  await page.getByRole("heading", { name: "Tasks" }).waitFor();
  return page;
}

describe("the dashboard, in a real browser", () => {
  it("signs in with a typed key, refusing a wrong one, and keeps the key in this tab only", async () => {
    const page = await browser.newPage();
    await page.goto(stack.url);
    const field = page.getByLabel("API key");
    await field.fill("sy_wrong");
    await field.press("Enter");
    await expect.poll(() => page.getByRole("alert").textContent()).toContain("1008");
    await field.fill(key);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Tasks" }).waitFor();
    const kept = await page.evaluate(() => ({
      session: Object.values(sessionStorage),
      local: localStorage.length,
      cookie: document.cookie,
    }));
    expect(kept).toEqual({ session: [key], local: 0, cookie: "" });
    // The fragment form takes the key out of the address at once.
    const other = await signedIn();
    expect(other.url()).not.toContain(key);
    expect(new URL(other.url()).hash).toBe("#/tasks");
    await page.close();
    await other.close();
  });

  it("shows a task submitted through the API, live, until it succeeds; its page has its runs and logs", async () => {
    const page = await signedIn();
    const uuid = await stack.submit(
      { pool: "main", name: "first-task", prompt: "[sleep:1] hello dashboard" },
      key,
    );
    const row = page.locator(`tr[data-uuid="${uuid}"]`);
    await row.getByRole("link", { name: "first-task" }).waitFor({ timeout: 10_000 });
    await expect.poll(() => row.locator(".status").textContent(), { timeout: 30_000 }).toBe("succeeded");
    expect(await row.locator("td").nth(2).textContent()).toBe("claude");
    // The last hour's charts count what the API says ended in it.
    await page.reload();
    const listed = (await stack.call("GET", "/v2/tasks?size=100", { key })).json?.data.tasks;
    const ended = listed.filter((t: { end_time?: string }) => t.end_time).length;
    const hour = page.getByRole("region", { name: "The last hour" });
    await expect
      .poll(() => hour.locator(".count").textContent())
      .toMatch(new RegExp(`^${ended} tasks? ended, \\$`));
    expect(await hour.locator(".chart canvas").count()).toBe(3);
    await row.waitFor();
    await page.screenshot({ path: resolve(SHOTS, "tasks.png") });

    await row.getByRole("link", { name: "first-task" }).click();
    await page.getByRole("heading", { name: /first-task/ }).waitFor();
    await expect
      .poll(() => page.getByRole("log", { name: "Logs" }).textContent())
      .toContain("hello dashboard");
    const runs = page.locator("table").first().locator("tbody tr");
    await expect.poll(() => runs.count()).toBe(1);
    expect(await runs.first().locator("td").nth(2).textContent()).toBe("0");
    const events = await page.locator(".timeline li").allTextContents();
    expect(events.some((e) => e.includes("task.succeeded"))).toBe(true);
    await page.screenshot({ path: resolve(SHOTS, "task.png"), fullPage: true });
    await page.close();
  });

  it("shows which attempt's CLI session a retry took up", async () => {
    const uuid = await stack.submit(
      {
        pool: "main",
        name: "resumed-task",
        prompt: "[turns:3@1] go on",
        timeout: 2,
        max_attempts: 3,
        resume: true,
      },
      key,
    );
    // Watched with the admin's key: the tenant's 100 requests a minute are the pages' to spend.
    const done = await waitFor(
      async () => (await stack.call("GET", `/v2/tasks/${uuid}`)).json?.data,
      (t) => ["succeeded", "failed"].includes(t?.status),
      40_000,
    );
    expect(done.status).toBe("succeeded");
    const page = await signedIn();
    await page.goto(`${stack.url}/#/tasks/${uuid}`);
    await page.getByRole("heading", { name: /resumed-task/ }).waitFor();
    const runs = page.locator("table").first().locator("tbody tr");
    await expect.poll(() => runs.count()).toBeGreaterThan(1);
    const count = await runs.count();
    expect(
      await runs
        .nth(count - 1)
        .locator("td")
        .last()
        .textContent(),
    ).toBe(`from attempt ${count - 1}`);
    expect(await runs.first().locator("td").last().textContent()).toBe("");
    await page.close();
  }, 60_000);

  it("cancels a running task from its page", async () => {
    const page = await signedIn();
    const uuid = await stack.submit({ pool: "main", name: "long-task", prompt: "[sleep:30] long" }, key);
    await page.goto(`${stack.url}/#/tasks/${uuid}`);
    const badge = page.getByRole("heading", { name: /long-task/ }).locator(".status");
    await expect.poll(() => badge.textContent(), { timeout: 30_000 }).toBe("running");
    await page.getByRole("button", { name: "Cancel" }).click();
    await expect.poll(() => badge.textContent(), { timeout: 15_000 }).toBe("canceled");
    expect((await stack.call("GET", `/v2/tasks/${uuid}`, { key })).json?.data.status).toBe("canceled");
    await page.close();
  });

  it("draws a workflow run whose nodes turn green live, a wide level grouped with its counts", async () => {
    const as = (method: string, path: string, body?: unknown) => stack.call(method, path, { key, body });
    const job = (prompt: string) => ({ pool: "main", prompt, max_attempts: 1 });
    const leaves = Array.from({ length: 14 }, (_, i) => `leaf${i}`);
    const created = await as("POST", "/v2/workflows", {
      name: "fan",
      tasks: [
        { name: "A", task: job("[sleep:1] first") },
        ...leaves.map((name) => ({
          name,
          task: job(`${name} of {{ inputs.a }}`),
          inputs: { a: { from: "A.result" } },
        })),
        { name: "D", task: job("join") },
      ],
      edges: leaves.map((name) => ({ source: name, target: "D" })),
    });
    const id = created.json?.data.workflow_id;
    const runId = (await as("POST", `/v2/workflows/${id}/runs`)).json?.data.run_id;
    const page = await signedIn();
    await page.getByRole("link", { name: "Workflows" }).click();
    await page.getByRole("link", { name: "fan" }).click();
    await page.getByRole("link", { name: runId }).click();
    const node = (name: string) => page.locator(`g[data-node="${name}"]`);
    await node("A").waitFor();
    // 14 leaves are wider than a level shows: one group, with its count by status.
    expect(await page.locator("g.node").count()).toBe(3);
    const group = node("level 1");
    await expect.poll(() => group.locator("text").first().textContent()).toBe("level 1: 14 nodes");
    for (const name of ["A", "D"]) {
      await expect
        .poll(() => node(name).getAttribute("class"), { timeout: 45_000 })
        .toBe("node status-succeeded");
    }
    expect(await group.locator(".summary").textContent()).toBe("14 succeeded");
    await expect
      .poll(() => page.getByRole("heading", { name: /^Run / }).locator(".status").textContent())
      .toBe("succeeded");
    await page.screenshot({ path: resolve(SHOTS, "workflow-run.png"), fullPage: true });
    await page.close();
  });

  it("shows pools with their usage and expected wait and their accounts' state, and tells a tenant that workers are the admin's", async () => {
    const page = await signedIn();
    await page.getByRole("link", { name: "Pools and queues" }).click();
    const pool = page.getByRole("row", { name: /^main claude main/ });
    await pool.waitFor();
    expect(await pool.locator("td").last().textContent()).toBe("open");
    expect(await pool.locator("td").nth(6).textContent()).toBe("none");
    // The account behind it: available, then disabled by the admin, as the page refreshes.
    const account = page
      .getByRole("row", { name: /^claude main/ })
      .filter({ hasText: "main" })
      .last();
    await expect.poll(() => account.locator("td").nth(1).textContent()).toBe("available");
    await stack.call("POST", "/v2/tool-accounts/claude/main/disable");
    await expect.poll(() => account.locator("td").nth(1).textContent(), { timeout: 15_000 }).toBe("disabled");
    await stack.call("POST", "/v2/tool-accounts/claude/main/clear");
    await page.getByRole("link", { name: "Workers" }).click();
    await expect.poll(() => page.getByRole("alert").textContent()).toContain("1009");
    await page.close();
  });

  it("lists a recurring task with its interval and next run, and pauses and resumes it", async () => {
    const uuid = await stack.submit(
      {
        pool: "main",
        name: "hourly",
        prompt: "tick",
        interval: 3600,
        times: 5,
        scheduled_at: "2099-01-01T00:00:00Z",
      },
      key,
    );
    const page = await signedIn();
    await page.getByRole("link", { name: "Schedules" }).click();
    const row = page.getByRole("row", { name: /hourly/ });
    await row.waitFor();
    expect(await row.locator("td").nth(2).textContent()).toBe("3600 s");
    expect(await row.locator("td").nth(4).textContent()).toBe("2099-01-01T00:00:00.000Z");
    await row.getByRole("button", { name: "Pause" }).click();
    await expect.poll(() => row.locator(".status").textContent()).toBe("paused");
    expect((await stack.call("GET", `/v2/tasks/${uuid}`, { key })).json?.data.status).toBe("paused");
    await row.getByRole("button", { name: "Resume" }).click();
    await expect.poll(() => row.locator(".status").textContent()).toBe("scheduled");
    await page.close();
  });

  it("lets the admin create a tenant, add and revoke its keys; a tenant's key may not", async () => {
    const page = await signedIn(stack.adminKey);
    await page.getByRole("link", { name: "Tenants" }).click();
    await page.getByLabel("New tenant").fill("from-the-dashboard");
    await page.getByRole("button", { name: "Create" }).click();
    const told = page.getByRole("status");
    await expect.poll(() => told.textContent()).toMatch(/^Tenant from-the-dashboard: its key .* is sy_/);
    const made = (await stack.call("GET", "/v2/tenants")).json?.data.find(
      (t: { name: string }) => t.name === "from-the-dashboard",
    );
    await page
      .getByRole("row", { name: /from-the-dashboard/ })
      .getByRole("button", { name: "Keys" })
      .click();
    const keys = page.locator("td table tbody tr");
    await expect.poll(() => keys.count()).toBe(1);
    await page.getByRole("button", { name: "Add a key" }).click();
    await expect.poll(() => told.textContent()).toMatch(/^New key \(shown this once\): sy_/);
    await expect.poll(() => keys.count()).toBe(2);
    const first = keys.first();
    await first.getByRole("button", { name: "Revoke" }).click();
    await expect.poll(() => first.locator("td").nth(3).textContent()).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(await first.getByRole("button", { name: "Revoke" }).count()).toBe(0);
    const stored = (await stack.call("GET", `/v2/tenants/${made.id}/keys`)).json?.data;
    expect(stored.filter((k: { revoked_time?: string }) => k.revoked_time)).toHaveLength(1);

    const tenant = await signedIn();
    await tenant.getByRole("link", { name: "Tenants" }).click();
    await expect.poll(() => tenant.getByRole("alert").textContent()).toContain("1009");
    await page.close();
    await tenant.close();
  });

  it("has no serious accessibility faults (axe, WCAG 2 A and AA) on any page, at laptop width", async () => {
    const uuid = await stack.submit({ pool: "main", name: "checked", prompt: "checked" }, key);
    const flow = (
      await stack.call("POST", "/v2/workflows", {
        body: { name: "checked", tasks: [{ name: "only", task: { pool: "main", prompt: "checked" } }] },
      })
    ).json?.data.workflow_id;
    const run = (await stack.call("POST", `/v2/workflows/${flow}/runs`)).json?.data.run_id;
    // axe is injected as a script of the test's own: this page alone lets it past the dashboard's policy.
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, bypassCSP: true });
    const page = await context.newPage();
    await page.goto(`${stack.url}/#key=${encodeURIComponent(stack.adminKey)}`);
    const faults: string[] = [];
    for (const [hash, ready] of [
      ["#/tasks", "Tasks"],
      [`#/tasks/${uuid}`, "Fields"],
      ["#/schedules", "Schedules"],
      ["#/workflows", "Workflows"],
      [`#/workflows/${flow}/runs/${run}`, "Nodes"],
      ["#/pools", "Pools and queues"],
      ["#/workers", "Workers"],
      ["#/tenants", "Tenants and keys"],
    ] as const) {
      await page.goto(`${stack.url}/${hash}`);
      await page.getByRole("heading", { name: ready }).waitFor();
      await page.addScriptTag({ path: AXE });
      const found = await page.evaluate(async () => {
        const axe = (window as unknown as { axe: { run: (o: object) => Promise<AxeResults> } }).axe;
        const results = await axe.run({ runOnly: { type: "tag", values: ["wcag2a", "wcag2aa"] } });
        return results.violations
          .filter((v) => v.impact === "serious" || v.impact === "critical")
          .map((v) => `${v.id} (${v.nodes.length})`);
      });
      faults.push(...found.map((f) => `${hash}: ${f}`));
    }
    expect(faults).toEqual([]);
    await context.close();
  });

  it("lets its page reach this API only, and no other site frame it", async () => {
    const res = await fetch(stack.url);
    expect([res.headers.get("x-frame-options"), res.headers.get("x-content-type-options")]).toEqual([
      "DENY",
      "nosniff",
    ]);
    const script = await fetch(`${stack.url}/dashboard/app.js`);
    expect([script.status, script.headers.get("content-type")]).toEqual([
      200,
      "text/javascript; charset=utf-8",
    ]);
    const page = await signedIn();
    const refused = await page.evaluate(async () => {
      const violation = new Promise<string>((done) =>
        document.addEventListener("securitypolicyviolation", (e) => done(e.effectiveDirective)),
      );
      await fetch("http://198.51.100.7/elsewhere").catch(() => undefined);
      return violation;
    });
    expect(refused).toBe("connect-src");
    await page.close();
  });
});
