import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type JobSpec, runJob } from "../../containers/worker/job-runner.ts";
import { UnsafePathError } from "../../containers/worker/work-dir.ts";
import { readFixture } from "../clis/fixtures.ts";
import { FAKE_CLI_PATH } from "../support/fake-clis.ts";
import { alive, waitFor } from "../support/wait.ts";

// Real child processes: the fake CLIs first on PATH.
const PATH = FAKE_CLI_PATH;

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "job-runner-test-"));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

const spec = (prompt: string, overrides: Partial<JobSpec> = {}): JobSpec => ({
  tool: "claude",
  prompt,
  allowDangerousFlags: false,
  inputFiles: [],
  outputFiles: [],
  timeoutSeconds: 20,
  env: {},
  path: PATH,
  ...overrides,
});

const pidIn = async (file: string) => Number(await readFile(file, "utf8"));

/** What the fakes replay: the captured success's tokens (gemini's router call adds its own) and cost. */
const SUCCESS = {
  claude: {
    tokens: { input: 12, output: 34, total: 46 },
    cost: readFixture("claude", "success")
      .stdout.trim()
      .split("\n")
      .map((line) => JSON.parse(line))
      .find((event) => event.type === "result").total_cost_usd,
  },
  codex: { tokens: { input: 12, output: 34, total: 46 }, cost: undefined },
  gemini: { tokens: { input: 24, output: 68, total: 92 }, cost: undefined },
};

