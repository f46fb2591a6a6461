import { spawn } from "node:child_process";
import { lstat, mkdir, mkdtemp, readFile, realpath, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve, sep } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { relativePath, type Tool } from "../../core/schemas.ts";
import { commandFor, type ParsedResult, parseResult, readOutcome } from "./engines.ts";

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
}

export interface RunOptions {
  /** Aborting kills the job like a timeout does (cancellation, or worker shutdown). */
  signal?: AbortSignal;
  /** Between SIGTERM and SIGKILL of the job's process group; default 5000. */
  killGraceMs?: number;
}

export interface JobOutcome {
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
  rateLimit?: { resetAt?: Date };
  outputFiles: { path: string; content: Uint8Array }[];
  /** Declared outputs that were absent, not regular files inside the work dir, or too large. */
  missingOutputFiles: string[];
  /** Why the job failed; set if and only if it failed. */
  error?: string;
  /** The job cannot run on this worker at all (its CLI is missing): retrying would fail the same way. */
  permanent?: boolean;
}

/** A declared input or output path that would leave the job's work dir. */
export class UnsafePathError extends Error {
  constructor(readonly path: string) {
    super(`unsafe path '${path}': it must be relative and stay inside the work dir`);
    this.name = "UnsafePathError";
  }
}

/** stderr is read for errors only (gemini prints its JSON error there, after its log lines). */
const CAPS = {
  log: 5 * 1024 * 1024,
  stdout: 5 * 1024 * 1024,
  stderr: 64 * 1024,
  tail: 4096,
  outputFile: 50 * 1024 * 1024,
};
const DEFAULT_KILL_GRACE_MS = 5000;
/** How long SIGKILLed processes may take to disappear. */
const REAP_MS = 2000;
/** How long to wait for stdout/stderr to close once the process group is gone (an escaped child may hold them). */
const STREAM_CLOSE_MS = 1000;

/**
 * Runs one CLI job in a fresh temp dir (`<root>/work` is the cwd, `<root>/home` is HOME, `<root>/tmp`
 * TMPDIR) with only the basic env and the pool's credentials, enforces the timeout on the whole process
 * group, collects the declared output files and removes the dir. Throws only UnsafePathError (before
 * anything runs); every other failure is reported in the outcome.
 */
export async function runJob(spec: JobSpec, options: RunOptions = {}): Promise<JobOutcome> {
  for (const path of [...spec.inputFiles.map((f) => f.name), ...spec.outputFiles]) checkRelative(path);
  const root = await mkdtemp(join(tmpdir(), "switchyard-job-"));
  try {
    const dirs = { work: join(root, "work"), home: join(root, "home"), tmp: join(root, "tmp") };
    await Promise.all(Object.values(dirs).map((dir) => mkdir(dir)));
    for (const file of spec.inputFiles) {
      const target = inside(dirs.work, file.name);
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, file.content);
    }
    const outcome = await execute(spec, dirs.work, jobEnvironment(dirs, spec), options);
    return { ...outcome, ...(await collect(dirs.work, spec.outputFiles)) };
  } finally {
    // A CLI may leave read-only files behind; a leftover temp dir must not fail the job.
    await rm(root, { recursive: true, force: true }).catch(() => undefined);
  }
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

type Executed = Omit<JobOutcome, "outputFiles" | "missingOutputFiles">;

