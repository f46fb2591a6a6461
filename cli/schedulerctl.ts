/**
 * `schedulerctl`: the command-line client. Every command is one or more operations of the API through the
 * SDK (sdk/client.ts); COVERAGE says which, and a test holds it to the route table.
 *
 * Exit codes: 0 done (a waited task succeeded); 1 the task failed or was canceled, or something was not
 * found or refused; 2 a usage or configuration error (a bad flag, no key, a key the API refuses).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, isAbsolute, relative, resolve } from "node:path";
import { Command, CommanderError, Option } from "commander";
import { load } from "js-yaml";
import { WebSocket } from "ws";
import type { DomainEvent } from "../core/events.ts";
import { ENV } from "../core/names.ts";
import { type TaskStatus, TERMINAL_STATUSES } from "../core/status.ts";
import type { TaskView } from "../core/views.ts";
import { yamlProblem } from "../core/yaml.ts";
import { SwitchyardClient, SwitchyardError } from "../sdk/client.ts";
import type { Input, OperationId } from "../sdk/operations.ts";
import { connection, ENV_KEY, UsageError } from "./config.ts";

/** Where `workers serve` finds the worker's key. */
const ENV_WORKER_KEY = ENV.workerKey;

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
  /** Whether stdout is a terminal: live status lines instead of one line per change. */
  tty: boolean;
}

/** The API operations each command calls: every operation has a command. */
export const COVERAGE: Record<string, OperationId[]> = {
  enqueue: ["tasks.submit", "tasks.get"],
  list: ["tasks.list"],
  accounts: ["tasks.accountTasks"],
  get: ["tasks.get"],
  status: ["tasks.status", "pools.status"],
  logs: ["tasks.log", "tasks.get", "instances.list"],
  cancel: ["tasks.cancel"],
  pause: ["tasks.pause"],
  resume: ["tasks.resume"],
  reorder: ["tasks.reorder"],
  tag: ["tasks.mergeTags"],
  events: ["tasks.events"],
  files: ["tasks.files", "tasks.file"],
  "runs list": ["instances.list"],
  "runs get": ["instances.get"],
  "runs status": ["instances.status"],
  "runs logs": ["instances.log"],
  "runs tag": ["instances.mergeTags"],
  "pools list": ["pools.list"],
  "pools get": ["pools.get"],
  queues: ["pools.queues", "pools.queue"],
  policies: ["pools.policies", "pools.policys"],
  reload: ["pools.reload"],
  slas: ["pools.slas"],
  "pools pause": ["pools.pause"],
  "pools resume": ["pools.resume"],
  "tool-accounts list": ["pools.toolAccounts"],
  "tool-accounts clear": ["pools.clearToolAccount"],
  "tool-accounts disable": ["pools.disableToolAccount"],
  "workers list": ["workers.list"],
  "workers register": ["workers.register"],
  "workers drain": ["workers.drain"],
  "workers serve": [
    "workers.report",
    "workers.claim",
    "workers.lease",
    "workers.settle",
    "workers.release",
    "workers.uploads",
  ],
  "dispatcher start": ["pools.startDispatcher"],
  "dispatcher stop": ["pools.stopDispatcher"],
  "dispatcher status": ["pools.dispatcher"],
  "workflows create": ["workflows.create"],
  "workflows list": ["workflows.list"],
  "workflows get": ["workflows.tasks"],
  "workflows add-task": ["workflows.addTask"],
  "workflows delete-task": ["workflows.deleteTask"],
  "workflows add-edge": ["workflows.addEdge"],
  "workflows delete-edge": ["workflows.deleteEdge"],
  "workflows run": ["workflows.run"],
  "workflows status": ["workflows.getRun"],
  "workflows runs": ["workflows.runs"],
  "workflows cancel": ["workflows.cancelRun"],
  "templates create": ["templates.create"],
  "templates update": ["templates.update"],
  "templates list": ["templates.list"],
  "templates get": ["templates.get"],
  "templates render": ["templates.render"],
  "tenants create": ["tenants.create"],
  "tenants list": ["tenants.list"],
  "tenants keys": ["tenants.listKeys"],
  "tenants add-key": ["tenants.addKey"],
  "tenants revoke": ["tenants.revokeKey"],
  "tenants budget": ["tenants.patch"],
  "tenants weight": ["tenants.patch"],
  usage: ["tenants.usage"],
  health: ["health.report"],
  openapi: ["health.apiDocument"],
};

const FAILED: readonly TaskStatus[] = ["failed", "canceled"];

/** The exit code of a command that waited for a task: 0 done, 1 failed or canceled. */
const exitFor = (task: TaskView) => (FAILED.includes(task.status) ? 1 : 0);

/** `k=v` pairs into an object (repeatable `--tag`). */
function pairs(values: string[], flag: string): Record<string, string> {
  return Object.fromEntries(
    values.map((pair) => {
      const at = pair.indexOf("=");
      if (at <= 0) throw new UsageError(`${flag} ${pair}: write it as key=value`);
      return [pair.slice(0, at), pair.slice(at + 1)];
    }),
  );
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** A flag's text, or the contents of the file `@path` names. */
const textOrFile = (value: string) => (value.startsWith("@") ? readFileSync(value.slice(1), "utf8") : value);

/** A whole number flag, or a UsageError naming it. */
const integer = (flag: string) => (value: string) => {
  if (!/^-?\d+$/.test(value)) throw new UsageError(`${flag} ${value}: expected a whole number`);
  return Number(value);
};

/** A decimal number flag, or a UsageError naming it. */
const decimal = (flag: string) => (value: string) => {
  if (!/^\d+(\.\d+)?$/.test(value)) throw new UsageError(`${flag} ${value}: expected a number`);
  return Number(value);
};

/** A fixed-width table of rows; `-` for what is missing. */
function table(rows: Record<string, unknown>[], columns: string[]): string {
  const cells = rows.map((row) =>
    columns.map((c) => (row[c] === undefined || row[c] === null ? "-" : String(row[c]))),
  );
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => (r[i] as string).length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i] as number))
      .join("  ")
      .trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join("\n");
}

