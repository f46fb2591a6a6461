import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SwitchyardClient } from "../../sdk/client.ts";
import { FAKE_CLI_PATH } from "../support/fake-clis.ts";
import { startTestStack, type TestStack } from "../support/stack.ts";

const CONFIG = `pools:
  - { name: main, tool: claude, account: main, max_concurrency: 2 }
  - { name: pods, tool: container, max_concurrency: 2, lease_seconds: 30 }
`;
const PROMPT_SCHEMA =
  'tool: claude\nprompt: "Review {{ value.repo }} for {{ extra.focus }}"\noutput_files: ["review.md"]\n';

let stack: TestStack;
let alice: string;
let bob: string;

async function newTenant(name: string) {
  const res = await stack.call("POST", "/v2/tenants", { body: { name } });
  return res.json?.data.api_key as string;
}

beforeAll(async () => {
  stack = await startTestStack(CONFIG, { workerEnv: { PATH: FAKE_CLI_PATH } });
  [alice, bob] = await Promise.all([newTenant("alice"), newTenant("bob")]);
});
afterAll(async () => {
  await stack?.stop();
});

const create = (key: string, body: object) => stack.call("POST", "/v2/templates", { key, body });

describe("templates", () => {
  it("keep every revision: create is 1, PUT adds the next, a read gives the latest or the one asked for", async () => {
    const body = { name: "review", type: "prompt", schema: PROMPT_SCHEMA, extra: { focus: "bugs" } };
    const created = await create(alice, body);
    expect([created.status, created.json?.data]).toEqual([
      201,
      { id: "review", name: "review", revision: 1 },
    ]);
    expect((await create(alice, body)).json?.code).toBe("1007");

    const next = { ...body, title: "Review, stricter", extra: '{"focus": "security"}' };
    const updated = await stack.call("PUT", "/v2/templates/review", { key: alice, body: next });
    expect([updated.status, updated.json?.data.revision]).toEqual([200, 2]);

    const latest = (await stack.call("GET", "/v2/templates/review", { key: alice })).json?.data;
    expect(latest).toMatchObject({ name: "review", revision: 2, revisions: 2, extra: { focus: "security" } });
    const first = (await stack.call("GET", "/v2/templates/review?revision=1", { key: alice })).json?.data;
    expect(first).toMatchObject({ revision: 1, revisions: 2, extra: { focus: "bugs" } });

    expect((await stack.call("GET", "/v2/templates", { key: alice })).json?.data).toEqual(["review"]);
    const verbose = (await stack.call("GET", "/v2/templates?verbose=true", { key: alice })).json?.data;
    expect(verbose).toEqual([expect.objectContaining({ name: "review", revision: 2 })]);
  });

  it("render a dry run: value and extra (merged over the template's) into a validated job", async () => {
    const rendered = await stack.call("POST", "/v2/templates/review/render", {
      key: alice,
      body: { value: '{"repo": "switchyard"}', extra: { focus: "tests" } },
    });
    expect(rendered.status).toBe(200);
    expect(rendered.json?.data.spec).toEqual({
      tool: "claude",
      prompt: "Review switchyard for tests",
      input_files: [],
      output_files: ["review.md"],
    });
    expect(rendered.json?.data.bytes).toBeGreaterThan(0);
  });

  it("refuse what they cannot run, naming the field: Kubernetes kinds, a broken template, a bad job", async () => {
    const kube = await create(alice, { name: "k", type: "deployment", schema: "x: 1" });
    expect([kube.status, kube.json?.code, kube.json?.message]).toEqual([
      400,
      "1001",
      expect.stringMatching(/^type: deployment is a Kubernetes kind/),
    ]);

    await create(alice, { name: "broken", type: "prompt", schema: "prompt: {% if %}" }).then((res) =>
      expect([res.status, res.json?.message]).toEqual([
        400,
        expect.stringMatching(/^schema: does not parse: .*line:1, col:14$/),
      ]),
    );

    await create(alice, { name: "no-prompt", type: "prompt", schema: "tool: claude\nmodel: {{ value.m }}" });
    const bad = await stack.call("POST", "/v2/templates/no-prompt/render", {
      key: alice,
      body: { value: { m: "x" } },
    });
    expect([bad.status, bad.json?.message]).toEqual([
      400,
      expect.stringMatching(/^value\.prompt: the rendered prompt job/),
    ]);

    await create(alice, { name: "escape", type: "prompt", schema: '{% include "/etc/passwd" %}' });
    const included = await stack.call("POST", "/v2/templates/escape/render", { key: alice, body: {} });
    expect([included.status, included.json?.message]).toEqual([
      400,
      expect.stringMatching(/^template: does not render/),
    ]);
  });

  it("render a pod template to a container job", async () => {
    const schema = 'image: "alpine:3"\ncommand: ["sh", "-c"]\nargs: ["echo {{ value.word }}; exit 3"]\n';
    await create(alice, { name: "echo", type: "pod", schema });
    const rendered = await stack.call("POST", "/v2/templates/echo/render", {
      key: alice,
      body: { value: { word: "hi" } },
    });
    expect(rendered.json?.data.spec).toEqual({
      image: "alpine:3",
      command: ["sh", "-c"],
      args: ["echo hi; exit 3"],
      env: {},
    });
  });

  it("belong to their tenant: another tenant cannot read, list, update or render them", async () => {
    for (const [method, path, body] of [
      ["GET", "/v2/templates/review", undefined],
      ["PUT", "/v2/templates/review", { name: "review", type: "prompt", schema: PROMPT_SCHEMA }],
      ["POST", "/v2/templates/review/render", {}],
    ] as const) {
      const res = await stack.call(method, path, { key: bob, body });
      expect([method, res.status, res.json?.code]).toEqual([method, 404, "1006"]);
    }
    expect((await stack.call("GET", "/v2/templates", { key: bob })).json?.data).toEqual([]);
    expect((await stack.call("GET", "/v2/templates/nothing", { key: alice })).json?.code).toBe("1006");
  });
});

