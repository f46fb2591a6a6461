import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, inject } from "vitest";
import { localClients } from "../../local/aws-clients.ts";
import { type LocalStack, type LocalStackOptions, startLocalStack } from "../../local/stack.ts";

export interface TestStack extends LocalStack {
  /** One HTTP call to the stack; `key` defaults to the admin key (pass null for none). */
  call(
    method: string,
    path: string,
    options?: { key?: string | null; body?: unknown; raw?: string },
  ): Promise<ApiAnswer>;
  /** Submits a task (the admin key unless `key`), expecting a 201; its uuid. */
  submit(body: object, key?: string): Promise<string>;
  clients: ReturnType<typeof localClients>;
  /** The config file the stack reads (and a reload reads again). */
  configPath: string;
}

export interface ApiAnswer {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed envelope (undefined for non-JSON answers). */
  // biome-ignore lint/suspicious/noExplicitAny: tests read answers field by field and assert each one.
  json: { code: string; message: string; success: boolean; data: any } | undefined;
}

/**
 * A whole local stack on the shared emulators, with its own table, queues and bucket, serving HTTP
 * on a free port. `config` is the scheduler.config.yaml text.
 */
export async function startTestStack(
  config: string,
  options: Pick<
    LocalStackOptions,
    | "workers"
    | "workerEnv"
    | "workerImports"
    | "callbackSecret"
    | "callbackRetrySeconds"
    | "allowLoopbackCallbacks"
    | "configRefreshSeconds"
  > = {},
): Promise<TestStack> {
  const endpoints = inject("emulators");
  const id = randomBytes(4).toString("hex");
  const dir = mkdtempSync(join(tmpdir(), "switchyard-e2e-"));
  writeFileSync(join(dir, "scheduler.config.yaml"), config);
  const names = {
    table: `sy-${id}`,
    bucket: `sy-${id}`,
    topic: `sy-${id}`,
    queue: (pool: string) => `sy-${id}-${pool}.fifo`,
  };
  const quiet = { info: () => undefined, warn: () => undefined, error: console.error };
  const stack = await startLocalStack({
    port: 0,
    endpoints,
    names,
    configPath: join(dir, "scheduler.config.yaml"),
    adminKey: `admin-${id}`,
    ...options,
    log: quiet,
  });
  const clients = localClients(endpoints);
  const test: TestStack = {
    ...stack,
    clients,
    configPath: join(dir, "scheduler.config.yaml"),
    async submit(body, key) {
      const res = await test.call("POST", "/v2/tasks", { body, key });
      expect(res.status, res.text).toBe(201);
      return res.json?.data.uuid as string;
    },
    async call(method, path, { key, body, raw } = {}) {
      const headers: Record<string, string> = {};
      const apiKey = key === undefined ? stack.adminKey : key;
      if (apiKey !== null) headers.authorization = `Bearer ${apiKey}`;
      if (body !== undefined || raw !== undefined) headers["content-type"] = "application/json";
      const res = await fetch(`${stack.url}${path}`, {
        method,
        headers,
        body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
      });
      const text = await res.text();
      let json: ApiAnswer["json"];
      if (res.headers.get("content-type")?.includes("application/json")) json = JSON.parse(text);
      return { status: res.status, headers: res.headers, text, json };
    },
  };
  return test;
}
