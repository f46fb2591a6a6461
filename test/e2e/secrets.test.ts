/**
 * Pool credentials reach the CLI process of their pool and nothing else: not the worker's own log lines,
 * not the API's, not run records or any other stored item, not S3 objects, not API answers. The one
 * exception is what the CLI itself prints, which a positive control shows would be caught.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { paginateScan } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CAPTURE_FILE_VARIABLE } from "../support/capture-output.ts";
import { FAKE_CLI_PATH, POOL_PER_TOOL_CONFIG } from "../support/fake-clis.ts";
import { startTestStack, type TestStack } from "../support/stack.ts";
import { waitFor } from "../support/wait.ts";

const SECRETS = {
  ANTHROPIC_API_KEY: "sk-ant-api03-S3CR3T-anthropic-0123456789abcdef",
  OPENAI_API_KEY: "sk-proj-S3CR3T-openai-0123456789abcdef",
  GEMINI_API_KEY: "AIzaS3CR3T-gemini-0123456789abcdef",
};
const secretsIn = (text: string) => Object.values(SECRETS).filter((secret) => text.includes(secret));

let stack: TestStack;
let stopped = false;
let captureFile: string;
/** What this process (the API handlers and the tick) writes to stdout and stderr during the test. */
const ownOutput: string[] = [];
const restore: (() => void)[] = [];

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "switchyard-secrets-"));
  captureFile = join(dir, "worker-output.log");
  writeFileSync(captureFile, "");
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
    stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      ownOutput.push(Buffer.from(chunk).toString());
      return write(chunk, ...rest);
    }) as typeof stream.write;
    restore.push(() => {
      stream.write = write as typeof stream.write;
    });
  }
  // The workers log everything they would ever log.
  const level = process.env.POWERTOOLS_LOG_LEVEL;
  process.env.POWERTOOLS_LOG_LEVEL = "DEBUG";
  restore.push(() => {
    if (level === undefined) delete process.env.POWERTOOLS_LOG_LEVEL;
    else process.env.POWERTOOLS_LOG_LEVEL = level;
  });
  stack = await startTestStack(POOL_PER_TOOL_CONFIG, {
    workerEnv: {
      PATH: FAKE_CLI_PATH,
      SWITCHYARD_CREDENTIALS_MAIN: JSON.stringify({ ...SECRETS, FAKE_CLI_STATE_DIR: dir }),
      [CAPTURE_FILE_VARIABLE]: captureFile,
    },
    workerImports: [pathToFileURL(resolve(import.meta.dirname, "../support/capture-output.ts")).href],
  });
});
afterAll(async () => {
  if (!stopped) await stack?.stop();
  for (const undo of restore.reverse()) undo();
});

const submit = (body: object) => stack.submit({ max_attempts: 1, ...body });
const taskOf = async (uuid: string) => (await stack.call("GET", `/v2/tasks/${uuid}`)).json?.data;
const settled = (uuid: string) =>
  waitFor(
    () => taskOf(uuid),
    (t) => ["succeeded", "failed", "canceled"].includes(t?.status),
    40_000,
  );

/** Every API answer about a task: the task, its status, logs, files, events and runs, each run's answers. */
async function answersAbout(uuid: string): Promise<string[]> {
  const paths = [
    `/v2/tasks/${uuid}`,
    `/v2/tasks/${uuid}/status`,
    `/v2/tasks/${uuid}/logs`,
    `/v2/tasks/${uuid}/files`,
    `/v2/tasks/${uuid}/events`,
    `/v2/instances?task_id=${uuid}`,
  ];
  const texts = await Promise.all(paths.map(async (path) => (await stack.call("GET", path)).text));
  const runs = JSON.parse(texts[5] ?? "{}").data?.instances as { run_id: string }[];
  for (const { run_id } of runs ?? []) {
    for (const path of [
      `/v2/instances/${run_id}`,
      `/v2/instances/${run_id}/logs`,
      `/v2/tasks/${uuid}/logs?run_id=${run_id}`,
    ]) {
      texts.push((await stack.call("GET", path)).text);
    }
  }
  for (const file of JSON.parse(texts[3] ?? "{}").data ?? []) {
    texts.push((await stack.call("GET", `/v2/tasks/${uuid}/files/${file.path}`)).text);
  }
  return texts;
}