describe("submissions from a template", () => {
  it("run the revision they name, or the latest, and keep it when the template changes later", async () => {
    const client = new SwitchyardClient({ url: stack.url, key: alice });
    const v1 = 'prompt: "Summarize {{ value.doc }} for {{ extra.reader }}"\noutput_files: ["summary.md"]\n';
    await create(alice, { name: "summary", type: "agent", schema: v1, extra: { reader: "engineers" } });
    const first = await client.submit({ template: "summary", value: { doc: "DESIGN.md" }, name: "s1" });

    const v2 = 'prompt: "Summarize {{ value.doc }} in one line for {{ extra.reader }}"\n';
    await stack.call("PUT", "/v2/templates/summary", {
      key: alice,
      body: { name: "summary", type: "agent", schema: v2 },
    });
    const second = await client.submit({
      template: "summary",
      value: '{"doc": "README.md"}',
      extra: { reader: "managers" },
    });
    const pinned = await client.submit({ template: "summary@1", value: { doc: "old.md" } });

    const [a, b, c] = await Promise.all(
      [first, second, pinned].map((t) => client.waitFor(t.uuid, undefined, { intervalMs: 200 })),
    );
    expect(a).toMatchObject({
      status: "succeeded",
      template: "summary",
      template_revision: 1,
      tool: "claude",
      prompt: "Summarize DESIGN.md for engineers",
      output_files: ["summary.md"],
    });
    // What the CLI was given is what the template rendered.
    expect(a?.result?.output).toBe("done: Summarize DESIGN.md for engineers");
    expect(b).toMatchObject({ template_revision: 2, prompt: "Summarize README.md in one line for managers" });
    expect(b?.result?.output).toBe("done: Summarize README.md in one line for managers");
    expect(c).toMatchObject({ template_revision: 1, prompt: "Summarize old.md for engineers" });
    // The first task still says revision 1 after the update.
    expect((await client.getTask(first.uuid)).template_revision).toBe(1);
  });

  it("refuse an unknown template or revision, a pool of the wrong kind, a job that does not render, and mixed fields", async () => {
    const submit = (body: object, key = alice) => stack.call("POST", "/v2/tasks", { key, body });
    expect((await submit({ template: "nope" })).json?.code).toBe("1006");
    expect((await submit({ template: "summary@9" })).json?.message).toBe(
      "template summary revision 9 not found",
    );
    expect((await submit({ template: "summary" }, bob)).json?.code).toBe("1006");
    const pod = await submit({ template: "echo", value: { word: "x" }, pool: "main" });
    expect([pod.status, pod.json?.message]).toEqual([409, "tool: pool main runs claude, not container"]);
    const prompt = await submit({ template: "summary", pool: "pods", value: { doc: "x" } });
    expect([prompt.status, prompt.json?.message]).toEqual([
      409,
      "pool: pods runs container jobs: submit a pod template",
    ]);

    await create(alice, { name: "needs-value", type: "prompt", schema: 'prompt: "{{ value.text }}"' });
    const empty = await submit({ template: "needs-value" });
    expect([empty.status, empty.json?.message]).toEqual([400, expect.stringMatching(/^value\.prompt: /)]);
    const mixed = await submit({ template: "needs-value", prompt: "mine" });
    expect([mixed.status, mixed.json?.message]).toEqual([
      400,
      expect.stringMatching(/^prompt: give a prompt, or a template/),
    ]);
    const tool = await submit({ template: "needs-value", tool: "codex", value: { text: "x" } });
    expect([tool.status, tool.json?.message]).toEqual([
      400,
      expect.stringMatching(/^template: a template gives the job/),
    ]);
  });
});

