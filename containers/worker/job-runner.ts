import { spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import type { Tool } from "../../core/fields.ts";
import type { RateLimitHit } from "../../core/rate-limits.ts";
import {
  type CliSignals,
  commandFor,
  type ParsedResult,
  parseResult,
  readOutcome,
  signalReader,
} from "./engines.ts";
import { HeadTail, Tail } from "./output-capture.ts";
import { killGroup } from "./process-group.ts";
import {
  type PreparedSession,
  prepareSession,
  readSession,
  type SessionFile,
  type SessionState,
} from "./sessions.ts";
import { collectOutputs, type Outputs, prepareWorkDir, removeWorkDir } from "./work-dir.ts";

export interface JobSpec {
  tool: Tool;
  prompt: string;
  model?: string;
  allowDangerousFlags: boolean;
  inputFiles: { name: string; content: Uint8Array | string }[];
  outputFiles: string[];
  /** Fractions allowed. */
  timeoutSeconds: number;
  /** The pool's account credentials: the only secrets the CLI sees. */
  env: Record<string, string>;
  /** PATH for the CLI; default the worker's PATH. */
  path?: string;
  maxTurns?: number;
  maxBudgetUsd?: number;
  /**
   * Set: the CLI's session state is read back after the run (JobOutcome.session), and `restore`, when
   * given, is laid out first and taken up instead of starting over. With `checkpoint`, the session is
   * also handed to `save` every `everyMs` while the CLI runs, each time it changed.
   */
  session?: {
    restore?: { sessionId?: string; files: SessionFile[]; ended: string };
    checkpoint?: { everyMs: number; save: (state: SessionState, sessionId: string) => Promise<void> };
  };
}

export interface RunOptions {
  /** Aborting kills the job like a timeout does (cancellation, or worker shutdown). */
  signal?: AbortSignal;
  /** Between SIGTERM and SIGKILL of the job's process group; default 5000. */
  killGraceMs?: number;
}

export interface JobOutcome extends Outputs {
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  aborted: boolean;
  durationMs: number;
  /** stdout and stderr interleaved; past 5 MB the head, a marker, then the tail. */
  log: string;
  logTruncated: boolean;
  /** The last 4 KB of the log. */
  tail: string;
  result: ParsedResult;
  /** Set when the job failed with a rate-limit or usage-limit answer. */
  rateLimit?: RateLimitHit;
  /** What the CLI's stream told while it ran (its session, its account's usage), even when it was stopped. */
  signals: CliSignals;
  /** Why the job failed; set if and only if it failed. */
  error?: string;
  /** The job cannot run on this worker at all (its CLI is missing): retrying would fail the same way. */
  permanent?: boolean;
  /** The CLI took up the restored session. */
  resumed: boolean;
  /** The CLI's session files, when the spec asked for them and the run wrote to them. */
  session?: SessionState;
}

const CAPS = {
  log: 5 * 1024 * 1024,
  stdout: 5 * 1024 * 1024,
  /** stderr is read for errors only (gemini prints its JSON error there, after its log lines). */
  stderr: 64 * 1024,
  tail: 4096,
  outputFile: 50 * 1024 * 1024,
};
const DEFAULT_KILL_GRACE_MS = 5000;
/** How long to wait for stdout/stderr to close once the process group is gone (an escaped child may hold them). */
const STREAM_CLOSE_MS = 1000;

/**
 * Runs one CLI job in a fresh temp dir (`<root>/work` is the cwd, `<root>/home` is HOME, `<root>/tmp`
 * TMPDIR) with only the basic env and the pool's credentials, enforces the timeout on the whole process
 * group, collects the declared output files (and, when asked, the CLI's session) and removes the dir.
 * Throws only UnsafePathError (before anything runs); every other failure is reported in the outcome.
 */
export async function runJob(spec: JobSpec, options: RunOptions = {}): Promise<JobOutcome> {
  const dir = await prepareWorkDir(spec.inputFiles, spec.outputFiles);
  try {
    const env = jobEnvironment(dir, spec);
    const session = spec.session && (await prepareSession(spec.tool, env, spec.session.restore));
    const command = commandFor(spec.tool, {
      ...spec,
      prompt: session?.prompt ?? spec.prompt,
      resume: session?.resume,
      sessionId: session?.sessionId,
    });
    const signals: CliSignals = { sessionId: session?.sessionId };
    const checkpoints =
      session && spec.session?.checkpoint && keepSaving(session, signals, spec.session.checkpoint);
    const outcome = await execute(spec, command, dir.work, env, options, signals).finally(() =>
      checkpoints?.stop(),
    );
    await checkpoints?.done();
    const state = session && (await readSession(session, outcome.signals.sessionId));
    return {
      ...outcome,
      ...(await collectOutputs(dir.work, spec.outputFiles, CAPS.outputFile)),
      resumed: session?.resume !== undefined,
      ...(state && { session: state }),
    };
  } finally {
    await removeWorkDir(dir);
  }
}

/**
 * Hands the session to `save` every `everyMs` while the CLI runs, each time it changed since the last
 * save; one save at a time, and a failed one is tried again at the next tick.
 */
function keepSaving(
  session: PreparedSession,
  signals: CliSignals,
  { everyMs, save }: NonNullable<NonNullable<JobSpec["session"]>["checkpoint"]>,
) {
  let saved = session.restored;
  let saving: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    saving = saving.then(async () => {
      const { sessionId } = signals;
      const state = sessionId === undefined ? undefined : await readSession(session, sessionId, saved);
      if (!state || sessionId === undefined) return;
      await save(state, sessionId).then(
        () => {
          saved = state.files;
        },
        () => undefined,
      );
    });
  }, everyMs);
  return { stop: () => clearInterval(timer), done: () => saving };
}

