import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type JobSpec, runJob, UnsafePathError } from "../../containers/worker/job-runner.ts";
import { FAKE_CLI_PATH } from "../support/fake-clis.ts";
import { waitFor } from "../support/wait.ts";

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

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const pidIn = async (file: string) => Number(await readFile(file, "utf8"));

describe("runJob", () => {
  it.each([
    ["claude", 0.0123],
    ["codex", undefined],
    ["gemini", undefined],
  ] as const)(
    "%s: succeeds with the parsed result, input files in place and output files read",
    async (tool, cost) => {
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
          tokens: { input: 12, output: 34, total: 46 },
        },
        missingOutputFiles: ["out/none.md"],
      });
      expect(outcome.result.cost_usd).toBe(cost);
      expect(outcome.error).toBeUndefined();
      expect(outcome.rateLimit).toBeUndefined();
      expect(outcome.log).toContain(`${tool} (fake): working`);
      expect(outcome.tail).toBe(outcome.log);
      expect(outcome.outputFiles).toEqual([
        { path: "out/report.md", content: new TextEncoder().encode("# Report") },
        { path: "src/notes.txt", content: new TextEncoder().encode("input text") },
        { path: "data.bin", content: new Uint8Array([0, 1, 2, 255]) },
      ]);
    },
  );

  it("reports a non-zero exit with the last stderr line", async () => {
    const outcome = await runJob(spec("[exit:3]"));
    expect(outcome).toMatchObject({ exitCode: 3, timedOut: false });
    expect(outcome.error).toBe("exit code 3: Error: simulated failure with exit code 3");
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

  it("reports a missing executable without throwing", async () => {
    const outcome = await runJob(spec("hi", { tool: "codex", path: scratch }));
    expect(outcome).toMatchObject({
      exitCode: null,
      signal: null,
      error: "executable codex not found on PATH",
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

  it.each(["claude", "codex", "gemini"] as const)(
    "%s: recognises a rate-limit answer and its reset time",
    async (tool) => {
      const reset = new Date(Date.now() + 2 * 3600_000);
      const limited = await runJob(spec(`[ratelimit-reset:${reset.toISOString()}]`, { tool }));
      expect(limited.exitCode).toBe(1);
      expect(limited.error).toMatch(/^exit code 1: /);
      const resetAt = limited.rateLimit?.resetAt?.getTime() ?? 0;
      expect(Math.abs(resetAt - reset.getTime())).toBeLessThan(61_000); // codex speaks in whole minutes

      const plain = await runJob(spec("[ratelimit]", { tool }));
      expect(plain.rateLimit).toEqual({});
    },
  );

  it("does not take a successful answer about rate limits for a rate limit", async () => {
    const outcome = await runJob(spec("explain HTTP 429 Too Many Requests and rate_limit_error"));
    expect(outcome.error).toBeUndefined();
    expect(outcome.rateLimit).toBeUndefined();
  });

  it("caps the log at 5 MB, keeping its head and tail", async () => {
    const outcome = await runJob(spec("[noise:6000000] [exit:4]"));
    expect(outcome.logTruncated).toBe(true);
    expect(outcome.log.length).toBeLessThan(5 * 1024 * 1024 + 5000);
    expect(outcome.log.startsWith("x".repeat(1000))).toBe(true);
    expect(outcome.log).toMatch(/\[switchyard: log truncated; \d+ bytes omitted before the last 4096\]/);
    expect(outcome.log.endsWith("Error: simulated failure with exit code 4\n")).toBe(true);
    expect(outcome.tail).toHaveLength(4096);
    expect(outcome.error).toBe("exit code 4: Error: simulated failure with exit code 4");
  });
});