describe("pod jobs", () => {
  const client = () => new SwitchyardClient({ url: stack.url, key: alice });
  const logsOf = async (uuid: string) =>
    (await stack.call("GET", `/v2/tasks/${uuid}/logs`, { key: alice })).text;

  it("run a pod template's rendered command in a container pool: exit code 3 fails the task, the output is in its logs", async () => {
    const submitted = await client().submit({
      template: "echo",
      value: { word: "rendered-word" },
      max_attempts: 1,
    });
    const task = await client().waitFor(submitted.uuid, undefined, { intervalMs: 200 });
    expect(task).toMatchObject({
      status: "failed",
      tool: "container",
      pool: "pods",
      template: "echo",
      template_revision: 1,
      pod: {
        image: "alpine:3",
        command: ["sh", "-c"],
        args: ["echo rendered-word; exit 3"],
        cpu: 256,
        memory: 512,
      },
      result: { exit_code: 3, output: expect.stringContaining("rendered-word") },
      error_message: "exit code 3",
    });
    const logs = await logsOf(submitted.uuid);
    expect(logs).toContain("rendered-word\n");
    expect(logs).toContain("image alpine:3: not pulled");
    const runs = (await stack.call("GET", `/v2/instances?task_id=${submitted.uuid}`, { key: alice })).json
      ?.data;
    expect(runs.instances).toEqual([
      expect.objectContaining({
        status: "failed",
        exit_code: 3,
        container_id: expect.stringMatching(/^[0-9a-f]{32}$/),
      }),
    ]);
  });

  it("give a pod its env, its run's ids and its size from the quotas, and succeed on exit code 0", async () => {
    const schema =
      'image: "busybox"\ncommand: ["sh", "-c", "echo $GREETING $SWITCHYARD_RUN_ID"]\nenv: { GREETING: "{{ extra.greeting }}" }\n';
    await create(alice, { name: "env", type: "pod", schema, extra: { greeting: "hello" } });
    const submitted = await client().submit({ template: "env", quotas: { cpu: "1", memory: "2Gi" } });
    const task = await client().waitFor(submitted.uuid, undefined, { intervalMs: 200 });
    expect(task).toMatchObject({
      status: "succeeded",
      pod: { cpu: 1024, memory: 2048, env: { GREETING: "hello" } },
    });
    expect(task?.result?.exit_code).toBe(0);
    expect(await logsOf(submitted.uuid)).toContain(`hello ${task?.run_id}\n`);
  });

  it("stop a running pod when its task is canceled: its process is gone and its slot is free again", async () => {
    const schema = 'image: "busybox"\ncommand: ["sh", "-c", "echo pid $$; exec sleep 600"]\n';
    await create(alice, { name: "sleeper", type: "pod", schema });
    const submitted = await client().submit({ template: "sleeper" });
    let pid: number | undefined;
    await expect
      .poll(
        async () => {
          pid = Number(/pid (\d+)/.exec(await logsOf(submitted.uuid))?.[1]) || undefined;
          return pid;
        },
        { timeout: 15_000, interval: 200 },
      )
      .toBeGreaterThan(0);
    expect((await client().getTask(submitted.uuid)).status).toBe("running");
    const alive = () => {
      try {
        process.kill(pid as number, 0);
        return true;
      } catch {
        return false;
      }
    };
    expect(alive()).toBe(true);
    expect(
      (await stack.call("DELETE", `/v2/tasks/${submitted.uuid}`, { key: alice })).json?.data.status,
    ).toBe("canceled");
    await expect.poll(alive, { timeout: 10_000, interval: 100 }).toBe(false);
    // The slots it kept come back when its end is reported: both pods of the pool run again.
    const next = await Promise.all([1, 2].map(() => client().submit({ template: "env" })));
    for (const t of next) {
      expect((await client().waitFor(t.uuid, undefined, { intervalMs: 200 }))?.status).toBe("succeeded");
    }
  });

  it("refuse a size Fargate does not run, a GPU, and quotas on a CLI job, naming quotas", async () => {
    const submit = (body: object) => stack.call("POST", "/v2/tasks", { key: alice, body });
    const small = await submit({ template: "echo", quotas: { cpu: 1, memory: 512 } });
    expect([small.status, small.json?.code, small.json?.message]).toEqual([
      400,
      "1001",
      "quotas: memory 512 MiB does not go with 1 vCPU on Fargate: give one of 2048, 3072, 4096, 5120, 6144, 7168, 8192 MiB",
    ]);
    const odd = await submit({ template: "echo", quotas: { cpu: "300m" } });
    expect(odd.json?.message).toMatch(/^quotas: cpu 0\.29\d* vCPU is not a Fargate size/);
    const gpu = await submit({ template: "echo", quotas: { gpu: 1 } });
    expect([gpu.status, gpu.json?.message]).toEqual([
      400,
      "quotas.gpu: no pool has GPU capacity: Fargate runs no GPUs",
    ]);
    const cli = await submit({ template: "summary", quotas: { cpu: 1 }, value: { doc: "x" } });
    expect([cli.status, cli.json?.message]).toEqual([
      400,
      "quotas: size pod jobs; template summary is of type agent",
    ]);
  });
});
