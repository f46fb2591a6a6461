/**
 * Fault injection for the local stack and tests, never for AWS: an SDK middleware that fails or kills the
 * process at chosen AWS requests. Rules come from SWITCHYARD_FAULTS (JSON) and SWITCHYARD_CRASH_AT (a
 * named crash point). Faults are placed before the SDK's own retries, so each one reaches the code.
 */
import { appendFileSync, existsSync, writeFileSync } from "node:fs";
import type {
  HandlerExecutionContext,
  InitializeHandler,
  InitializeHandlerArguments,
  InitializeHandlerOutput,
  MetadataBearer,
} from "@smithy/types";
import * as z from "zod";
import { middlewareStacks } from "./sdk-middleware.ts";

export const FAULT_ENV = {
  rules: "SWITCHYARD_FAULTS",
  crashAt: "SWITCHYARD_CRASH_AT",
  /** A file: a crash point fires only while it does not exist, and creates it (once across restarts). */
  crashMark: "SWITCHYARD_CRASH_MARK",
  /** A file each injected fault is appended to (`service operation fault`), for observers. */
  log: "SWITCHYARD_FAULTS_LOG",
} as const;

const FAULTS = ["throttling", "conflict", "timeout", "server", "crash"] as const;
export type Fault = (typeof FAULTS)[number];

const ruleSchema = z.strictObject({
  /** The SDK client's service: DynamoDB, SQS, S3, SNS. */
  service: z.string(),
  /** The operation, e.g. TransactWriteItems; absent: any. */
  operation: z.string().optional(),
  /** Only requests whose input mentions this text (a key prefix such as `POOL#`). */
  touches: z.string().optional(),
  fault: z.enum(FAULTS),
  /** `after`: the request is sent and applied, then the caller sees the fault (a timeout that wrote). */
  when: z.enum(["before", "after"]).default("before"),
  /** Matching requests let through before the rule starts. */
  skip: z.number().int().min(0).default(0),
  /** Faults injected at most; absent: no limit. */
  count: z.number().int().min(1).optional(),
  /** The chance that a matching request gets the fault. */
  rate: z.number().min(0).max(1).default(1),
});
export type FaultRule = z.input<typeof ruleSchema>;
type Rule = z.output<typeof ruleSchema>;

/**
 * The named crash points: the first request past each point (any of its rules). A worker's settle is the
 * first transaction that gives a pool slot back; its delete (of one message, or of a receive's batch)
 * follows its claim; an admission's send follows its transaction; a tick's second write is the middle of
 * a tick that has two tasks to handle.
 */
export const CRASH_POINTS: Record<string, FaultRule[]> = {
  "after-cli": [{ service: "DynamoDB", operation: "TransactWriteItems", touches: "POOL#", fault: "crash" }],
  "after-claim": [
    { service: "SQS", operation: "DeleteMessage", fault: "crash" },
    { service: "SQS", operation: "DeleteMessageBatch", fault: "crash" },
  ],
  "before-send": [{ service: "SQS", operation: "SendMessage", fault: "crash" }],
  "mid-tick": [{ service: "DynamoDB", operation: "TransactWriteItems", skip: 1, fault: "crash" }],
};

/** The rules an environment asks for; a wrong rule stops the process at start rather than test nothing. */
export function faultRulesFrom(env: NodeJS.ProcessEnv): FaultRule[] {
  const json = env[FAULT_ENV.rules];
  const rules: FaultRule[] = json ? z.array(ruleSchema).parse(JSON.parse(json)) : [];
  const point = env[FAULT_ENV.crashAt];
  if (!point) return rules;
  const crash = CRASH_POINTS[point];
  if (!crash) throw new Error(`${FAULT_ENV.crashAt}: no crash point ${point} (${Object.keys(CRASH_POINTS)})`);
  return [...rules, ...crash.map((rule) => ({ ...rule, count: 1 }))];
}