/** What a command leaves for the exit code, when it is not 0: a waited task that failed. */
interface Outcome {
  exitCode: number;
}

interface StreamMessage {
  type: string;
  seq: number;
  data: Record<string, unknown>;
}

/** A stream message as a line: `finish_task B succeeded`. */
const messageLine = ({ type, data }: StreamMessage) =>
  [type, data.name, type === "start_task" ? undefined : data.status, data.error].filter(Boolean).join(" ");

/** A quiet stream is pinged this often: API Gateway closes a WebSocket idle for 10 minutes. */
const STREAM_PING_MS = 5 * 60_000;

/**
 * Follows a run's stream (its `stream_url`: the WebSocket API on AWS, a path of the API locally) to its
 * `finish_workflow`, connecting again after `?after=` the last message seen if the connection drops (as
 * API Gateway's does at 2 hours); a message seen already is dropped. Answers the run's final status.
 */
async function watchRun(
  apiUrl: string,
  key: string,
  streamUrl: string,
  onMessage: (message: StreamMessage) => void,
): Promise<string> {
  const url = new URL(streamUrl, apiUrl);
  url.protocol = url.protocol.replace(/^http/, "ws");
  let after = 0;
  for (let drops = 0; ; drops++) {
    const final = await new Promise<string | undefined>((done, fail) => {
      url.searchParams.set("after", String(after));
      const ws = new WebSocket(url, { headers: { authorization: `Bearer ${key}` } });
      const ping = setInterval(() => ws.ping(), STREAM_PING_MS);
      let status: string | undefined;
      ws.on("message", (text) => {
        const message = JSON.parse(String(text)) as StreamMessage;
        if (message.seq <= after) return;
        after = message.seq;
        onMessage(message);
        if (message.type === "finish_workflow") status = String(message.data.status);
      });
      ws.on("unexpected-response", (_req, res) =>
        fail(
          new SwitchyardError(
            res.statusCode ?? 0,
            String(res.statusCode),
            `the stream answered ${res.statusCode}`,
          ),
        ),
      );
      ws.on("error", () => undefined);
      ws.on("close", () => {
        clearInterval(ping);
        done(status);
      });
    });
    if (final !== undefined) return final;
    if (drops >= 5) throw new Error(`the stream at ${streamUrl} kept closing before the run ended`);
    await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** drops));
  }
}

