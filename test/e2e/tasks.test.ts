import { ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiAnswer, startTestStack, type TestStack } from "../support/stack.ts";

const CONFIG = `
pools:
  - { name: solo, tool: claude, account: main, max_concurrency: 1 }
  - { name: wide, tool: codex, account: main, max_concurrency: 3 }
`;

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack(CONFIG, { workers: false });
});
afterAll(async () => {
  await stack?.stop();
});

const submit = (body: object, key?: string) =>
  stack.call("POST", "/v2/tasks", { body: { prompt: "hi", ...body }, key });
const statusOf = async (uuid: string) =>
  (await stack.call("GET", `/v2/tasks/${uuid}/status`)).json?.data.status;
const uuidOf = (answer: ApiAnswer) => answer.json?.data.uuid as string;

describe("health", () => {
  it("reports dynamodb, sqs and s3 up, without a key", async () => {
    const res = await stack.call("GET", "/v2/health", { key: null });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ code: "0", success: true, data: { status: "healthy" } });
    expect(res.json?.data.components).toEqual(
      expect.arrayContaining(["dynamodb", "sqs", "s3"].map((name) => ({ name, status: "up" }))),
    );
  });
});

describe("submission and admission", () => {
  it("dispatches a submitted task and puts its run on the pool's FIFO queue", async () => {
    const res = await submit({ pool: "wide", prompt: "write a haiku", tags: "team=a" });
    expect(res.status).toBe(201);
    expect(res.json?.data).toMatchObject({
      status: "dispatched",
      run_id: expect.stringMatching(/-r000001$/),
    });

    const { Messages = [] } = await stack.clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: stack.resources.queueUrls.wide,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        MessageSystemAttributeNames: ["MessageDeduplicationId", "MessageGroupId"],
      }),
    );
    const message = Messages.find((m) => JSON.parse(m.Body ?? "{}").task_uuid === uuidOf(res));
    expect(message?.Attributes).toMatchObject({
      MessageDeduplicationId: res.json?.data.run_id,
      MessageGroupId: res.json?.data.run_id,
    });

    const task = (await stack.call("GET", `/v2/tasks/${uuidOf(res)}`)).json?.data;
    expect(task).toMatchObject({ pool: "wide", tool: "codex", priority: 5, attempt: 1, tags: { team: "a" } });
    const run = await stack.call("GET", `/v2/instances/${res.json?.data.run_id}`);
    expect(run.json?.data).toMatchObject({ status: "dispatched", attempt: 1, pool: "wide" });
  });

  it("admits 9-priority before 5 before 1 when a slot frees", async () => {
    const blocker = uuidOf(await submit({ pool: "solo" }));
    expect(await statusOf(blocker)).toBe("dispatched");
    const low = uuidOf(await submit({ pool: "solo", priority: 1 }));
    const mid = uuidOf(await submit({ pool: "solo", prior: "5" }));
    const high = uuidOf(await submit({ pool: "solo", priority: 9 }));
    expect([await statusOf(low), await statusOf(mid), await statusOf(high)]).toEqual([
      "queued",
      "queued",
      "queued",
    ]);

    await stack.call("DELETE", `/v2/tasks/${blocker}`);
    expect([await statusOf(low), await statusOf(mid), await statusOf(high)]).toEqual([
      "queued",
      "queued",
      "dispatched",
    ]);
    await stack.call("DELETE", `/v2/tasks/${high}`);
    expect([await statusOf(low), await statusOf(mid)]).toEqual(["queued", "dispatched"]);
    await stack.call("DELETE", `/v2/tasks/${mid}`);
    expect(await statusOf(low)).toBe("dispatched");
    await stack.call("DELETE", `/v2/tasks/${low}`);
  });

  it("serializes tasks that share a concurrency key", async () => {
    const first = uuidOf(await submit({ pool: "wide", concurrency_key: "repo-1" }));
    const second = uuidOf(await submit({ pool: "wide", concurrency_key: "repo-1" }));
    const other = uuidOf(await submit({ pool: "wide", concurrency_key: "repo-2" }));
    expect([await statusOf(first), await statusOf(second), await statusOf(other)]).toEqual([
      "dispatched",
      "queued",
      "dispatched",
    ]);
    await stack.call("DELETE", `/v2/tasks/${first}`);
    expect(await statusOf(second)).toBe("dispatched");
    await Promise.all([second, other].map((uuid) => stack.call("DELETE", `/v2/tasks/${uuid}`)));
  });

  it("sends a task that names only its tool to a pool of that tool", async () => {
    const res = await submit({ tool: "codex" });
    expect((await stack.call("GET", `/v2/tasks/${uuidOf(res)}`)).json?.data.pool).toBe("wide");
    await stack.call("DELETE", `/v2/tasks/${uuidOf(res)}`);
  });

  it("refuses a tool with no pool (409, 1005) and a pool of another tool (409, 1007)", async () => {
    const noPool = await submit({ tool: "gemini" });
    expect([noPool.status, noPool.json?.code]).toEqual([409, "1005"]);
    expect(noPool.json?.message).toContain("tool");
    const mismatch = await submit({ tool: "claude", pool: "wide" });
    expect([mismatch.status, mismatch.json?.code]).toEqual([409, "1007"]);
  });
});