/** The error an SDK call fails with, shaped as the SDK shapes it (name, $fault, $metadata). */
function sdkError(fault: Exclude<Fault, "crash">, service: string): Error {
  const [name, status, message] = {
    throttling: [
      service === "DynamoDB" ? "ProvisionedThroughputExceededException" : "ThrottlingException",
      400,
      "Rate exceeded",
    ],
    conflict: ["TransactionCanceledException", 400, "Transaction cancelled [TransactionConflict]"],
    timeout: ["TimeoutError", 0, "socket timed out (injected)"],
    server: ["InternalServerError", 500, "Internal server error (injected)"],
  }[fault] as [string, number, string];
  const error = Object.assign(new Error(message), {
    name,
    $fault: status >= 500 ? "server" : "client",
    $metadata: { httpStatusCode: status || undefined, attempts: 1 },
    injected: true,
  });
  if (fault === "conflict") Object.assign(error, { CancellationReasons: [{ Code: "TransactionConflict" }] });
  return error;
}

export class FaultInjector {
  readonly #rules: { rule: Rule; seen: number; injected: number }[];

  constructor(
    rules: FaultRule[],
    private readonly random: () => number = Math.random,
    private readonly crashMark?: string,
    private readonly log?: string,
  ) {
    this.#rules = rules.map((rule) => ({ rule: ruleSchema.parse(rule), seen: 0, injected: 0 }));
  }

  /** The fault a request gets, if any (each matching rule counts the request). */
  #faultFor(service: string, operation: string, input: unknown): Rule | undefined {
    const text = this.#rules.some(({ rule }) => rule.touches) ? JSON.stringify(input) : "";
    for (const entry of this.#rules) {
      const { rule } = entry;
      if (rule.service !== service || (rule.operation && rule.operation !== operation)) continue;
      if (rule.touches && !text.includes(rule.touches)) continue;
      if (entry.seen++ < rule.skip) continue;
      if (rule.count !== undefined && entry.injected >= rule.count) continue;
      if (this.random() >= rule.rate) continue;
      entry.injected++;
      return rule;
    }
    return undefined;
  }

  #inject(rule: Rule, service: string, operation: string): never {
    if (this.log) appendFileSync(this.log, `${service} ${operation} ${rule.fault}\n`);
    if (rule.fault === "crash") {
      if (this.crashMark) writeFileSync(this.crashMark, `${service} ${operation}\n`);
      // Dies here, as a killed process does: no handler, no finally, nothing after this request.
      process.kill(process.pid, "SIGKILL");
      throw new Error("killed");
    }
    throw sdkError(rule.fault, service);
  }

  middleware() {
    return <Output extends MetadataBearer>(
      next: InitializeHandler<object, Output>,
      context: HandlerExecutionContext,
    ) =>
      async (args: InitializeHandlerArguments<object>): Promise<InitializeHandlerOutput<Output>> => {
        const service = (context.clientName ?? "?").replace(/Client$/, "");
        const operation = (context.commandName ?? "?").replace(/Command$/, "");
        const rule = this.#faultFor(service, operation, args.input);
        if (!rule) return next(args);
        if (rule.when === "before") this.#inject(rule, service, operation);
        await next(args);
        this.#inject(rule, service, operation);
      };
  }

  /** Adds the middleware to each client (once to clients that share a stack). */
  attach(clients: Iterable<unknown>): void {
    for (const stack of middlewareStacks(clients)) {
      stack.add(this.middleware(), { step: "initialize", name: "switchyardFaults", priority: "high" });
    }
  }
}

/**
 * A fault injector for this process's environment, or undefined when it asks for none. `crashes: false`
 * leaves out crash rules and points: for a process that serves others (the local stack itself).
 */
export function faultInjectorFrom(
  env: NodeJS.ProcessEnv = process.env,
  { crashes = true }: { crashes?: boolean } = {},
): FaultInjector | undefined {
  const rules = faultRulesFrom(crashes ? env : { ...env, [FAULT_ENV.crashAt]: undefined }).filter(
    (rule) => crashes || rule.fault !== "crash",
  );
  if (rules.length === 0) return undefined;
  const mark = env[FAULT_ENV.crashMark];
  // A crash point already passed (its mark exists) is not armed again after the restart.
  const armed = mark && existsSync(mark) ? rules.filter((r) => r.fault !== "crash") : rules;
  return new FaultInjector(armed, Math.random, mark, env[FAULT_ENV.log]);
}