export function buildProgram(io: Io, outcome: Outcome = { exitCode: 0 }): Command {
  const program = new Command("schedulerctl")
    .description("The Switchyard command-line client: submit, watch and manage tasks.")
    .option("--url <url>", "the API's base URL (else SWITCHYARD_URL, the config file, http://localhost:3000)")
    .option("--key <key>", `the API key (else ${ENV_KEY}, or the config file)`)
    .option("--json", "print answers as JSON")
    .showSuggestionAfterError()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .exitOverride();
  const client = (needsKey = true) => new SwitchyardClient(connection(program.opts(), io.env, needsKey));
  const json = () => program.opts().json === true;
  const print = (value: unknown, human?: () => string) =>
    io.out(`${json() || !human ? JSON.stringify(value, null, json() ? 2 : undefined) : human()}\n`);
  const printTask = (task: TaskView) =>
    print(task, () =>
      Object.entries(task)
        .map(([k, v]) => `${k.padEnd(16)} ${typeof v === "object" ? JSON.stringify(v) : String(v)}`)
        .join("\n"),
    );

  program
    .command("enqueue")
    .description("submit a task: a prompt for a tool's CLI, or a template's job (a pod, for a pod template)")
    .argument("[tool]", "claude, codex or gemini (not with --template)")
    .argument("[prompt]", "the prompt, or @file to read it from a file (not with --template)")
    .option("--template <name[@revision]>", "run a template's job instead: its latest revision, or that one")
    .option("--value <json>", "the template's `value` (a JSON object)")
    .option("--extra <json>", "merged over the template's `extra` (a JSON object)")
    .option("--cpu <vcpus>", 'a pod\'s vCPUs ("0.5", "2" or "500m"): its quotas, over its template\'s')
    .option("--memory <size>", 'a pod\'s memory (MiB, or "2Gi")')
    .option("--model <model>", "the model to ask for")
    .option(
      "--pool <pool>",
      "a pool by name, or a pattern (claude-*) of which it takes the one where it starts soonest " +
        "(default: any pool of the tool)",
    )
    .option("--account <account>", "only pools of this CLI account (any: whichever has headroom)")
    .option("--priority <1-9>", "9 runs first (default 5)", integer("--priority"))
    .option("--name <name>", "a name to find it by")
    .option("--tag <key=value>", "a tag (repeatable)", collect, [])
    .option("--input <path>", "a file for the CLI's working folder (repeatable)", collect, [])
    .option("--output <path>", "a file to keep after the run (repeatable)", collect, [])
    .option("--schedule <cron>", "run on a cron schedule")
    .option("--interval <seconds>", "run every so many seconds", integer("--interval"))
    .option("--at <time>", "run once at this ISO-8601 time")
    .option("--max-attempts <n>", "runs a failing task gets (default 3)", integer("--max-attempts"))
    .option("--timeout <seconds>", "how long a run may take", integer("--timeout"))
    .option("--max-turns <n>", "the CLI's turns at most (claude)", integer("--max-turns"))
    .option(
      "--max-budget-usd <usd>",
      "what a run may spend (claude); a budget reserves it",
      decimal("--max-budget-usd"),
    )
    .option("--resume", "a retry takes up the CLI session its failed run left (default: as the pool says)")
    .option("--no-resume", "a retry starts over, whatever the pool says")
    .option("--idempotency-key <key>", "the same key and body submit one task, however often sent")
    .option("--concurrency-key <key>", "tasks of one key run one at a time (e.g. one per repository)")
    .option(
      "--exclusive",
      "refused while another task of its concurrency key is open, and refuses any after it",
    )
    .option("--wait", "wait for the task to end; exit 0 if it succeeded, 1 if not")
    .action(async (tool: string | undefined, prompt: string | undefined, options) => {
      if (options.template ? tool !== undefined : prompt === undefined) {
        throw new UsageError("enqueue takes <tool> <prompt>, or --template name[@revision] without them");
      }
      const api = client();
      const submitted = await api.submit({
        tool: tool as "claude" | undefined,
        prompt: prompt === undefined ? undefined : textOrFile(prompt),
        template: options.template,
        value: options.value,
        extra: options.extra,
        ...((options.cpu ?? options.memory) !== undefined && {
          quotas: { cpu: options.cpu, memory: options.memory },
        }),
        model: options.model,
        pool: options.pool,
        account: options.account,
        priority: options.priority,
        name: options.name,
        tags: pairs(options.tag, "--tag"),
        input_files: (options.input as string[]).map((path) => ({
          name: basename(path),
          content: readFileSync(path, "utf8"),
        })),
        output_files: options.output,
        schedule: options.schedule,
        interval: options.interval,
        scheduled_at: options.at,
        max_attempts: options.maxAttempts,
        timeout: options.timeout,
        max_turns: options.maxTurns,
        max_budget_usd: options.maxBudgetUsd,
        resume: options.resume,
        concurrency_key: options.concurrencyKey,
        ...(options.exclusive && { exclusive: true }),
        ...(options.idempotencyKey && { idempotency_key: options.idempotencyKey }),
      });
      if (!options.wait) return print(submitted, () => submitted.uuid);
      if (!json()) io.out(`${submitted.uuid}\n`);
      const task = await api.waitFor(submitted.uuid, TERMINAL_STATUSES, {
        onStatus: (t) => (io.tty ? io.err(`\r\x1b[K${t.status}`) : io.err(`${t.status}\n`)),
      });
      if (io.tty) io.err("\n");
      if (json()) print(task);
      else if (task.error_message) io.err(`${task.error_message}\n`);
      outcome.exitCode = exitFor(task);
    });

  /** A listing of tasks with the filters of `list`: all of them, or (given its name) an account's. */
  const taskListing = (command: Command, accountOf: (args: unknown[]) => string | undefined) =>
    command
      .addOption(new Option("--status <status>", "only tasks in this status"))
      .option("--pool <pool>", "only this pool's")
      .option("--namespace <namespace>", "only this namespace's")
      .option("--tag <key=value>", "only tasks with this tag")
      .option("--size <n>", "tasks per page", integer("--size"))
      .option("--cursor <cursor>", "the page after this cursor")
      .option("--all", "every page")
      .action(async (...args: unknown[]) => {
        // Commander passes the arguments, then the options and the command.
        const options = args.at(-2) as Record<string, string | undefined>;
        const query = {
          status: options.status as TaskStatus | undefined,
          pool: options.pool,
          namespace: options.namespace,
          tag: options.tag,
          size: options.size as number | undefined,
          cursor: options.cursor,
        };
        const api = client();
        const account = accountOf(args);
        if (options.all) {
          const tasks: TaskView[] = [];
          const pages =
            account === undefined
              ? api.pages("tasks.list", "tasks", { query })
              : api.pages("tasks.accountTasks", "tasks", { account, query });
          for await (const task of pages) tasks.push(task);
          return print({ total: tasks.length, tasks }, () => taskTable(tasks));
        }
        const page =
          account === undefined
            ? await api.call("tasks.list", { query })
            : await api.call("tasks.accountTasks", { account, query });
        print(
          page,
          () => `${taskTable(page.tasks)}${page.next_cursor ? `\nnext: --cursor ${page.next_cursor}` : ""}`,
        );
      });

  taskListing(
    program.command("list").description("list tasks: by status, newest first within each"),
    () => undefined,
  );
  taskListing(
    program
      .command("accounts")
      .description("list an account's tasks: those whose concurrency key it is, newest first")
      .argument("<account>"),
    ([account]) => account as string,
  );

  program
    .command("get")
    .description("show a task")
    .argument("<uuid>")
    .action(async (uuid: string) => printTask(await client().getTask(uuid)));

  program
    .command("status")
    .description(
      "show a task's status; without one, each part of the scheduler and what is wrong with it (admin)",
    )
    .argument("[uuid]")
    .action(async (uuid?: string) => {
      if (uuid !== undefined) {
        const answer = await client().call("tasks.status", { uuid });
        return print(answer, () => answer.status);
      }
      const report = await client().call("pools.status", {});
      print(report, () =>
        [report.status, ...report.components.map((c) => `${c.name}\t${c.status}\t${c.detail}`)].join("\n"),
      );
    });

  program
    .command("logs")
    .description("print a task's log (its latest run's, or --run's)")
    .argument("<uuid>")
    .option("--run <run_id>", "this run's log")
    .option("-f, --follow", "print each run's log as it ends, until the task ends; exit 1 if it failed")
    .action(async (uuid: string, options) => {
      const api = client();
      if (!options.follow)
        return io.out(await api.call("tasks.log", { uuid, query: { run_id: options.run } }));
      const printed = new Set<string>();
      for (;;) {
        const task = await api.getTask(uuid);
        const runs = await api.call("instances.list", { query: { task_id: uuid, size: 100 } });
        const ended = runs.instances
          .filter((r) => !["dispatched", "running"].includes(r.status) && !printed.has(r.run_id))
          .reverse();
        for (const run of ended) {
          io.out(await api.call("tasks.log", { uuid, query: { run_id: run.run_id } }));
          printed.add(run.run_id);
        }
        if (TERMINAL_STATUSES.includes(task.status) && ended.length === 0) {
          outcome.exitCode = exitFor(task);
          return;
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    });

  for (const [name, operation, what] of [
    ["cancel", "tasks.cancel", "cancel a task"],
    ["pause", "tasks.pause", "pause a queued or scheduled task"],
    ["resume", "tasks.resume", "resume a paused task"],
  ] as const) {
    program
      .command(name)
      .description(what)
      .argument("<uuid>")
      .action(async (uuid: string) => {
        const task = await client().call(operation, { uuid });
        print(task, () => `${task.uuid} ${task.status}`);
      });
  }

  program
    .command("reorder")
    .description("move a task's next run (a scheduled or recurring one) by seconds; negative is earlier")
    .argument("<uuid>")
    .argument("<offset>", "seconds", integer("<offset>"))
    .action(async (uuid: string, offset: number) => {
      const task = await client().call("tasks.reorder", { uuid, body: { priority_offset: offset } });
      print(task, () => `${task.uuid} ${task.status}`);
    });

  program
    .command("tag")
    .description("merge tags into a task's")
    .argument("<uuid>")
    .argument("<pairs...>", "key=value")
    .action(async (uuid: string, values: string[]) =>
      print(await client().call("tasks.mergeTags", { uuid, body: { tags: pairs(values, "tag") } })),
    );

  program
    .command("events")
    .description("list a task's events, oldest first")
    .argument("<uuid>")
    .action(async (uuid: string) => {
      const events: DomainEvent[] = [];
      for await (const event of client().pages("tasks.events", "events", { uuid })) events.push(event);
      print(events, () => table(events as unknown as Record<string, unknown>[], ["time", "type", "run_id"]));
    });

  program
    .command("files")
    .description("list a task's files, or download them")
    .argument("<uuid>")
    .option("--download <dir>", "save its files under this folder, at their paths")
    .action(async (uuid: string, options) => {
      const api = client();
      const files = await api.call("tasks.files", { uuid });
      if (!options.download) {
        return print(files, () =>
          table(files as unknown as Record<string, unknown>[], ["path", "size_bytes", "is_input"]),
        );
      }
      const root = resolve(options.download);
      for (const { path } of files) {
        const target = resolve(root, path);
        const inside = relative(root, target);
        if (inside.startsWith("..") || isAbsolute(inside))
          throw new UsageError(`${path}: not a path under ${root}`);
        mkdirSync(dirname(target), { recursive: true });
        writeFileSync(target, await api.call("tasks.file", { uuid, path }));
        io.out(`${target}\n`);
      }
    });

  const runs = program.command("runs").description("runs (instances) of tasks");
  runs
    .command("list")
    .description("list runs: by status, newest first within each (a task's: oldest first)")
    .option("--task <uuid>", "only this task's")
    .action(async (options) => {
      const page = await client().call("instances.list", { query: { task_id: options.task } });
      print(page, () =>
        table(page.instances as unknown as Record<string, unknown>[], [
          "run_id",
          "status",
          "attempt",
          "exit_code",
        ]),
      );
    });
  runs
    .command("get")
    .argument("<run_id>")
    .action(async (runId: string) => print(await client().call("instances.get", { run_id: runId })));
  runs
    .command("status")
    .argument("<run_id>")
    .action(async (runId: string) => {
      const answer = await client().call("instances.status", { run_id: runId });
      print(answer, () => answer.status);
    });
  runs
    .command("logs")
    .argument("<run_id>")
    .action(async (runId: string) => io.out(await client().call("instances.log", { run_id: runId })));
  runs
    .command("tag")
    .argument("<run_id>")
    .argument("<pairs...>", "key=value")
    .action(async (runId: string, values: string[]) =>
      print(
        await client().call("instances.mergeTags", { run_id: runId, body: { tags: pairs(values, "tag") } }),
      ),
    );

  const pools = program.command("pools").description("pools: how full they are; pausing them (admin)");
  pools
    .command("list")
    .description("every pool: usage, tasks holding a slot, max_concurrency, pause")
    .action(async () => {
      const listed = await client().call("pools.list", {});
      print(listed, () =>
        listed
          .map((p) => `${p.name}\t${p.tool}\t${p.tasks}/${p.max_concurrency}${p.paused ? "\tpaused" : ""}`)
          .join("\n"),
      );
    });
  pools
    .command("get")
    .description("one pool; --verbose adds its configuration and workers")
    .argument("<name>")
    .option("--verbose", "its configuration and workers too")
    .action(async (name: string, options) =>
      print(
        await client().call("pools.get", { name, query: { verbose: options.verbose ? "true" : "false" } }),
      ),
    );
  program
    .command("queues")
    .description(
      "the pools' queues (size, waiting, running, a new task's expected wait); with a name, that queue, " +
        "its head and how good its estimates were",
    )
    .argument("[name]")
    .option("--priority <n>", "the expected waits of a new task of this priority (default 5)")
    .action(async (name: string | undefined, options: { priority?: string }) => {
      const priority = options.priority === undefined ? {} : { priority: options.priority };
      if (name !== undefined) {
        print(await client().call("pools.queue", { name, query: { verbose: "true", ...priority } }));
        return;
      }
      const listed = await client().call("pools.queues", { query: priority });
      const wait = (q: (typeof listed)[number]) =>
        q.waiting_time_expect === null
          ? "wait unknown"
          : `wait ${q.waiting_time_expect} ± ${q.waiting_time_error} s`;
      print(listed, () =>
        listed.map((q) => `${q.name}\t${q.waiting} waiting\t${q.running} running\t${wait(q)}`).join("\n"),
      );
    });
  program
    .command("policies")
    .description(
      "every pool's admission policy: the namespaces, tags, timeout, priority and prompt size it accepts",
    )
    .action(async () => {
      const listed = await client().call("pools.policies", {});
      print(listed, () =>
        listed
          .map((p) => `${p.pool}\t${p.policy === null ? "accepts any task" : JSON.stringify(p.policy)}`)
          .join("\n"),
      );
    });
  program
    .command("slas")
    .description("each pool's SLA, its recent waits at the SLA's percentile, and whether it is met")
    .action(async () => {
      const slas = await client().call("pools.slas", {});
      print(slas, () =>
        slas
          .map((s) =>
            s.sla === null
              ? `${s.pool}\tno SLA`
              : `${s.pool}\tp${s.sla.percentile} ≤ ${s.sla.max_wait_seconds} s\t` +
                (s.measured_wait_s === null
                  ? "no recent waits"
                  : `${s.measured_wait_s} s over ${s.samples}\t${s.met ? "met" : "missed"}`),
          )
          .join("\n"),
      );
    });
  program
    .command("reload")
    .description("re-read the pool configuration and apply its limits, retries and policies without a deploy")
    .action(async () => {
      const { data, changes, warnings } = await client().envelope("pools.reload", {});
      print({ data, changes, warnings }, () =>
        [data, ...changes.map((c) => `  ${c}`), ...warnings.map((w) => `warning: ${w}`)].join("\n"),
      );
    });
  for (const [name, operation] of [
    ["pause", "pools.pause"],
    ["resume", "pools.resume"],
  ] as const) {
    pools
      .command(name)
      .description(`${name} admission into a pool (admin)`)
      .argument("<name>")
      .action(async (pool: string) => print(await client().call(operation, { name: pool })));
  }
  const accounts = program
    .command("tool-accounts")
    .description("the CLI accounts of the pools: available, limited until a reset, or disabled");
  accounts
    .command("list", { isDefault: true })
    .description("each (tool, account): its state, when its limit resets, its pools and last usage")
    .action(async () => {
      const listed = await client().call("pools.toolAccounts", {});
      print(listed, () =>
        table(
          listed.map((a) => ({
            ...a,
            reset_at: a.reset_at ?? "",
            usage: a.last_usage
              ? `${a.last_usage.status}${a.last_usage.utilization === undefined ? "" : ` ${Math.round(a.last_usage.utilization * 100)}%`}`
              : "",
            pools: a.pools.join(","),
          })),
          ["tool", "account", "state", "reset_at", "usage", "pools"],
        ),
      );
    });
  for (const [name, operation, what] of [
    ["clear", "pools.clearToolAccount", "make an account available: clear its limit or its disabling"],
    ["disable", "pools.disableToolAccount", "disable an account: its pools admit nothing until cleared"],
  ] as const) {
    accounts
      .command(name)
      .description(`${what} (admin)`)
      .argument("<tool>")
      .argument("<account>")
      .action(async (tool: string, account: string) =>
        print(await client().call(operation, { tool, account })),
      );
  }
  const workers = program.command("workers").description("the workers of the pools");
  workers
    .command("list", { isDefault: true })
    .description("list the workers: state, resources, slots, running jobs (admin)")
    .action(async () => {
      const listed = await client().call("workers.list", {});
      print(listed, () =>
        table(
          listed.map((w) => ({
            ...w,
            resources: Object.entries(w.resources)
              .map(([k, v]) => `${k}=${v}`)
              .join(","),
          })),
          ["worker_id", "pool", "state", "host", "slots", "running", "resources", "last_seen"],
        ),
      );
    });
  workers
    .command("register")
    .description("register a self-hosted worker of a pool: prints its id and key (shown once) (admin)")
    .argument("<pool>")
    .option("--host <name>", "where it runs (shown in the list)")
    .option("--resource <k=v>", "a resource it has, e.g. slots=2, gpus=1 (repeatable)", collect, [])
    .action(async (pool: string, options) => {
      const resources = Object.fromEntries(
        Object.entries(pairs(options.resource, "--resource")).map(([k, v]) => [
          k,
          /^\d+$/.test(v) ? Number(v) : v,
        ]),
      );
      const body = { pool, host: options.host, ...(options.resource.length > 0 && { resources }) };
      const registered = await client().call("workers.register", { body });
      print(registered, () =>
        [
          `worker ${registered.worker_id} of pool ${registered.pool} (${registered.slots} slots)`,
          `key (shown once): ${registered.api_key}`,
          `run it: ${ENV_WORKER_KEY}=<key> schedulerctl workers serve --url <api>`,
        ].join("\n"),
      );
    });
  workers
    .command("drain")
    .description("drain a worker: no new work, its jobs finish, then it exits (admin)")
    .argument("<worker_id>")
    .action(async (id: string) => {
      const drained = await client().call("workers.drain", { id });
      print(drained, () => `worker ${drained.worker_id}: ${drained.state}`);
    });
  workers
    .command("serve")
    .description(`be a self-hosted worker, with the key ${ENV_WORKER_KEY} holds, until drained or stopped`)
    .action(async () => {
      const key = io.env[ENV_WORKER_KEY];
      if (!key)
        throw new UsageError(`${ENV_WORKER_KEY} must hold the worker's key (schedulerctl workers register)`);
      // Loaded here: no other command needs the worker's code.
      const { runSelfHostedWorker } = await import("../containers/worker/self-hosted.ts");
      await runSelfHostedWorker(connection(program.opts(), io.env, false).url, key);
    });

  const dispatcher = program.command("dispatcher").description("admission in every pool (admin)");
  dispatcher.command("start").action(async () => print(await client().call("pools.startDispatcher", {})));
  dispatcher.command("stop").action(async () => print(await client().call("pools.stopDispatcher", {})));
  dispatcher
    .command("status")
    .option("--tenant <id>", "counts of this tenant")
    .action(async (options) =>
      print(await client().call("pools.dispatcher", { query: { tenant: options.tenant } })),
    );

  const workflows = program.command("workflows").description("workflows: DAGs of tasks");
  /** A YAML or JSON file's object, or a UsageError naming the file. */
  const objectIn = (path: string): Record<string, unknown> => {
    let parsed: unknown;
    try {
      parsed = load(readFileSync(path, "utf8"));
    } catch (err) {
      throw new UsageError(`${path}: ${yamlProblem(err)}`);
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
      throw new UsageError(`${path}: expected a YAML or JSON object`);
    }
    return parsed as Record<string, unknown>;
  };
  workflows
    .command("create")
    .description("create a workflow from a YAML or JSON file: {name, tasks: [{name, task, inputs}], edges}")
    .requiredOption("-f, --file <path>", "the workflow file")
    .action(async (options) => {
      const created = await client().call("workflows.create", {
        // The API checks it, and names the field it refuses.
        body: objectIn(options.file) as Input<"workflows.create">["body"],
      });
      print(created, () => `${created.workflow_id} (${created.tasks.length} tasks)`);
    });
  workflows.command("list").action(async () => {
    const listed = await client().call("workflows.list", {});
    print(listed, () => table(listed, ["workflow_id", "name", "version", "create_time"]));
  });
  workflows
    .command("get")
    .description("a workflow's tasks and edges")
    .argument("<workflow_id>")
    .action(async (id: string) => {
      const got = await client().call("workflows.tasks", { id });
      print(got, () =>
        [
          `${got.workflow_id}${got.name ? ` ${got.name}` : ""} (version ${got.version})`,
          ...got.tasks.map((t) => `  task ${t.name} (${t.task_id})`),
          ...got.edges.map((e) => `  edge ${e.source} → ${e.target} on ${e.on}`),
        ].join("\n"),
      );
    });
  workflows
    .command("add-task")
    .description("add a task from a YAML or JSON file: {name, task, inputs}")
    .argument("<workflow_id>")
    .requiredOption("-f, --file <path>", "the task file")
    .action(async (id: string, options) =>
      print(
        await client().call("workflows.addTask", {
          id,
          body: objectIn(options.file) as Input<"workflows.addTask">["body"],
        }),
      ),
    );
  workflows
    .command("delete-task")
    .argument("<workflow_id>")
    .argument("<task_id>")
    .action(async (id: string, taskId: string) =>
      print(await client().call("workflows.deleteTask", { id, task_id: taskId })),
    );
  workflows
    .command("add-edge")
    .argument("<workflow_id>")
    .argument("<source>")
    .argument("<target>")
    .option("--on <condition>", "succeeded (default), failed or always")
    .action(async (id: string, source: string, target: string, options) =>
      print(await client().call("workflows.addEdge", { id, body: { source, target, on: options.on } })),
    );
  workflows
    .command("delete-edge")
    .argument("<workflow_id>")
    .argument("<source>")
    .argument("<target>")
    .action(async (id: string, source: string, target: string) =>
      print(await client().call("workflows.deleteEdge", { id, query: { source, target } })),
    );

  workflows
    .command("run")
    .description(
      "run a workflow; with --watch, print its live results until it ends (exit 1 unless it succeeded)",
    )
    .argument("<workflow_id>")
    .option("--watch", "follow the run's stream")
    .action(async (id: string, options) => {
      const started = await client().call("workflows.run", { id });
      if (!options.watch) return print(started, () => started.run_id);
      const { url, key } = connection(program.opts(), io.env);
      const status = await watchRun(url, key as string, started.stream_url, (message) =>
        io.out(`${json() ? JSON.stringify(message) : messageLine(message)}\n`),
      );
      outcome.exitCode = status === "succeeded" ? 0 : 1;
    });
  workflows
    .command("status")
    .description("a run's status and each node's")
    .argument("<workflow_id>")
    .argument("<run_id>")
    .action(async (id: string, runId: string) => {
      const run = await client().call("workflows.getRun", { id, run_id: runId });
      print(run, () =>
        [`${run.run_id} ${run.status}`, ...run.nodes.map((n) => `  ${n.name} ${n.status}`)].join("\n"),
      );
    });
  workflows
    .command("runs")
    .argument("<workflow_id>")
    .action(async (id: string) => {
      const listed = await client().call("workflows.runs", { id });
      print(listed, () => table(listed, ["run_id", "status", "nodes_done", "nodes_total", "create_time"]));
    });
  workflows
    .command("cancel")
    .argument("<workflow_id>")
    .argument("<run_id>")
    .action(async (id: string, runId: string) =>
      print(await client().call("workflows.cancelRun", { id, run_id: runId })),
    );

  const templates = program.command("templates").description("templates: named, versioned job definitions");
  const templateBody = (
    name: string,
    options: { type: string; schema: string; title?: string; extra?: string },
  ) => ({
    name,
    type: options.type,
    title: options.title,
    schema: textOrFile(options.schema),
    ...(options.extra !== undefined && { extra: options.extra }),
  });
  for (const [verb, operation, what] of [
    ["create", "templates.create", "create a template: its revision 1"],
    ["update", "templates.update", "add a template's next revision (earlier ones stay as they are)"],
  ] as const) {
    templates
      .command(verb)
      .description(what)
      .argument("<name>")
      .requiredOption("--type <type>", "prompt, agent or pod")
      .requiredOption("--schema <liquid|@file>", "the Liquid template, rendering to YAML or JSON, or @file")
      .option("--title <title>", "a title")
      .option("--extra <json>", "values the template may use as `extra` (a JSON object)")
      .action(async (name: string, options) => {
        const body = templateBody(name, options);
        const answer =
          operation === "templates.create"
            ? await client().call("templates.create", { body })
            : await client().call("templates.update", { name, body });
        print(answer, () => `${answer.name} revision ${answer.revision}`);
      });
  }
  templates
    .command("list")
    .option("--verbose", "the latest revision of each, not only names")
    .action(async (options) => {
      const listed = await client().call("templates.list", {
        query: { verbose: options.verbose ? "true" : "false" },
      });
      print(listed, () =>
        listed.map((t) => (typeof t === "string" ? t : `${t.name}@${t.revision}`)).join("\n"),
      );
    });
  templates
    .command("get")
    .argument("<name>")
    .option("--revision <n>", "this revision, not the latest", integer("--revision"))
    .action(async (name: string, options) =>
      print(await client().call("templates.get", { name, query: { revision: options.revision } })),
    );
  templates
    .command("render")
    .description("what a template renders to: a dry run that stores nothing")
    .argument("<name>")
    .option("--value <json>", "the task's args, as `value` (a JSON object)")
    .option("--extra <json>", "merged over the template's `extra` (a JSON object)")
    .option("--cpu <vcpus>", 'a pod\'s vCPUs ("0.5", "2" or "500m"): its quotas, over its template\'s')
    .option("--memory <size>", 'a pod\'s memory (MiB, or "2Gi")')
    .action(async (name: string, options) => {
      const body = {
        ...(options.value && { value: options.value }),
        ...(options.extra && { extra: options.extra }),
      };
      const rendered = await client().call("templates.render", { name, body });
      print(rendered, () => JSON.stringify(rendered.spec, null, 2));
    });

  const tenants = program.command("tenants").description("tenants and their API keys (admin)");
  tenants
    .command("create")
    .argument("<name>")
    .option("--rate <n>", "rate_limit_per_minute", integer("--rate"))
    .option("--max-queued <n>", "max_queued_tasks", integer("--max-queued"))
    .option("--max-submissions <n>", "max_submissions_per_minute", integer("--max-submissions"))
    .action(async (name: string, options) =>
      print(
        await client().call("tenants.create", {
          body: {
            name,
            rate_limit_per_minute: options.rate,
            max_queued_tasks: options.maxQueued,
            max_submissions_per_minute: options.maxSubmissions,
          },
        }),
      ),
    );
  tenants.command("list").action(async () => print(await client().call("tenants.list", {})));
  tenants
    .command("keys")
    .argument("<tenant_id>")
    .action(async (id: string) => print(await client().call("tenants.listKeys", { id })));
  tenants
    .command("add-key")
    .argument("<tenant_id>")
    .option("--scope <scope>", "tasks:read or tasks:write (repeatable; default both)", collect, [])
    .action(async (id: string, options) =>
      print(
        await client().call("tenants.addKey", {
          id,
          body: options.scope.length > 0 ? { scopes: options.scope } : {},
        }),
      ),
    );
  tenants
    .command("budget")
    .description("set a tenant's daily budget, or clear it with --none (admin)")
    .argument("<tenant_id>")
    .option("--usd-per-day <usd>", "dollars a UTC day, as the CLIs report them", decimal("--usd-per-day"))
    .option("--tokens-per-day <n>", "tokens a UTC day, in and out", integer("--tokens-per-day"))
    .option("--refuse", "refuse submissions past it (default: they wait for the next day)")
    .option("--none", "no budget")
    .action(async (id: string, options) => {
      if (options.none === (options.usdPerDay !== undefined || options.tokensPerDay !== undefined)) {
        throw new UsageError("tenants budget takes --usd-per-day and/or --tokens-per-day, or --none");
      }
      const budget = options.none
        ? null
        : {
            usd_per_day: options.usdPerDay,
            tokens_per_day: options.tokensPerDay,
            on_exceed: options.refuse ? ("refuse" as const) : ("wait" as const),
          };
      print(await client().call("tenants.patch", { id, body: { budget } }));
    });
  tenants
    .command("weight")
    .description("set a tenant's share of a pool against others at equal priority (default 1) (admin)")
    .argument("<tenant_id>")
    .argument("<weight>", "0.01 to 100", decimal("weight"))
    .action(async (id: string, weight: number) =>
      print(await client().call("tenants.patch", { id, body: { weight } })),
    );
  tenants
    .command("revoke")
    .argument("<tenant_id>")
    .argument("<key_id>")
    .action(async (id: string, keyId: string) =>
      print(await client().call("tenants.revokeKey", { id, key_id: keyId })),
    );

  program
    .command("usage")
    .description("a tenant's spend by day and pool (a tenant key: its own), against its budget")
    .argument("<tenant_id>")
    .option("--days <n>", "how many UTC days back, today included (default 7)", integer("--days"))
    .action(async (id: string, options) => {
      const usage = await client().call("tenants.usage", { id, query: { days: options.days } });
      const budget = usage.budget?.usd_per_day;
      print(usage, () =>
        table(
          usage.days.flatMap((d) => [
            {
              day: d.day,
              pool: "(all)",
              usd: d.usd.toFixed(4),
              tokens: d.tokens,
              runs: d.runs,
              budget: budget === undefined ? "" : `$${d.committed_usd ?? 0} of $${budget}`,
            },
            ...d.pools.map((p) => ({
              day: "",
              pool: p.pool,
              usd: p.usd.toFixed(4),
              tokens: p.tokens,
              runs: p.runs,
            })),
          ]),
          ["day", "pool", "usd", "tokens", "runs", "budget"],
        ),
      );
    });
  program
    .command("health")
    .description("the API's health")
    .action(async () => {
      const report = await client(false).call("health.report", {});
      print(report, () => `${report.status}`);
    });
  program
    .command("openapi")
    .description("print the API's OpenAPI document")
    .action(async () =>
      io.out(`${JSON.stringify(await client(false).call("health.apiDocument", {}), null, 2)}\n`),
    );

  program
    .command("completion")
    .description('print a bash completion script: eval "$(schedulerctl completion)"')
    .action(() => io.out(completionScript(program)));

  return program;
}

function taskTable(tasks: TaskView[]): string {
  const rows = tasks.map((t) => ({
    name: t.name ?? t.uuid.slice(0, 8),
    uuid: t.uuid,
    status: t.status,
    tool: t.tool,
    pool: t.pool,
    priority: t.priority,
    created: t.create_time,
  }));
  return table(rows, ["name", "uuid", "status", "tool", "pool", "priority", "created"]);
}

/** A bash completion script from the command tree: commands, then their subcommands and flags. */
function completionScript(program: Command): string {
  const words = (command: Command) => [
    ...command.commands.map((c) => c.name()),
    ...command.options.map((o) => o.long ?? "").filter(Boolean),
  ];
  const cases = program.commands
    .map((c) => `    ${c.name()}) COMPREPLY=($(compgen -W "${words(c).join(" ")}" -- "$cur"));;`)
    .join("\n");
  return `_schedulerctl() {
  local cur="\${COMP_WORDS[COMP_CWORD]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${words(program).join(" ")} help" -- "$cur"))
    return
  fi
  case "\${COMP_WORDS[1]}" in
${cases}
  esac
}
complete -F _schedulerctl schedulerctl
`;
}

/** What an error means for the caller: its message, and the exit code. */
function failure(err: unknown): { message: string; code: number } {
  if (err instanceof UsageError) return { message: err.message, code: 2 };
  if (err instanceof SwitchyardError) {
    if (err.status === 401) {
      return { message: `the API refused the key (${err.message}): check ${ENV_KEY} or --key`, code: 2 };
    }
    return {
      message: `${err.message} (${err.code})`,
      code: err.status === 400 || err.status === 403 ? 2 : 1,
    };
  }
  if (err instanceof TypeError && /fetch failed/.test(err.message)) {
    const cause = (err as { cause?: { message?: string } }).cause?.message;
    return {
      message: `cannot reach the API${cause ? ` (${cause})` : ""}: is it running, is the URL right?`,
      code: 1,
    };
  }
  return { message: String((err as Error)?.message ?? err), code: 1 };
}

/** Runs schedulerctl with `argv` (without node and the script); answers the exit code. */
export async function run(argv: string[], io: Io): Promise<number> {
  const outcome = { exitCode: 0 };
  try {
    await buildProgram(io, outcome).parseAsync(argv, { from: "user" });
    return outcome.exitCode;
  } catch (err) {
    // Commander has printed its usage error (or the help it was asked for).
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    const { message, code } = failure(err);
    io.err(`schedulerctl: ${message}\n`);
    return code;
  }
}