describe("runJob", () => {
  it.each(["claude", "codex", "gemini"] as const)(
    "%s: succeeds with the parsed result, input files in place and output files read",
    async (tool) => {
      const outcome = await runJob(
        spec("summarise [write:out/report.md=# Report]", {
          tool,
          inputFiles: [
            { name: "src/notes.txt", content: "input text" },
            { name: "data.bin", content: new Uint8Array([0, 1, 2, 255]) },
          ],
          outputFiles: ["out/report.md", "src/notes.txt", "data.bin", "out/none.md"],
        }),
      );
      expect(outcome).toMatchObject({
        exitCode: 0,
        signal: null,
        timedOut: false,
        aborted: false,
        result: {
          output: "done: summarise [write:out/report.md=# Report]",
          tokens: SUCCESS[tool].tokens,
        },
        missingOutputFiles: ["out/none.md"],
      });
      expect(outcome.result.cost_usd).toBe(SUCCESS[tool].cost);
      expect(outcome.error).toBeUndefined();
      expect(outcome.rateLimit).toBeUndefined();
      expect(outcome.log).toContain("done: summarise");
      // The tail is the log's last 4 KB: claude's stream-json log is longer.
      expect(outcome.log.endsWith(outcome.tail)).toBe(true);
      expect(outcome.tail.length).toBe(Math.min(outcome.log.length, 4096));
      // The session the stream named (gemini names none).
      if (tool !== "gemini") expect(outcome.signals.sessionId).toMatch(/^[0-9a-f-]{36}$/);
      expect(outcome.outputFiles).toEqual([
        { path: "out/report.md", content: new TextEncoder().encode("# Report") },
        { path: "src/notes.txt", content: new TextEncoder().encode("input text") },
        { path: "data.bin", content: new Uint8Array([0, 1, 2, 255]) },
      ]);
    },
  );

  it("reports a non-zero exit with the CLI's own error", async () => {
    const outcome = await runJob(spec("[exit:3]"));
    expect(outcome).toMatchObject({ exitCode: 3, timedOut: false });
    expect(outcome.error).toBe("exit code 3: API Error: 400 simulated failure with exit code 3");
    expect(outcome.rateLimit).toBeUndefined();
  });

  it("fails the first run of a fail-first prompt and succeeds the next", async () => {
    const job = spec("[fail-first:flaky]", { env: { FAKE_CLI_STATE_DIR: scratch } });
    expect((await runJob(job)).exitCode).toBe(2);
    expect(await runJob(job)).toMatchObject({ exitCode: 0, result: { output: "done: [fail-first:flaky]" } });
  });

  it("on timeout kills the whole process group, grandchild included", async () => {
    const pidFile = join(scratch, "timeout.pid");
    const outcome = await runJob(
      spec(`[spawn-grandchild] [pid-file:${pidFile}] [sleep:60]`, { timeoutSeconds: 1 }),
      {
        killGraceMs: 2000,
      },
    );
    expect(outcome).toMatchObject({ exitCode: null, signal: "SIGTERM", timedOut: true, aborted: false });
    expect(outcome.error).toBe("timed out after 1 s");
    expect(outcome.durationMs).toBeGreaterThanOrEqual(1000);
    expect(outcome.durationMs).toBeLessThan(3000);
    expect(alive(await pidIn(pidFile))).toBe(false);
    expect(alive(await pidIn(`${pidFile}.grandchild`))).toBe(false);
  });

  it("SIGKILLs a CLI that ignores SIGTERM once the grace period is over", async () => {
    const pidFile = join(scratch, "stubborn.pid");
    const started = Date.now();
    const outcome = await runJob(
      spec(`[ignore-sigterm] [pid-file:${pidFile}] [sleep:60]`, { timeoutSeconds: 0.5 }),
      {
        killGraceMs: 500,
      },
    );
    expect(outcome).toMatchObject({ signal: "SIGKILL", timedOut: true });
    expect(outcome.log).toContain("ignoring SIGTERM");
    expect(Date.now() - started).toBeLessThan(3000);
    expect(alive(await pidIn(pidFile))).toBe(false);
  });

  it("kills the job when aborted", async () => {
    const pidFile = join(scratch, "abort.pid");
    const controller = new AbortController();
    // Abort once the job is surely up (its pid file written), however slow the machine is.
    let abortedAt = 0;
    void waitFor(async () => existsSync(pidFile), Boolean, 20_000).then(() => {
      abortedAt = Date.now();
      controller.abort();
    });
    const outcome = await runJob(spec(`[spawn-grandchild] [pid-file:${pidFile}] [sleep:60]`), {
      signal: controller.signal,
    });
    expect(outcome).toMatchObject({ exitCode: null, timedOut: false, aborted: true, error: "aborted" });
    expect(Date.now() - abortedAt).toBeLessThan(3000);
    expect(alive(await pidIn(pidFile))).toBe(false);
    expect(alive(await pidIn(`${pidFile}.grandchild`))).toBe(false);
  });

  it("kills what a successful job left running, without waiting for it", async () => {
    const pidFile = join(scratch, "straggler.pid");
    const outcome = await runJob(spec(`[spawn-grandchild] [pid-file:${pidFile}]`));
    expect(outcome).toMatchObject({ exitCode: 0, result: { output: expect.stringMatching(/^done: /) } });
    expect(outcome.durationMs).toBeLessThan(3000);
    expect(alive(await pidIn(`${pidFile}.grandchild`))).toBe(false);
  });

  it("reports a missing executable as permanent, without throwing", async () => {
    const outcome = await runJob(spec("hi", { tool: "codex", path: scratch }));
    expect(outcome).toMatchObject({
      exitCode: null,
      signal: null,
      error: "codex is not installed on this worker",
      permanent: true,
      result: {},
      outputFiles: [],
    });
  });

  it.each([
    ["input", "../escape.txt"],
    ["input", "/etc/passwd"],
    ["input", "a/../../escape.txt"],
    ["output", "../../etc/passwd"],
    ["output", "/etc/shadow"],
  ])("rejects the %s path %j before running anything", async (kind, path) => {
    const job =
      kind === "input"
        ? spec("hi", { inputFiles: [{ name: path, content: "x" }] })
        : spec("hi", { outputFiles: [path] });
    await expect(runJob(job)).rejects.toThrow(UnsafePathError);
  });

  it("does not read an output file through a symlink out of the work dir", async () => {
    const secret = join(scratch, "secret.txt");
    await writeFile(secret, "worker secret");
    const outcome = await runJob(
      spec(`[symlink:leak.txt=${secret}] [symlink:ok.txt=kept.txt] [write:kept.txt=fine]`, {
        outputFiles: ["leak.txt", "ok.txt"],
      }),
    );
    expect(outcome.outputFiles).toEqual([{ path: "ok.txt", content: new TextEncoder().encode("fine") }]);
    expect(outcome.missingOutputFiles).toEqual(["leak.txt"]);
  });

  it("gives the CLI the pool's credentials and nothing else from the worker's environment", async () => {
    process.env.AWS_SECRET_ACCESS_KEY = "worker-secret";
    try {
      const outcome = await runJob(
        spec(
          "[echo-env:AWS_SECRET_ACCESS_KEY] [echo-env:ANTHROPIC_API_KEY] [echo-env:HOME] [echo-env:TMPDIR]",
          {
            env: { ANTHROPIC_API_KEY: "sk-pool-key" },
          },
        ),
      );
      const lines = outcome.result.output?.split("\n") ?? [];
      expect(lines).toContain("AWS_SECRET_ACCESS_KEY=<unset>");
      expect(lines).toContain("ANTHROPIC_API_KEY=sk-pool-key");
      const home = lines.find((l) => l.startsWith("HOME="))?.slice("HOME=".length) ?? "";
      expect(home).toMatch(/switchyard-job-.*\/home$/);
      expect(lines).toContain(`TMPDIR=${join(dirname(home), "tmp")}`);
      expect(existsSync(dirname(home))).toBe(false); // the job's dir is removed
    } finally {
      delete process.env.AWS_SECRET_ACCESS_KEY;
    }
  });

  it("passes the flags through to the CLI as separate arguments", async () => {
    const prompt = "--version; $(id) [echo-args]";
    const outcome = await runJob(spec(prompt, { tool: "codex", model: "gpt-5-codex" }));
    expect(outcome.result.output).toContain(
      `args: ${JSON.stringify(["exec", "--json", "--skip-git-repo-check", "--model", "gpt-5-codex", "--sandbox", "workspace-write", "--", prompt])}`,
    );
  });

  it.each([
    ["claude", 2 * 3600_000],
    ["claude", 3 * 86_400_000],
    ["codex", 2 * 3600_000],
    ["codex", 3 * 86_400_000],
  ] as const)("%s: recognises a usage limit and its reset %i ms ahead", async (tool, ahead) => {
    const reset = new Date(Date.now() + ahead);
    const limited = await runJob(spec(`[ratelimit-reset:${reset.toISOString()}]`, { tool }));
    expect(limited.exitCode).toBe(1);
    expect(limited.error).toMatch(/^exit code 1: .*hit your/);
    const resetAt = limited.rateLimit?.resetAt?.getTime() ?? 0;
    expect(Math.abs(resetAt - reset.getTime())).toBeLessThan(60_000); // the CLIs speak in whole minutes
  });

  it("gemini: recognises the daily quota, which lifts at midnight Pacific time", async () => {
    const limited = await runJob(spec("[ratelimit-reset:2030-01-01T00:00:00Z]", { tool: "gemini" }));
    expect(limited.exitCode).toBe(173); // 429 modulo 256
    expect(limited.error).toBe("exit code 173: You have exhausted your daily quota on this model.");
    const hoursAhead = ((limited.rateLimit?.resetAt?.getTime() ?? 0) - Date.now()) / 3_600_000;
    expect(hoursAhead).toBeGreaterThan(0);
    expect(hoursAhead).toBeLessThanOrEqual(24);
  });

  it.each(["claude", "codex", "gemini"] as const)(
    "%s: recognises a 429 without a reset time",
    async (tool) => {
      const plain = await runJob(spec("[ratelimit]", { tool }));
      expect(plain.error).toMatch(/^exit code \d+: /);
      expect(plain.rateLimit).toBeDefined();
      // Gemini's 429 says to retry after 1 s: at most that long.
      expect((plain.rateLimit?.resetAt?.getTime() ?? 0) - Date.now()).toBeLessThan(1500);
    },
  );

  it("does not take a successful answer about rate limits for a rate limit", async () => {
    const outcome = await runJob(spec("explain HTTP 429 Too Many Requests and rate_limit_error"));
    expect(outcome.error).toBeUndefined();
    expect(outcome.rateLimit).toBeUndefined();
  });

  it("caps the log at 5 MB, keeping its head and tail", async () => {
    // Gemini prints its error on stderr, after the noise, so the log's end is known.
    const outcome = await runJob(spec("[noise:6000000] [exit:4]", { tool: "gemini" }));
    expect(outcome.logTruncated).toBe(true);
    expect(outcome.log.length).toBeLessThan(5 * 1024 * 1024 + 5000);
    expect(outcome.log.startsWith("x".repeat(1000))).toBe(true);
    expect(outcome.log).toMatch(/\[switchyard: log truncated; \d+ bytes omitted before the last 4096\]/);
    expect(outcome.log).toMatch(/"code": 400\n {2}\}\n\}\n$/);
    expect(outcome.tail).toHaveLength(4096);
    expect(outcome.error).toBe("exit code 4: simulated failure with exit code 4");
  });
});

