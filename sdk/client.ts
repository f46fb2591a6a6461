/**
 * The typed client of the Switchyard API: one `call` per operation of sdk/operations.ts, with retries on
 * 429 and 5xx (honouring Retry-After), an idempotency key on every submit (so that a retried submit never
 * makes two tasks), `waitFor` and paged iteration. It runs in Node and in browsers (the dashboard).
 */
import { type TaskStatus, TERMINAL_STATUSES } from "../core/status.ts";
import type { TaskView } from "../core/views.ts";
import { type Beside, type Input, OPERATIONS, type OperationId, type Output } from "./operations.ts";

export interface ClientOptions {
  /** The API's base URL: `http://localhost:3000` locally, the stage's URL on AWS. */
  url: string;
  /** An API key (a tenant's, or the admin key). */
  key?: string;
  /** Tries of a request that fails with 429, 5xx or a network error, the first included (default 5). */
  attempts?: number;
  /** The first backoff, doubled at each retry, jittered; a Retry-After overrides it (default 250 ms). */
  backoffMs?: number;
  /** Replaces `fetch` (tests, proxies). */
  fetch?: typeof fetch;
}

/** An error answer of the API: its HTTP status, its code (ERROR_CODES) and its message. */
export class SwitchyardError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = "SwitchyardError";
  }
}

const RETRYABLE = (status: number) => status === 429 || status >= 500;
const MAX_BACKOFF_MS = 30_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A path with its parameters filled in; a greedy `{name+}` keeps its slashes. */
function fillPath(template: string, params: Record<string, unknown>): string {
  return template.replace(/\{(\w+)(\+?)\}/g, (_, name: string, greedy: string) => {
    const value = params[name];
    if (typeof value !== "string" || value === "") throw new TypeError(`${name}: required`);
    return greedy ? value.split("/").map(encodeURIComponent).join("/") : encodeURIComponent(value);
  });
}

function queryString(query: Record<string, unknown> | undefined): string {
  const entries = Object.entries(query ?? {}).filter(([, v]) => v !== undefined && v !== null);
  return entries.length === 0 ? "" : `?${new URLSearchParams(entries.map(([k, v]) => [k, String(v)]))}`;
}

export class SwitchyardClient {
  readonly #url: string;
  readonly #key: string | undefined;
  readonly #attempts: number;
  readonly #backoffMs: number;
  readonly #fetch: typeof fetch;

  constructor(options: ClientOptions) {
    this.#url = options.url.replace(/\/+$/, "");
    this.#key = options.key;
    this.#attempts = Math.max(1, options.attempts ?? 5);
    this.#backoffMs = options.backoffMs ?? 250;
    // Bound: a browser refuses a `fetch` called as another object's method.
    this.#fetch = options.fetch ?? fetch.bind(globalThis);
  }