/** A job's whole environment: the basics, its own HOME and TMPDIR, and the pool's credentials. */
export function jobEnvironment(
  dirs: { home: string; tmp: string },
  spec: Pick<JobSpec, "path" | "env">,
): Record<string, string> {
  return {
    PATH: spec.path ?? process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
    HOME: dirs.home,
    TMPDIR: dirs.tmp,
    LANG: "C.UTF-8",
    TERM: "dumb",
    NO_COLOR: "1",
    ...spec.env,
  };
}

type Executed = Omit<JobOutcome, "outputFiles" | "missingOutputFiles" | "resumed" | "session">;

async function execute(
  spec: JobSpec,
  { command, args }: { command: string; args: string[] },
  cwd: string,
  env: Record<string, string>,
  options: RunOptions,
  signals: CliSignals,
): Promise<Executed> {
  const started = performance.now();
  const child = spawn(command, args, { cwd, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const spawnError = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    child.once("spawn", () => resolve(undefined));
    child.once("error", resolve);
  });
  const pid = child.pid;
  if (spawnError || pid === undefined) {
    return {
      exitCode: null,
      signal: null,
      timedOut: false,
      aborted: false,
      durationMs: Math.round(performance.now() - started),
      log: "",
      logTruncated: false,
      tail: "",
      result: {},
      signals: {},
      ...(spawnError?.code === "ENOENT"
        ? { error: `${command} is not installed on this worker`, permanent: true }
        : { error: `cannot start ${command}: ${spawnError?.message}` }),
    };
  }

  const log = new HeadTail(CAPS.log, CAPS.tail);
  const stdout = new Tail(CAPS.stdout);
  const stderr = new Tail(CAPS.stderr);
  const reader = signalReader(spec.tool, signals);
  child.stdout.on("data", (chunk: Buffer) => {
    log.push(chunk);
    stdout.push(chunk);
    reader.push(chunk);
  });
  child.stderr.on("data", (chunk: Buffer) => {
    log.push(chunk);
    stderr.push(chunk);
  });
  const closed = Promise.all([child.stdout, child.stderr].map((s) => new Promise((r) => s.once("close", r))));
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.once("exit", (code, signal) => resolve([code, signal])),
  );

  let timedOut = false;
  let aborted = false;
  const killGraceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  let killing: Promise<void> | undefined;
  const stop = () => {
    killing ??= killGroup(pid, killGraceMs);
  };
  const timer = setTimeout(() => {
    timedOut = true;
    stop();
  }, spec.timeoutSeconds * 1000);
  const onAbort = () => {
    aborted = true;
    stop();
  };
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) onAbort();

  const [exitCode, signal] = await exited;
  const durationMs = performance.now() - started;
  clearTimeout(timer);
  options.signal?.removeEventListener("abort", onAbort);
  await (killing ?? killGroup(pid, killGraceMs)); // also what a job that ended by itself left running
  const streamsClosed = await Promise.race([closed.then(() => true), sleep(STREAM_CLOSE_MS, false)]);
  if (!streamsClosed) for (const stream of [child.stdout, child.stderr]) stream.destroy();

  const output = { stdout: stdout.text(), stderr: stderr.text() };
  const stoppedBy = timedOut
    ? `timed out after ${spec.timeoutSeconds} s`
    : aborted
      ? "aborted"
      : exitCode === null
        ? `killed by ${signal}`
        : undefined;
  const { result, error, rateLimit } =
    stoppedBy !== undefined || exitCode === null
      ? { result: parseResult(spec.tool, output), error: stoppedBy, rateLimit: undefined }
      : readOutcome(spec.tool, { ...output, exitCode }, new Date(), reader.signals);
  return {
    exitCode,
    signal,
    timedOut,
    aborted,
    durationMs: Math.round(durationMs),
    ...log.render(),
    result,
    signals: reader.signals,
    ...(rateLimit ? { rateLimit } : {}),
    ...(error ? { error } : {}),
  };
}