describe("runJob with the CLI's session", () => {
  const text = (content: Uint8Array) => Buffer.from(content).toString("utf8");

  it("reads back the files of the run's own session only, and takes them up in a new job", async () => {
    const first = await runJob(spec("[turns:3@0.4] build it", { timeoutSeconds: 1, session: {} }));
    expect(first.error).toContain("timed out");
    const id = first.signals.sessionId as string;
    expect(first.session?.files.map((f) => f.path)).toEqual([
      expect.stringMatching(new RegExp(`/${id}\\.jsonl$`)),
    ]);
    // Another session in the same dir is restored with it, but it is not the run's: it is not read back.
    const other = { path: "-elsewhere/another-session.jsonl", content: new Uint8Array(Buffer.from("{}\n")) };
    const files = [...(first.session?.files ?? []), other];
    const second = await runJob(
      spec("[turns:3@0.4] build it", { session: { restore: { sessionId: id, files, ended: "timed out" } } }),
    );
    expect(second.error).toBeUndefined();
    expect(second.resumed).toBe(true);
    expect(second.signals.sessionId).toBe(id);
    expect(second.session?.files.map((f) => f.path)).toEqual(first.session?.files.map((f) => f.path));
    const turns = text(second.session?.files[0]?.content ?? new Uint8Array()).match(/"type":"turn"/g);
    expect(turns).toHaveLength(3);
  });

  it("a session the CLI cannot find fails the run with the CLI's own words, and leaves nothing to save", async () => {
    const restore = { sessionId: "5f0e6c1a-0000-4000-8000-00000000beef", files: [], ended: "lost" };
    const job = await runJob(spec("go", { session: { restore } }));
    expect(job.error).toContain(
      "No conversation found with session ID: 5f0e6c1a-0000-4000-8000-00000000beef",
    );
    expect(job.session).toBeUndefined();
  });

  it("hands its session over while the CLI runs, each time it changed", async () => {
    const saves: { sessionId: string; turns: number }[] = [];
    const save = async (state: { files: { content: Uint8Array }[] }, sessionId: string) => {
      saves.push({
        sessionId,
        turns: text(state.files[0]?.content ?? new Uint8Array()).split('"turn"').length - 1,
      });
    };
    const job = await runJob(
      spec("[turns:3@0.5] slowly", { session: { checkpoint: { everyMs: 200, save } } }),
    );
    expect(job.error).toBeUndefined();
    // Saved as the turns went (the prompt alone, then after each turn), never the same state twice.
    const turns = saves.map((s) => s.turns);
    expect(saves.length).toBeGreaterThanOrEqual(2);
    expect(turns).toEqual([...new Set(turns)].sort());
    expect(turns.at(-1)).toBeLessThanOrEqual(3);
    expect(new Set(saves.map((s) => s.sessionId))).toEqual(new Set([job.signals.sessionId]));
  });

  it("a job that is not asked for its session keeps none", async () => {
    const job = await runJob(spec("[turns:1@0] go"));
    expect(job.resumed).toBe(false);
    expect(job.session).toBeUndefined();
  });
});
