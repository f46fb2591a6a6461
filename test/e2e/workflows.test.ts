import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { onWorkflowEvent, startWorkflowRun } from "../../core/workflow-runs.ts";
import { FAKE_CLI_PATH } from "../support/fake-clis.ts";
import { startTestStack, type TestStack } from "../support/stack.ts";
import { waitFor } from "../support/wait.ts";

const BIN = resolve(import.meta.dirname, "../../bin/schedulerctl.mjs");
const CONFIG = `
pools:
  - { name: main, tool: claude, account: main, max_concurrency: 2 }
`;

let stack: TestStack;
let tenantKey: string;
beforeAll(async () => {
  stack = await startTestStack(CONFIG, { workers: false });
  tenantKey = (await stack.call("POST", "/v2/tenants", { body: { name: "acme" } })).json?.data.api_key;
});
afterAll(async () => {
  await stack?.stop();
});

const call = (method: string, path: string, body?: unknown) =>
  stack.call(method, path, { key: tenantKey, body });
const job = (prompt: string) => ({ pool: "main", prompt });
const graph = async (id: string) => (await call("GET", `/v2/workflows/${id}/tasks`)).json?.data;

/** A diamond A → (B, C) → D, B and C reading A's result. */
const DIAMOND = {
  name: "diamond",
  tasks: [
    { name: "A", task: job("plan the work") },
    { name: "B", task: job("do {{ inputs.plan }} part 1"), inputs: { plan: { from: "A.result" } } },
    { name: "C", task: job("do {{ inputs.plan }} part 2"), inputs: { plan: { from: "A.result" }, n: 2 } },
    { name: "D", task: job("join") },
  ],
  edges: [
    { source: "B", target: "D" },
    { source: "C", target: "D", on: "always" },
  ],
};

