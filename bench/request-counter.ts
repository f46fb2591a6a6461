/**
 * Counts the AWS requests a process makes, by service, operation and what they touch, with the DynamoDB
 * capacity units each one consumed. An SDK middleware the benchmark adds (bench/run.ts to the local
 * stack's clients, bench/worker-counter.ts to the worker's).
 */
import type {
  BuildHandler,
  BuildHandlerArguments,
  BuildHandlerOutput,
  HandlerExecutionContext,
  InitializeHandler,
  InitializeHandlerArguments,
  InitializeHandlerOutput,
  MetadataBearer,
} from "@smithy/types";
import { middlewareStacks } from "../local/sdk-middleware.ts";

/** What one kind of request added up to. */
export interface RequestCount {
  service: string;
  operation: string;
  /** What it touched: the DynamoDB entity kinds (TASK, RUN, POOL…) or index, or `empty` for a receive that got nothing. */
  detail: string;
  /** HTTP requests sent (every attempt is billed), including those that failed. */
  requests: number;
  /** Of which answered with an error (e.g. a failed condition). */
  errors: number;
  /** DynamoDB capacity units the answers reported (ReturnConsumedCapacity: TOTAL). */
  rcu: number;
  wcu: number;
  /** Messages: received (SQS), or sent in a batch (SNS PublishBatch, SQS *Batch): SNS bills each one. */
  messages: number;
  /** Wall time spent waiting for the answers, in milliseconds. */
  ms: number;
}

/** Counts by `service operation detail`; plain JSON, so that a worker process can write it to a file. */
export type Tally = Record<string, RequestCount>;

/**
 * A DynamoDB write that succeeded, as sent (marshalled), with its tally key and when it was sent. DynamoDB
 * Local misreports the capacity of transactions, so the benchmark replays these one item at a time on a
 * table of its own, which reports what each item write and its index updates cost (bench/capacity.ts).
 */
export interface RecordedWrite {
  /** Epoch milliseconds, comparable across processes on one machine. */
  at: number;
  key: string;
  operation: string;
  input: Loose;
}

/** Writes kept between two takeWrites() calls at most; later ones are dropped and flagged. */
const MAX_RECORDED_WRITES = 5_000;
const WRITES = new Set(["PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"]);

type Loose = Record<string, unknown>;

const MIN_READ_UNITS = 0.5;
const READS = new Set(["GetItem", "BatchGetItem", "TransactGetItems", "Query", "Scan"]);
const WITH_CAPACITY = new Set([
  ...READS,
  "PutItem",
  "UpdateItem",
  "DeleteItem",
  "BatchWriteItem",
  "TransactWriteItems",
]);

/** The entity kind of a DynamoDB key or item: its sort key's prefix (`RUN#…` → RUN, `TASK` → TASK). */
function entityOf(keyOrItem: unknown): string {
  const sk = (keyOrItem as Loose | undefined)?.sk;
  const value = typeof sk === "string" ? sk : (sk as { S?: string } | undefined)?.S;
  return value?.split("#")[0] ?? "?";
}

function detailOf(service: string, operation: string, input: Loose, output: Loose | undefined): string {
  if (service === "DynamoDB") {
    if (operation === "Query" || operation === "Scan") return `index ${input.IndexName ?? "(table)"}`;
    if (operation === "TransactWriteItems") {
      const items = (input.TransactItems as Loose[] | undefined) ?? [];
      return items
        .map((item) => {
          const [kind, action] = Object.entries(item)[0] ?? ["?", {}];
          const target = action as Loose;
          return `${kind}:${entityOf(target.Key ?? target.Item)}`;
        })
        .join("+");
    }
    if ("Key" in input || "Item" in input) return entityOf(input.Key ?? input.Item);
  }
  if (service === "SQS" && operation === "ReceiveMessage") {
    return output === undefined ? "" : (output.Messages as unknown[] | undefined)?.length ? "hit" : "empty";
  }
  return "";
}

/** Messages received, or carried by a batch request; 1 for a single publish or send. */
function messagesOf(input: Loose, output: Loose): number {
  if (Array.isArray(output.Messages)) return output.Messages.length;
  const entries = input.PublishBatchRequestEntries ?? input.Entries;
  if (Array.isArray(entries)) return entries.length;
  return 0;
}

function capacityOf(output: Loose | undefined): number {
  const consumed = output?.ConsumedCapacity as Loose | Loose[] | undefined;
  const list = Array.isArray(consumed) ? consumed : consumed ? [consumed] : [];
  return list.reduce((sum, c) => sum + (Number(c.CapacityUnits) || 0), 0);
}

/** Records each request into a Tally. */
export class RequestCounter {
  readonly tally: Tally = {};
  private writes: RecordedWrite[] = [];
  private droppedWrites = 0;