describe("pool credentials", () => {
  it("never appear in API answers, stored records, S3 objects or any log, unless the CLI printed them", async () => {
    // Work that touches every path a run can take: success with files, failure, timeout, a retry, a
    // rate-limit answer. None of these prompts makes the CLI print its environment.
    const tasks = {
      succeeded: await submit({
        tool: "claude",
        prompt: "[write:out/report.md=# Report] summarize",
        input_files: [{ name: "src/main.ts", content: "console.log(1)" }],
        output_files: ["out/report.md"],
      }),
      // A log past 4,000 characters goes to S3 (shorter ones stay on the run record): both are scanned.
      failed: await submit({ tool: "codex", prompt: "[noise:5000] [exit:3] go" }),
      timedOut: await submit({ tool: "gemini", prompt: "[sleep:60] go", timeout: 2 }),
      retried: await submit({ tool: "claude", prompt: "[fail-first:secrets-retry] go", max_attempts: 2 }),
      rateLimited: await submit({ tool: "codex", prompt: "[ratelimit] go" }),
    };
    for (const name of ["succeeded", "failed", "timedOut", "retried"] as const) {
      const done = await settled(tasks[name]);
      expect([name, done.status]).toEqual([
        name,
        name === "succeeded" || name === "retried" ? "succeeded" : "failed",
      ]);
    }
    await waitFor(
      async () =>
        (await stack.call("GET", `/v2/instances?task_id=${tasks.rateLimited}`)).json?.data.instances,
      (runs) => runs?.some((r: { status: string }) => r.status === "failed"),
      30_000,
    );
    await stack.call("DELETE", `/v2/tasks/${tasks.rateLimited}`);

    for (const [name, uuid] of Object.entries(tasks)) {
      for (const text of await answersAbout(uuid)) expect([name, secretsIn(text)]).toEqual([name, []]);
    }
    for (const path of [
      "/v2/tasks?size=100",
      "/v2/instances?size=100",
      "/v2/dispatcher/status",
      "/v2/health",
    ]) {
      expect([path, secretsIn((await stack.call("GET", path)).text)]).toEqual([path, []]);
    }

    // The positive control: a CLI that prints its environment does put the secret in its own output,
    // where this test would see it. Only that task's records hold it.
    const control = await submit({
      tool: "claude",
      prompt: "[echo-env:ANTHROPIC_API_KEY] [echo-env:OPENAI_API_KEY] go",
    });
    expect((await settled(control)).status).toBe("succeeded");
    const controlAnswers = (await answersAbout(control)).join("\n");
    expect(secretsIn(controlAnswers)).toEqual([SECRETS.ANTHROPIC_API_KEY, SECRETS.OPENAI_API_KEY]);

    // Every item of the table and every object of the bucket, but the control task's.
    const items: Record<string, unknown>[] = [];
    for await (const page of paginateScan(
      { client: stack.clients.doc },
      { TableName: stack.resources.tableName },
    )) {
      items.push(...(page.Items ?? []));
    }
    const controlItems = items.filter((item) => item.pk === `TASK#${control}`);
    expect(secretsIn(JSON.stringify(controlItems))).not.toEqual([]);
    const leaking = items.filter(
      (item) => item.pk !== `TASK#${control}` && secretsIn(JSON.stringify(item)).length,
    );
    expect(leaking.map((item) => `${item.pk} ${item.sk}`)).toEqual([]);
    expect(items.filter((item) => String(item.sk).startsWith("RUN#")).length).toBeGreaterThanOrEqual(7);

    const listed = await stack.clients.s3.send(
      new ListObjectsV2Command({ Bucket: stack.resources.bucketName }),
    );
    const keys = (listed.Contents ?? []).map((object) => object.Key ?? "");
    expect(keys.some((key) => key.startsWith("logs/"))).toBe(true);
    for (const key of keys) {
      const object = await stack.clients.s3.send(
        new GetObjectCommand({ Bucket: stack.resources.bucketName, Key: key }),
      );
      const text = (await object.Body?.transformToString()) ?? "";
      if (key.includes(control)) continue;
      expect([key, secretsIn(text)]).toEqual([key, []]);
    }

    // Stop with a job running, so that the workers log their drain; then read what they wrote.
    const running = await submit({ tool: "gemini", prompt: "[sleep:60] go" });
    await waitFor(
      () => taskOf(running),
      (t) => t?.status === "running",
      20_000,
    );
    stopped = true;
    await stack.stop();
    const workerOutput = readFileSync(captureFile, "utf8");
    expect(workerOutput).toMatch(/\[capture\] worker process \d+ started/);
    expect(workerOutput).toContain('"stopping: handing back unfinished runs"');
    expect(secretsIn(workerOutput)).toEqual([]);
    expect(secretsIn(ownOutput.join(""))).toEqual([]);
  }, 150_000);
});