async function execute(
  spec: JobSpec,
  cwd: string,
  env: Record<string, string>,
  options: RunOptions,
): Promise<Executed> {
  const { command, args } = commandFor(spec.tool, spec);
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
      ...(spawnError?.code === "ENOENT"
        ? { error: `${command} is not installed on this worker`, permanent: true }
        : { error: `cannot start ${command}: ${spawnError?.message}` }),
    };
  }

  const log = new HeadTail(CAPS.log, CAPS.tail);
  const stdout = new Tail(CAPS.stdout);
  const stderr = new Tail(CAPS.stderr);
  child.stdout.on("data", (chunk: Buffer) => {
    log.push(chunk);
    stdout.push(chunk);
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
      : readOutcome(spec.tool, { ...output, exitCode }, new Date());
  return {
    exitCode,
    signal,
    timedOut,
    aborted,
    durationMs: Math.round(durationMs),
    ...log.render(),
    result,
    ...(rateLimit ? { rateLimit } : {}),
    ...(error ? { error } : {}),
  };
}

/** SIGTERM the group, SIGKILL it if any member outlives the grace period, and wait until it is gone. */
async function killGroup(pid: number, graceMs: number): Promise<void> {
  if (!groupAlive(pid)) return;
  signalGroup(pid, "SIGTERM");
  if (await groupGone(pid, graceMs)) return;
  signalGroup(pid, "SIGKILL");
  await groupGone(pid, REAP_MS);
}

async function groupGone(pid: number, withinMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (groupAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await sleep(20);
  }
  return true;
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is gone.
  }
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The same rule as the API's (`relativePath`), so a path the API accepted is accepted here. */
function checkRelative(path: string): void {
  if (!relativePath.safeParse(path).success) throw new UnsafePathError(path);
}

/** `dir/path`, or UnsafePathError if that resolves outside `dir`. */
function inside(dir: string, path: string): string {
  const target = resolve(dir, path);
  if (!target.startsWith(dir + sep)) throw new UnsafePathError(path);
  return target;
}

/** Reads the declared outputs that are regular files whose real path (symlinks followed) is in the work dir. */
async function collect(
  work: string,
  paths: string[],
): Promise<Pick<JobOutcome, "outputFiles" | "missingOutputFiles">> {
  const realWork = await realpath(work);
  const outputFiles: JobOutcome["outputFiles"] = [];
  const missingOutputFiles: string[] = [];
  for (const path of paths) {
    const content = await readInside(realWork, inside(work, path));
    if (content) outputFiles.push({ path, content });
    else missingOutputFiles.push(path);
  }
  return { outputFiles, missingOutputFiles };
}

async function readInside(realWork: string, target: string): Promise<Uint8Array | undefined> {
  try {
    const real = await realpath(target);
    if (!real.startsWith(realWork + sep)) return undefined;
    const stat = await lstat(real);
    if (!stat.isFile() || stat.size > CAPS.outputFile) return undefined;
    return new Uint8Array(await readFile(real));
  } catch {
    return undefined; // absent
  }
}

/** The last `cap` bytes pushed. */
class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly cap: number) {}
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.chunks.length > 1 && this.size - (this.chunks[0]?.length ?? 0) >= this.cap)
      this.size -= this.chunks.shift()?.length ?? 0;
  }
  bytes(): Buffer {
    return Buffer.concat(this.chunks).subarray(-this.cap);
  }
  text(): string {
    return this.bytes().toString("utf8");
  }
}

/** The first `cap` bytes of the log, and its last `tailCap` bytes. */
class HeadTail {
  private head: Buffer[] = [];
  private headSize = 0;
  private total = 0;
  private readonly last: Tail;
  constructor(
    private readonly cap: number,
    tailCap: number,
  ) {
    this.last = new Tail(tailCap);
  }
  push(chunk: Buffer): void {
    this.total += chunk.length;
    this.last.push(chunk);
    const part = chunk.subarray(0, this.cap - this.headSize);
    if (part.length === 0) return;
    this.head.push(part);
    this.headSize += part.length;
  }
  render(): Pick<JobOutcome, "log" | "tail" | "logTruncated"> {
    const head = Buffer.concat(this.head).toString("utf8");
    const tail = this.last.bytes();
    if (this.total <= this.cap) return { log: head, tail: tail.toString("utf8"), logTruncated: false };
    const after = tail.subarray(-Math.min(tail.length, this.total - this.cap));
    const marker = `\n[switchyard: log truncated; ${this.total - this.cap - after.length} bytes omitted before the last ${after.length}]\n`;
    return { log: head + marker + after.toString("utf8"), tail: tail.toString("utf8"), logTruncated: true };
  }
}