  record(
    service: string,
    operation: string,
    detail: string,
    r: { attempts: number; failed: boolean; capacity: number; messages: number; ms: number },
  ) {
    const key = [service, operation, detail].filter(Boolean).join(" ");
    const count = this.tally[key] ?? {
      service,
      operation,
      detail,
      requests: 0,
      errors: 0,
      rcu: 0,
      wcu: 0,
      messages: 0,
      ms: 0,
    };
    this.tally[key] = count;
    count.requests += r.attempts;
    count.errors += r.failed ? 1 : 0;
    // DynamoDB bills a read request at least 0.5 RRU, one that finds nothing too; DynamoDB Local reports 0.
    if (READS.has(operation)) count.rcu += r.failed ? r.capacity : Math.max(r.capacity, MIN_READ_UNITS);
    else count.wcu += r.capacity;
    count.messages += r.messages;
    count.ms += r.ms;
  }

  /** A copy of the counts so far. */
  snapshot(): Tally {
    return structuredClone(this.tally);
  }

  /** The DynamoDB writes recorded since the last call (and how many were dropped past the cap). */
  takeWrites(): { writes: RecordedWrite[]; dropped: number } {
    const out = { writes: this.writes, dropped: this.droppedWrites };
    this.writes = [];
    this.droppedWrites = 0;
    return out;
  }

  /** Build step: the input is marshalled by now. Keeps each DynamoDB write that succeeds. */
  recorder() {
    return <Output extends MetadataBearer>(
      next: BuildHandler<object, Output>,
      context: HandlerExecutionContext,
    ) =>
      async (args: BuildHandlerArguments<object>): Promise<BuildHandlerOutput<Output>> => {
        const operation = (context.commandName ?? "").replace(/Command$/, "");
        const at = performance.timeOrigin + performance.now();
        const result = await next(args);
        if (context.clientName === "DynamoDBClient" && WRITES.has(operation)) {
          if (this.writes.length >= MAX_RECORDED_WRITES) this.droppedWrites++;
          else {
            const input = args.input as Loose;
            const key = ["DynamoDB", operation, detailOf("DynamoDB", operation, input, undefined)].join(" ");
            this.writes.push({ at, key, operation, input });
          }
        }
        return result;
      };
  }

  /** The middleware: counts every request of a client, and asks DynamoDB for the capacity consumed. */
  middleware() {
    return <Output extends MetadataBearer>(
      next: InitializeHandler<object, Output>,
      context: HandlerExecutionContext,
    ) =>
      async (args: InitializeHandlerArguments<object>): Promise<InitializeHandlerOutput<Output>> => {
        const service = (context.clientName ?? "?").replace(/Client$/, "");
        const operation = (context.commandName ?? "?").replace(/Command$/, "");
        const input = args.input as Loose;
        const started = performance.now();
        if (service === "DynamoDB" && WITH_CAPACITY.has(operation)) {
          args = { ...args, input: { ...input, ReturnConsumedCapacity: "TOTAL" } };
        }
        try {
          const result = await next(args);
          const output = result.output as unknown as Loose;
          this.record(service, operation, detailOf(service, operation, input, output), {
            attempts: result.output.$metadata.attempts ?? 1,
            failed: false,
            capacity: capacityOf(output),
            messages: messagesOf(input, output),
            ms: performance.now() - started,
          });
          return result;
        } catch (err) {
          const metadata = (err as { $metadata?: { attempts?: number } }).$metadata;
          this.record(service, operation, detailOf(service, operation, input, undefined), {
            attempts: metadata?.attempts ?? 1,
            failed: true,
            capacity: 0,
            messages: 0,
            ms: performance.now() - started,
          });
          throw err;
        }
      };
  }

  /** Adds the middleware to each client (once to clients that share a stack: they are counted once). */
  attach(clients: Iterable<unknown>): void {
    for (const stack of middlewareStacks(clients)) {
      stack.add(this.middleware(), {
        step: "initialize",
        name: "switchyardRequestCounter",
        priority: "high",
      });
      stack.add(this.recorder(), { step: "build", name: "switchyardWriteRecorder", priority: "low" });
    }
  }
}

/** b − a, per kind of request (kinds absent from a count from zero). */
export function diffTally(after: Tally, before: Tally): Tally {
  const out: Tally = {};
  for (const [key, a] of Object.entries(after)) {
    const b = before[key];
    const d: RequestCount = {
      ...a,
      requests: a.requests - (b?.requests ?? 0),
      errors: a.errors - (b?.errors ?? 0),
      rcu: a.rcu - (b?.rcu ?? 0),
      wcu: a.wcu - (b?.wcu ?? 0),
      messages: a.messages - (b?.messages ?? 0),
      ms: a.ms - (b?.ms ?? 0),
    };
    if (d.requests !== 0) out[key] = d;
  }
  return out;
}

/** The sum of several tallies. */
export function sumTallies(tallies: Tally[]): Tally {
  const out: Tally = {};
  for (const tally of tallies) {
    for (const [key, c] of Object.entries(tally)) {
      const o = out[key] ?? { ...c, requests: 0, errors: 0, rcu: 0, wcu: 0, messages: 0, ms: 0 };
      out[key] = o;
      o.requests += c.requests;
      o.errors += c.errors;
      o.rcu += c.rcu;
      o.wcu += c.wcu;
      o.messages += c.messages;
      o.ms += c.ms;
    }
  }
  return out;
}