describe("workflow definitions", () => {
  it("creates a whole graph at once: `from` inputs add their edges", async () => {
    const created = await call("POST", "/v2/workflows", DIAMOND);
    expect(created.status, created.text).toBe(201);
    const { workflow_id: id, tasks } = created.json?.data ?? {};
    expect(id).toMatch(/^wf_[0-9a-f]{16}$/);
    expect(tasks.map((t: { name: string }) => t.name)).toEqual(["A", "B", "C", "D"]);
    const got = await graph(id);
    expect(got).toMatchObject({ workflow_id: id, name: "diamond", version: 1 });
    expect(got.tasks.find((t: { name: string }) => t.name === "C")).toMatchObject({
      task: job("do {{ inputs.plan }} part 2"),
      inputs: { plan: { from: "A.result" }, n: 2 },
    });
    expect(got.edges).toEqual(
      expect.arrayContaining([
        { source: "A", target: "B", on: "succeeded" },
        { source: "A", target: "C", on: "succeeded" },
        { source: "B", target: "D", on: "succeeded" },
        { source: "C", target: "D", on: "always" },
      ]),
    );
    expect(got.edges).toHaveLength(4);
    const listed = (await call("GET", "/v2/workflows")).json?.data;
    expect(listed[0]).toMatchObject({ workflow_id: id, name: "diamond" });
  });

  it("is built node by node, each edit bumping its version, and refuses a cycle naming `edge`", async () => {
    const id = (await call("POST", "/v2/workflows", { name: "built" })).json?.data.workflow_id;
    expect((await call("POST", `/v2/workflows/${id}/tasks`, { name: "a", task: job("a") })).status).toBe(201);
    const b = await call("POST", `/v2/workflows/${id}/tasks`, {
      name: "b",
      task: job("b {{ inputs.x }}"),
      inputs: { x: { from: "a.result" } },
    });
    expect([b.status, b.json?.data.task_id]).toEqual([201, expect.stringMatching(/^wft_/)]);
    expect((await call("POST", `/v2/workflows/${id}/tasks`, { name: "c", task: job("c") })).status).toBe(201);
    expect((await call("POST", `/v2/workflows/${id}/edges`, { source: "b", target: "c" })).status).toBe(201);

    for (const [source, target] of [
      ["c", "a"],
      ["b", "b"],
    ]) {
      const cycle = await call("POST", `/v2/workflows/${id}/edges`, { source, target });
      expect([cycle.status, cycle.json?.code, cycle.json?.message]).toEqual([
        400,
        "1001",
        `edge: ${source} → ${target} would close a cycle`,
      ]);
    }
    const twice = await call("POST", `/v2/workflows/${id}/edges`, { source: "b", target: "c" });
    expect([twice.status, twice.json?.code]).toEqual([409, "1007"]);
    const nowhere = await call("POST", `/v2/workflows/${id}/edges`, { source: "b", target: "zz" });
    expect([nowhere.status, nowhere.json?.message]).toEqual([400, "edge: no node zz in this workflow"]);
    const got = await graph(id);
    expect(got.version).toBe(5);
    expect(got.edges).toHaveLength(2);
  });

  it("deletes edges and tasks, but not what another task's inputs need", async () => {
    const created = (await call("POST", "/v2/workflows", DIAMOND)).json?.data;
    const id = created.workflow_id;
    const taskId = (name: string) => created.tasks.find((t: { name: string }) => t.name === name).task_id;

    const implied = await call("DELETE", `/v2/workflows/${id}/edges?source=A&target=B`);
    expect([implied.status, implied.json?.message]).toEqual([
      409,
      "edge: an input of B comes from A: remove the input first",
    ]);
    const used = await call("DELETE", `/v2/workflows/${id}/tasks/${taskId("A")}`);
    expect([used.status, used.json?.message]).toEqual([409, "task: the inputs of B, C come from A"]);

    expect((await call("DELETE", `/v2/workflows/${id}/edges?source=C&target=D`)).json?.data).toEqual({
      source: "C",
      target: "D",
      on: "always",
    });
    const gone = await call("DELETE", `/v2/workflows/${id}/edges?source=C&target=D`);
    expect([gone.status, gone.json?.code]).toEqual([404, "1015"]);
    // D goes with its last edge, B → D.
    expect((await call("DELETE", `/v2/workflows/${id}/tasks/${taskId("D")}`)).status).toBe(200);
    const got = await graph(id);
    expect(got.tasks.map((t: { name: string }) => t.name)).toEqual(["A", "B", "C"]);
    expect(got.edges.map((e: { target: string }) => e.target).sort()).toEqual(["B", "C"]);
  });

  it("refuses bad tasks naming the field, and writes nothing of them", async () => {
    const cases: [object, string][] = [
      [{ tasks: [{ name: "a", task: { pool: "main" } }] }, "tasks.0.task.prompt"],
      [{ tasks: [{ name: "a", task: { ...job("x"), schedule: "* * * * *" } }] }, "tasks.0.task.schedule"],
      [{ tasks: [{ name: "bad name", task: job("x") }] }, "tasks.0.name"],
      [{ tasks: [{ name: "a", task: job("x"), inputs: { v: { from: "nope" } } }] }, "tasks.0.inputs.v.from"],
      [{ tasks: [{ name: "a", task: job("x"), inputs: { v: { from: "b.result" } } }] }, "tasks.0.inputs"],
      [{ tasks: [{ name: "a", task: job("x") }], edges: [{ source: "a", target: "a" }] }, "edge"],
      [
        { tasks: [{ name: "a", task: job("x") }], edges: [{ source: "a", target: "b", on: "maybe" }] },
        "edges.0.on",
      ],
    ];
    const before = (await call("GET", "/v2/workflows")).json?.data.length;
    for (const [body, field] of cases) {
      const res = await call("POST", "/v2/workflows", body);
      expect([field, res.status, res.json?.code, res.json?.message]).toEqual([
        field,
        400,
        "1001",
        expect.stringMatching(new RegExp(`^${field.replaceAll(".", "\\.")}:`)),
      ]);
    }
    expect((await call("GET", "/v2/workflows")).json?.data.length).toBe(before);
    const unknown = await call("GET", "/v2/workflows/wf_0000000000000000/tasks");
    expect([unknown.status, unknown.json?.code]).toEqual([404, "1015"]);
  });

  it("is created from a file with schedulerctl workflows create -f, and read back with workflows get", async () => {
    const dir = mkdtempSync(join(tmpdir(), "workflow-file-"));
    const file = join(dir, "workflow.yaml");
    writeFileSync(
      file,
      [
        "name: from-a-file",
        "tasks:",
        "  - { name: fetch, task: { pool: main, prompt: fetch it } }",
        "  - name: summarize",
        "    task: { pool: main, prompt: 'summarize {{ inputs.page }}' }",
        "    inputs: { page: { from: fetch.result } }",
        "edges: []",
      ].join("\n"),
    );
    const run = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((done) =>
        execFile(
          process.execPath,
          [BIN, ...args],
          { env: { PATH: process.env.PATH, SWITCHYARD_URL: stack.url, SWITCHYARD_API_KEY: tenantKey } },
          (err, stdout, stderr) => done({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
        ),
      );
    const created = await run(["workflows", "create", "-f", file]);
    expect([created.code, created.stderr]).toEqual([0, ""]);
    const [, id] = /^(wf_[0-9a-f]{16}) \(2 tasks\)$/m.exec(created.stdout) ?? [];
    const got = await run(["workflows", "get", id as string]);
    expect(got.stdout).toContain("edge fetch → summarize on succeeded");
    writeFileSync(file, "tasks: [ { name: x } ]");
    const refused = await run(["workflows", "create", "-f", file]);
    // A body the API refuses is the caller's to fix: exit code 2, with the field named.
    expect([refused.code, refused.stderr]).toEqual([2, expect.stringContaining("tasks.0.task: ")]);
  });
});

describe("workflow runs", () => {
  let runner: TestStack;
  let key: string;
  let tenantId: string;
  beforeAll(async () => {
    runner = await startTestStack(
      `
pools:
  - { name: main, tool: claude, account: main, max_concurrency: 3, lease_seconds: 10, retry: { base_seconds: 1, max_seconds: 2 }, worker: { max: 1, slots: 3 } }
`,
      { workerEnv: { PATH: FAKE_CLI_PATH } },
    );
    // Its tests poll every 200 ms, over the default 100 requests a minute when the machine is slow.
    const body = { name: "runs", rate_limit_per_minute: 10_000 };
    const tenant = (await runner.call("POST", "/v2/tenants", { body })).json?.data;
    [key, tenantId] = [tenant.api_key, tenant.tenant.id];
  });
  afterAll(async () => {
    await runner?.stop();
  });

  const as = (method: string, path: string, body?: unknown) => runner.call(method, path, { key, body });
  const node = (name: string, prompt: string, extra: object = {}) => ({
    name,
    task: { pool: "main", prompt, max_attempts: 1 },
    ...extra,
  });
  /** Starts a run of a new workflow; waits until it ends. */
  async function runToEnd(workflow: object, ms = 45_000) {
    const created = await as("POST", "/v2/workflows", workflow);
    expect(created.status, created.text).toBe(201);
    const id = created.json?.data.workflow_id as string;
    const started = await as("POST", `/v2/workflows/${id}/runs`);
    expect(started.status, started.text).toBe(201);
    const runId = started.json?.data.run_id as string;
    const run = await waitFor(
      async () => (await as("GET", `/v2/workflows/${id}/runs/${runId}`)).json?.data,
      (r) => r?.status !== "running",
      ms,
    );
    return {
      id,
      runId,
      run,
      byName: Object.fromEntries(run.nodes.map((n: { name: string }) => [n.name, n])),
    };
  }
  const promptOf = async (uuid: string) => (await as("GET", `/v2/tasks/${uuid}`)).json?.data.prompt as string;

  it("runs a diamond: B and C get A's result in their prompts, and D gets both", async () => {
    const { run, byName, id } = await runToEnd({
      tasks: [
        node("A", "plan it"),
        node("B", "B has [{{ inputs.plan }}]", { inputs: { plan: { from: "A.result" } } }),
        node("C", "C has [{{ inputs.plan }}] and {{ inputs.n }}", {
          inputs: { plan: { from: "A.result" }, n: 7 },
        }),
        node("D", "D has [{{ inputs.b }}] [{{ inputs.c }}]", {
          inputs: { b: { from: "B.result" }, c: { from: "C.result" } },
        }),
      ],
    });
    expect(run).toMatchObject({ status: "succeeded", nodes_total: 4, nodes_done: 4, nodes_failed: 0 });
    for (const name of ["A", "B", "C", "D"]) expect(byName[name].status, name).toBe("succeeded");
    expect(byName.A.outputs.result).toContain("plan it");
    expect(await promptOf(byName.B.task_uuid)).toBe(`B has [${byName.A.outputs.result}]`);
    expect(await promptOf(byName.C.task_uuid)).toBe(`C has [${byName.A.outputs.result}] and 7`);
    expect(await promptOf(byName.D.task_uuid)).toBe(
      `D has [${byName.B.outputs.result}] [${byName.C.outputs.result}]`,
    );
    const task = (await as("GET", `/v2/tasks/${byName.D.task_uuid}`)).json?.data;
    expect(task.workflow).toEqual({ run_id: run.run_id, node: "D" });
    expect((await as("GET", `/v2/workflows/${id}/runs`)).json?.data).toMatchObject([
      { run_id: run.run_id, status: "succeeded" },
    ]);
    // Each node ran once.
    const runs = await Promise.all(
      ["A", "B", "C", "D"].map(
        async (n) => (await as("GET", `/v2/instances?task_id=${byName[n].task_uuid}`)).json?.data.total,
      ),
    );
    expect(runs).toEqual([1, 1, 1, 1]);
  });

  it("moves nothing twice when every event of its nodes' tasks comes again", async () => {
    const { run, byName, id } = await runToEnd({
      tasks: [
        node("A", "first"),
        node("B", "then [{{ inputs.a }}]", { inputs: { a: { from: "A.result" } } }),
      ],
    });
    expect(run.status).toBe("succeeded");
    const tasksBefore = (await as("GET", "/v2/tasks?size=1")).json?.data.total;
    for (const name of ["A", "B"]) {
      const events = await runner.deps.events.listEvents(byName[name].task_uuid, 100);
      expect(events.items.length).toBeGreaterThan(2);
      for (const event of events.items) await onWorkflowEvent(runner.deps, event);
    }
    await onWorkflowEvent(runner.deps, {
      id: "again",
      type: "workflow.started",
      time: run.create_time,
      tenant: tenantId,
      pool: "",
      status: "running",
      task_uuid: "",
      workflow: { run_id: run.run_id, node: "" },
    });
    const again = (await as("GET", `/v2/workflows/${id}/runs/${run.run_id}`)).json?.data;
    expect(again).toEqual(run);
    expect((await as("GET", "/v2/tasks?size=1")).json?.data.total).toBe(tasksBefore);
  });

  it("starts from its stored event when its start is cut short before the first nodes are submitted", async () => {
    const created = await as("POST", "/v2/workflows", { tasks: [node("only", "alone")] });
    const id = created.json?.data.workflow_id;
    // The store refuses the start's first submission, as a throttled table would.
    let refused = 0;
    const tasks = new Proxy(runner.deps.tasks, {
      get: (store, name) =>
        name === "commit" && refused === 0
          ? async () => {
              refused++;
              throw new Error("ProvisionedThroughputExceededException");
            }
          : Reflect.get(store, name, store),
    });
    const asTenant = {
      kind: "tenant" as const,
      tenantId,
      keyId: "k",
      scopes: ["tasks:read", "tasks:write"] as const,
    };
    const { run_id: runId } = await startWorkflowRun({ ...runner.deps, tasks }, asTenant, id);
    expect(refused).toBe(1);
    const run = await waitFor(
      async () => (await as("GET", `/v2/workflows/${id}/runs/${runId}`)).json?.data,
      (r) => r?.status !== "running",
      30_000,
    );
    expect(run).toMatchObject({ status: "succeeded", nodes: [{ name: "only", status: "succeeded" }] });
  });

  /** Connects to a run's stream; resolves with every message once the server closes it, or the refusal. */
  const listen = (id: string, runId: string, options: { key?: string; after?: number } = {}) =>
    new Promise<{
      messages: { type: string; seq: number; data: Record<string, unknown> }[];
      refused?: number;
    }>((done, fail) => {
      const messages: { type: string; seq: number; data: Record<string, unknown> }[] = [];
      const query = options.after === undefined ? "" : `?after=${options.after}`;
      const ws = new WebSocket(
        `${runner.url.replace("http", "ws")}/v2/workflows/${id}/runs/${runId}/stream${query}`,
        {
          headers: { authorization: `Bearer ${options.key ?? key}` },
        },
      );
      ws.on("message", (text) => messages.push(JSON.parse(String(text))));
      ws.on("close", () => done({ messages }));
      ws.on("unexpected-response", (_req, res) => done({ messages, refused: res.statusCode }));
      ws.on("error", (err) => (err.message.includes("Unexpected server response") ? undefined : fail(err)));
    });

  it("streams each node's start_task and finish_task, then one finish_workflow; ?after= misses nothing", async () => {
    const created = await as("POST", "/v2/workflows", {
      tasks: [
        node("A", "first"),
        node("B", "then [{{ inputs.a }}]", { inputs: { a: { from: "A.result" } } }),
        node("C", "also"),
      ],
    });
    const id = created.json?.data.workflow_id;
    const runId = (await as("POST", `/v2/workflows/${id}/runs`)).json?.data.run_id;
    const { messages } = await listen(id, runId);
    expect(messages.map((m) => m.seq)).toEqual(messages.map((_, i) => i + 1));
    expect(messages.at(-1)).toMatchObject({
      type: "finish_workflow",
      data: { run_id: runId, status: "succeeded" },
    });
    expect(messages.filter((m) => m.type === "finish_workflow")).toHaveLength(1);
    for (const name of ["A", "B", "C"]) {
      const own = messages.filter((m) => m.data.name === name).map((m) => m.type);
      expect([name, own]).toEqual([name, ["start_task", "finish_task"]]);
    }
    const finishA = messages.find((m) => m.type === "finish_task" && m.data.name === "A");
    expect(finishA?.data).toMatchObject({
      status: "succeeded",
      outputs: { result: expect.stringContaining("first") },
    });
    // B starts only after A has finished.
    const at = (type: string, name: string) =>
      messages.findIndex((m) => m.type === type && m.data.name === name);
    expect(at("finish_task", "A")).toBeLessThan(at("start_task", "B"));

    const again = await listen(id, runId, { after: 2 });
    expect(again.messages).toEqual(messages.slice(2));
    const other = (await runner.call("POST", "/v2/tenants", { body: { name: "other" } })).json?.data.api_key;
    expect((await listen(id, runId, { key: other })).refused).toBe(404);
    expect((await listen(id, runId, { key: "wrong" })).refused).toBe(401);
  });

  it("opens at the run's stream_url with the key as a subprotocol; a client that leaves mid-run is forgotten", async () => {
    const created = await as("POST", "/v2/workflows", {
      tasks: [node("A", "[sleep:2] first"), node("B", "then", { inputs: { a: { from: "A.result" } } })],
    });
    const id = created.json?.data.workflow_id;
    const started = (await as("POST", `/v2/workflows/${id}/runs`)).json?.data;
    expect(started.stream_url).toBe(`/v2/workflows/${id}/runs/${started.run_id}/stream`);
    const url = new URL(started.stream_url, runner.url.replace("http", "ws"));
    const first = await new Promise<{ protocol: string; message: { type: string; seq: number } }>(
      (done, fail) => {
        const ws = new WebSocket(url, ["key", key]);
        ws.on("message", (text) => {
          done({ protocol: ws.protocol, message: JSON.parse(String(text)) });
          ws.close();
        });
        ws.on("error", fail);
      },
    );
    expect(first).toEqual({
      protocol: "key",
      message: expect.objectContaining({ type: "start_task", seq: 1 }),
    });
    const watchers = () => runner.deps.workflowRuns.listStreamConnections(started.run_id, Date.now() / 1000);
    expect(await watchers()).toHaveLength(1);
    // The next message finds it gone: its connection is forgotten, and the run is pushed to no one.
    const run = await waitFor(
      async () => (await as("GET", `/v2/workflows/${id}/runs/${started.run_id}`)).json?.data,
      (r) => r?.status !== "running",
      30_000,
    );
    expect(run).toMatchObject({ status: "succeeded", stream_url: started.stream_url });
    expect(await watchers()).toEqual([]);
    expect(await runner.deps.workflowRuns.getWorkflowRunRecord(started.run_id)).toMatchObject({
      watchers: 0,
    });
    // A client that comes after the end is sent the whole run, then closed.
    const late = await listen(id, started.run_id);
    expect(late.messages.map((m) => m.type)).toEqual([
      "start_task",
      "finish_task",
      "start_task",
      "finish_task",
      "finish_workflow",
    ]);
    expect(await watchers()).toEqual([]);
  });

  it("is run and watched with schedulerctl workflows run --watch, which prints the stream", async () => {
    const created = await as("POST", "/v2/workflows", {
      tasks: [node("A", "first"), node("B", "[exit:1] second", { inputs: { a: { from: "A.result" } } })],
    });
    const id = created.json?.data.workflow_id;
    const watched = await new Promise<{ code: number; stdout: string; stderr: string }>((done) =>
      execFile(
        process.execPath,
        [BIN, "workflows", "run", id, "--watch"],
        {
          env: { PATH: process.env.PATH, SWITCHYARD_URL: runner.url, SWITCHYARD_API_KEY: key },
          timeout: 50_000,
        },
        (err, stdout, stderr) => done({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
      ),
    );
    expect([watched.code, watched.stderr]).toEqual([1, ""]);
    expect(watched.stdout.trim().split("\n")).toEqual([
      "start_task A",
      "finish_task A succeeded",
      "start_task B",
      expect.stringMatching(/^finish_task B failed /),
      "finish_workflow failed",
    ]);
  });

  it("skips D when B fails while C still runs, and runs an `always` node anyway; the run fails", async () => {
    const { run, byName } = await runToEnd({
      tasks: [
        node("A", "start"),
        node("B", "[exit:1] break"),
        node("C", "carry on"),
        node("D", "join"),
        node("E", "clean up"),
        node("F", "after D"),
      ],
      edges: [
        { source: "A", target: "B" },
        { source: "A", target: "C" },
        { source: "B", target: "D" },
        { source: "C", target: "D" },
        { source: "B", target: "E", on: "always" },
        { source: "D", target: "F", on: "always" },
      ],
    });
    expect(run).toMatchObject({ status: "failed", nodes_done: 6, nodes_failed: 1 });
    expect(
      Object.fromEntries(run.nodes.map((n: { name: string; status: string }) => [n.name, n.status])),
    ).toEqual({
      A: "succeeded",
      B: "failed",
      C: "succeeded",
      D: "skipped",
      E: "succeeded",
      F: "succeeded",
    });
    expect(byName.D.error).toBe("B failed, and its edge runs this on succeeded");
    expect(byName.D.task_uuid).toBeUndefined();
  });

  it("keeps a long output in S3 and resolves it into the child's prompt", async () => {
    const long = "x".repeat(9_000);
    const { run, byName } = await runToEnd({
      tasks: [
        node("A", long),
        node("B", "got {{ inputs.a | size }}", { inputs: { a: { from: "A.result" } } }),
      ],
    });
    expect(run.status).toBe("succeeded");
    const ref = byName.A.outputs.result;
    expect(ref).toEqual({ ref: `workflows/${run.run_id}/A/result`, bytes: expect.any(Number) });
    expect(ref.bytes).toBeGreaterThan(9_000);
    const stored = await runner.deps.blobs.get(ref.ref);
    expect(Buffer.from(stored ?? new Uint8Array()).toString("utf8")).toContain(long);
    expect(await promptOf(byName.B.task_uuid)).toBe(`got ${ref.bytes}`);
  });

  it("gives the keys of a JSON answer as outputs", async () => {
    const { run, byName } = await runToEnd({
      tasks: [
        node("A", '[answer:{"summary": "all good", "score": 3, "tags": {"x": 1}}]'),
        node("B", "summary {{ inputs.s }}, score {{ inputs.n }}, tags {{ inputs.t }}", {
          inputs: { s: { from: "A.summary" }, n: { from: "A.score" }, t: { from: "A.tags" } },
        }),
      ],
    });
    expect(run.status).toBe("succeeded");
    expect(byName.A.outputs).toMatchObject({ summary: "all good", score: "3", tags: '{"x":1}' });
    expect(await promptOf(byName.B.task_uuid)).toBe('summary all good, score 3, tags {"x":1}');
  });

  it("fails a node whose input its parent did not give, without a task", async () => {
    const { run, byName } = await runToEnd({
      tasks: [node("A", "plain text"), node("B", "{{ inputs.x }}", { inputs: { x: { from: "A.summary" } } })],
    });
    expect(run.status).toBe("failed");
    expect(byName.B).toMatchObject({ status: "failed", error: "inputs.x: A has no output summary" });
  });

  it("holds a node its tenant's max_queued_tasks refuses pending, saying why, and runs it once the quota frees", async () => {
    const tenant = (
      await runner.call("POST", "/v2/tenants", { body: { name: "tight", max_queued_tasks: 1 } })
    ).json?.data;
    const tight = (method: string, path: string, body?: unknown) =>
      runner.call(method, path, { key: tenant.api_key, body });
    const leaves = ["B1", "B2", "B3", "B4", "B5", "B6"];
    const created = await tight("POST", "/v2/workflows", {
      tasks: [
        node("A", "first"),
        ...leaves.map((name) => node(name, `[sleep:2] ${name}`, { inputs: { a: { from: "A.result" } } })),
      ],
    });
    const id = created.json?.data.workflow_id;
    const runId = (await tight("POST", `/v2/workflows/${id}/runs`)).json?.data.run_id;
    // Three run (the pool's slots), one is queued (the quota), the others wait for it.
    const waiting = await waitFor(
      async () => (await tight("GET", `/v2/workflows/${id}/runs/${runId}`)).json?.data,
      (r) => r?.nodes.some((n: { waiting?: string }) => n.waiting),
      30_000,
    );
    const held = waiting.nodes.filter((n: { waiting?: string }) => n.waiting);
    expect(held[0]).toMatchObject({
      status: "pending",
      waiting: expect.stringContaining("max_queued_tasks"),
    });
    expect(held[0].task_uuid).toBeUndefined();
    const run = await waitFor(
      async () => (await tight("GET", `/v2/workflows/${id}/runs/${runId}`)).json?.data,
      (r) => r?.status !== "running",
      60_000,
    );
    expect(run.status).toBe("succeeded");
    expect(run.nodes.map((n: { status: string; waiting?: string }) => [n.status, n.waiting])).toEqual(
      Array.from({ length: 7 }, () => ["succeeded", undefined]),
    );
    // One task a node: the refused submissions left nothing behind.
    expect((await tight("GET", "/v2/tasks?size=100")).json?.data.total).toBe(7);
  });

  it("cancels a run: its running node's task is canceled, and its pending nodes never run", async () => {
    const created = await as("POST", "/v2/workflows", {
      tasks: [
        node("slow", "[sleep:30] long"),
        node("next", "after", { inputs: { v: { from: "slow.result" } } }),
      ],
    });
    const id = created.json?.data.workflow_id;
    const runId = (await as("POST", `/v2/workflows/${id}/runs`)).json?.data.run_id;
    const running = await waitFor(
      async () => (await as("GET", `/v2/workflows/${id}/runs/${runId}`)).json?.data,
      (r) => r?.nodes.find((n: { name: string }) => n.name === "slow")?.status === "running",
    );
    const slow = running.nodes.find((n: { name: string }) => n.name === "slow");
    expect((await as("DELETE", `/v2/workflows/${id}/runs/${runId}`)).json?.data).toEqual({
      run_id: runId,
      status: "canceled",
    });
    const ended = await waitFor(
      async () => (await as("GET", `/v2/workflows/${id}/runs/${runId}`)).json?.data,
      (r) => r?.nodes.every((n: { status: string }) => n.status === "canceled"),
    );
    expect(ended).toMatchObject({ status: "canceled", nodes_done: 2 });
    expect((await as("GET", `/v2/tasks/${slow.task_uuid}`)).json?.data.status).toBe("canceled");
  });
});