describe("idempotency", () => {
  it("returns the same task for the same key and body, and 409 for another body", async () => {
    const body = { pool: "solo", idempotency_key: `k-${Date.now()}`, priority: 2 };
    const first = await submit(body);
    const replay = await submit(body);
    expect(first.status).toBe(201);
    expect(replay.status).toBe(200);
    expect(uuidOf(replay)).toBe(uuidOf(first));
    const changed = await submit({ ...body, priority: 3 });
    expect([changed.status, changed.json?.code]).toEqual([409, "1007"]);
    expect(changed.json?.message).toContain("idempotency_key");
    await stack.call("DELETE", `/v2/tasks/${uuidOf(first)}`);
  });
});

describe("cancel", () => {
  it("cancels a queued task at once, and a second cancel is a 409", async () => {
    const blocker = uuidOf(await submit({ pool: "solo" }));
    const queued = uuidOf(await submit({ pool: "solo" }));
    expect(await statusOf(queued)).toBe("queued");
    const res = await stack.call("DELETE", `/v2/tasks/${queued}`);
    expect(res.status).toBe(200);
    expect(res.json?.data).toEqual({ uuid: queued, status: "canceled" });
    expect(await statusOf(queued)).toBe("canceled");
    const again = await stack.call("DELETE", `/v2/tasks/${queued}`);
    expect([again.status, again.json?.code]).toEqual([409, "1007"]);
    // The blocker kept its slot: the canceled queued task freed nothing.
    expect(await statusOf(blocker)).toBe("dispatched");
    await stack.call("DELETE", `/v2/tasks/${blocker}`);
  });
});

describe("listing, tags, files and logs", () => {
  it("pages through a namespace with a cursor and reports the total", async () => {
    const namespace = `ns-${Date.now()}`;
    const made = [];
    for (let i = 0; i < 5; i++)
      made.push(uuidOf(await submit({ pool: "wide", namespace, tags: { i: String(i) } })));
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query = `namespace=${namespace}&size=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
      const page = await stack.call("GET", `/v2/tasks?${query}`);
      expect(page.json?.data.total).toBe(5);
      expect(page.json?.data.tasks.length).toBeLessThanOrEqual(2);
      seen.push(...(page.json?.data.tasks ?? []).map((t: { uuid: string }) => t.uuid));
      cursor = page.json?.data.next_cursor;
    } while (cursor);
    expect(seen.sort()).toEqual([...made].sort());

    const tagged = await stack.call("GET", `/v2/tasks?namespace=${namespace}&tag=i=3`);
    expect(tagged.json?.data.tasks.map((t: { uuid: string }) => t.uuid)).toEqual([made[3]]);
    const bad = await stack.call("GET", "/v2/tasks?cursor=bm90LWEtY3Vyc29y");
    expect([bad.status, bad.json?.code]).toEqual([400, "1001"]);
    expect(bad.json?.message).toContain("cursor");
    await Promise.all(made.map((uuid) => stack.call("DELETE", `/v2/tasks/${uuid}`)));
  });

  it("merges tags into a task and a run", async () => {
    const res = await submit({ pool: "wide", tags: { a: "1" } });
    const merged = await stack.call("POST", `/v2/tasks/${uuidOf(res)}/tags`, { body: { tags: "b=2,a=3" } });
    expect(merged.json?.data.tags).toEqual({ a: "3", b: "2" });
    const runTags = await stack.call("POST", `/v2/instances/${res.json?.data.run_id}/tags`, {
      body: { tags: { x: "y" } },
    });
    expect(runTags.json?.data.tags).toEqual({ x: "y" });
    await stack.call("DELETE", `/v2/tasks/${uuidOf(res)}`);
  });

  it("keeps input files in S3 and serves them, with paths holding slashes", async () => {
    const res = await submit({
      pool: "wide",
      input_files: [
        { name: "src/app.ts", content: "export const x = 1;\n" },
        { name: "README.md", content: "# hi" },
      ],
    });
    const files = await stack.call("GET", `/v2/tasks/${uuidOf(res)}/files`);
    expect(files.json?.data).toEqual(
      expect.arrayContaining([
        { path: "src/app.ts", is_input: true, size_bytes: 20 },
        { path: "README.md", is_input: true, size_bytes: 4 },
      ]),
    );
    const file = await stack.call("GET", `/v2/tasks/${uuidOf(res)}/files/src/app.ts`);
    expect([file.status, file.text]).toEqual([200, "export const x = 1;\n"]);
    const missing = await stack.call("GET", `/v2/tasks/${uuidOf(res)}/files/nope.txt`);
    expect(missing.status).toBe(404);
    const logs = await stack.call("GET", `/v2/tasks/${uuidOf(res)}/logs`);
    expect([logs.status, logs.headers.get("content-type"), logs.text]).toEqual([
      200,
      "text/plain; charset=utf-8",
      "",
    ]);
    await stack.call("DELETE", `/v2/tasks/${uuidOf(res)}`);
  });
});