  /** Calls one operation; answers the envelope's `data` (a string for logs, bytes for a file). */
  async call<Op extends OperationId>(operation: Op, input: Input<Op>): Promise<Output<Op>> {
    return (await this.#answer(await this.#send(operation, input))) as Output<Op>;
  }

  /** Calls one operation that answers fields beside `data` (Route.beside); answers the whole envelope. */
  async envelope<Op extends OperationId>(
    operation: Op,
    input: Input<Op>,
  ): Promise<{ data: Output<Op> } & Beside<Op>> {
    return (await (await this.#send(operation, input)).json()) as { data: Output<Op> } & Beside<Op>;
  }

  /** Sends one operation's request, tried again on 429, 5xx and network errors; its successful answer. */
  async #send<Op extends OperationId>(operation: Op, input: Input<Op>): Promise<Response> {
    const [method, template] = OPERATIONS[operation];
    const args = input as { query?: Record<string, unknown>; body?: unknown } & Record<string, unknown>;
    const body =
      operation === "tasks.submit"
        ? { idempotency_key: crypto.randomUUID(), ...(args.body as object) }
        : (args.body ?? (method === "POST" ? {} : undefined));
    const url = `${this.#url}${fillPath(template, args)}${queryString(args.query)}`;
    // A submit is safe to retry once it has an idempotency key; other writes are idempotent or conditional.
    for (let attempt = 1; ; attempt++) {
      let response: Response;
      try {
        response = await this.#fetch(url, {
          method,
          headers: {
            ...(this.#key && { authorization: `Bearer ${this.#key}` }),
            ...(body !== undefined && { "content-type": "application/json" }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (err) {
        if (attempt >= this.#attempts) throw err;
        await sleep(this.#backoff(attempt));
        continue;
      }
      if (response.ok) return response;
      const error = await errorOf(response);
      if (!RETRYABLE(response.status) || attempt >= this.#attempts) throw error;
      await sleep(
        error.retryAfterSeconds !== undefined ? error.retryAfterSeconds * 1000 : this.#backoff(attempt),
      );
    }
  }

  /** Submits a task; answers its uuid, run id and status. */
  submit(body: Input<"tasks.submit">["body"]) {
    return this.call("tasks.submit", { body });
  }

  getTask(uuid: string) {
    return this.call("tasks.get", { uuid });
  }

  /**
   * Polls a task until its status is one of `statuses` (default: any terminal one), and answers it.
   * Throws after `timeoutMs` (default: no limit).
   */
  async waitFor(
    uuid: string,
    statuses: readonly TaskStatus[] = TERMINAL_STATUSES,
    { intervalMs = 1000, timeoutMs = Number.POSITIVE_INFINITY, onStatus = (_: TaskView) => {} } = {},
  ): Promise<TaskView> {
    const deadline = Date.now() + timeoutMs;
    let last: string | undefined;
    for (;;) {
      const task = await this.getTask(uuid);
      if (task.status !== last) onStatus(task);
      last = task.status;
      if (statuses.includes(task.status)) return task;
      if (Date.now() + intervalMs > deadline) {
        throw new Error(`task ${uuid} is still ${task.status} after ${timeoutMs} ms`);
      }
      await sleep(intervalMs);
    }
  }

  /** Every item of a paged list, page after page: `for await (const task of client.pages("tasks.list", "tasks"))`. */
  async *pages<Op extends PagedOperation, Field extends ItemField<Op>>(
    operation: Op,
    field: Field,
    input = {} as Input<Op>,
  ): AsyncGenerator<ItemOf<Op, Field>> {
    const args = input as { query?: Record<string, unknown> };
    let cursor: string | undefined;
    do {
      const query = { ...args.query, ...(cursor && { cursor }) };
      const page = (await this.call(operation, { ...(input as object), query } as Input<Op>)) as Record<
        string,
        unknown
      >;
      for (const item of (page[field as string] as ItemOf<Op, Field>[]) ?? []) yield item;
      cursor = (page.next_cursor as string | null) ?? undefined;
    } while (cursor);
  }

  #backoff(attempt: number): number {
    const ms = Math.min(MAX_BACKOFF_MS, this.#backoffMs * 2 ** (attempt - 1));
    return ms / 2 + Math.random() * (ms / 2);
  }

  async #answer(response: Response): Promise<unknown> {
    const type = response.headers.get("content-type") ?? "";
    if (type.startsWith("application/octet-stream")) return new Uint8Array(await response.arrayBuffer());
    if (!type.includes("application/json")) return response.text();
    const json = (await response.json()) as { success?: boolean; data?: unknown };
    return json.success === true ? json.data : json;
  }
}

type PagedOperation = {
  [Op in OperationId]: Output<Op> extends { next_cursor: string | null } ? Op : never;
}[OperationId];
type ItemField<Op extends PagedOperation> = Exclude<keyof Output<Op>, "total" | "next_cursor">;
type ItemOf<Op extends PagedOperation, Field extends ItemField<Op>> = Output<Op>[Field] extends (infer Item)[]
  ? Item
  : never;

async function errorOf(response: Response): Promise<SwitchyardError> {
  const retryAfter = Number(response.headers.get("retry-after") ?? Number.NaN);
  const text = await response.text();
  let code = String(response.status);
  let message = text || response.statusText;
  try {
    const json = JSON.parse(text) as { code?: string; message?: string };
    code = json.code ?? code;
    message = json.message ?? message;
  } catch {
    // not an envelope (a proxy's answer): the status and text stand
  }
  return new SwitchyardError(
    response.status,
    code,
    message,
    Number.isFinite(retryAfter) ? retryAfter : undefined,
  );
}
