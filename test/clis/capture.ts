import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { commandFor, resumePrompt } from "../../containers/worker/engines.ts";
import { jobEnvironment, runJob } from "../../containers/worker/job-runner.ts";
import { prepareSession } from "../../containers/worker/sessions.ts";
import { TOOLS, type Tool } from "../../core/fields.ts";
import { CASES, type CliCase, standInEnvironment } from "./cases.ts";
import { type CliFixture, FIXTURES } from "./fixtures.ts";
import { ANSWER, type StandIn, startModelApi } from "./model-api.ts";
import { installPinnedClis, pinnedVersions } from "./pinned.ts";

/**
 * `npm run fixtures:clis`: runs each pinned CLI through each case against the model-API stand-in, with
 * the engine's exact argv and the job runner's environment, and writes what it printed and its exit code
 * to test/fixtures/clis/<tool>/<case>.json. Run it again on every bump of a CLI in the Dockerfile;
 * `npm run fixtures:clis -- codex resumed` captures only those tools and cases.
 */

/** Gemini's own retries of a rate-limited request take about four minutes. */
const CASE_TIMEOUT_MS = 360_000;

async function capture(tool: Tool, version: string, cliCase: CliCase, bin: string, standIn: StandIn) {
  const root = await mkdtemp(join(tmpdir(), `switchyard-capture-${tool}-`));
  try {
    const dirs = { work: join(root, "work"), home: join(root, "home"), tmp: join(root, "tmp") };
    await Promise.all(Object.values(dirs).map((dir) => mkdir(dir)));
    const env = jobEnvironment(dirs, {
      path: `${bin}:${process.env.PATH}`,
      env: await standInEnvironment(tool, cliCase, standIn, root),
    });
    const resumed = cliCase.resume && (await resumeOf(tool, cliCase, bin, standIn, root, env));
    const { command, args } = commandFor(tool, {
      prompt: resumed?.prompt ?? cliCase.prompt,
      allowDangerousFlags: false,
      resume: resumed?.resume,
    });
    const capturedAt = new Date();
    const child = spawn(command, args, { cwd: dirs.work, env, stdio: ["ignore", "pipe", "pipe"] });
    const chunks = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
    child.stdout.on("data", (chunk: Buffer) => chunks.stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => chunks.stderr.push(chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), CASE_TIMEOUT_MS);
    const exitCode = await new Promise<number | null>((done) => child.on("close", (code) => done(code)));
    clearTimeout(timer);
    if (exitCode === null) throw new Error(`${tool} ${cliCase.name}: no answer within ${CASE_TIMEOUT_MS} ms`);
    // The limit-warning scenario warns of the 5-hour window's reset.
    const window = cliCase.scenario === "limit-warning" ? "usage-limit" : cliCase.scenario;
    const reset = window === "usage-limit" || window === "weekly-limit";
    const fixture: CliFixture = {
      tool,
      version,
      case: cliCase.name,
      args,
      env_names: Object.keys(env).sort(),
      captured_at: capturedAt.toISOString(),
      ...(reset ? { reset_at: standIn.resets[window as keyof StandIn["resets"]].toISOString() } : {}),
      answer: ANSWER,
      exit_code: exitCode,
      stdout: Buffer.concat(chunks.stdout).toString("utf8"),
      stderr: Buffer.concat(chunks.stderr).toString("utf8"),
    };
    await mkdir(join(FIXTURES, tool), { recursive: true });
    await writeFile(join(FIXTURES, tool, `${cliCase.name}.json`), `${JSON.stringify(fixture, null, 2)}\n`);
    console.log(`${tool} ${cliCase.name}: exit ${exitCode}`);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** A job's home made ready to resume: a session a first run saved, or one that is not there. */
async function resumeOf(
  tool: Tool,
  cliCase: CliCase,
  bin: string,
  standIn: StandIn,
  root: string,
  env: Record<string, string>,
) {
  const ended = "timed out after 600 s";
  if (cliCase.resume === "missing") {
    return { resume: { sessionId: MISSING_SESSION }, prompt: resumePrompt(ended) };
  }
  const first = await runJob({
    tool,
    prompt: cliCase.prompt,
    allowDangerousFlags: false,
    inputFiles: [],
    outputFiles: [],
    timeoutSeconds: CASE_TIMEOUT_MS / 1000,
    env: await standInEnvironment(tool, cliCase, standIn, await mkdtemp(join(root, "first-"))),
    path: `${bin}:${process.env.PATH}`,
    session: {},
  });
  if (!first.session) throw new Error(`${tool} ${cliCase.name}: the first run saved no session`);
  const restore = { sessionId: first.signals.sessionId, files: first.session.files, ended };
  const prepared = await prepareSession(tool, env, restore);
  if (!prepared?.resume) throw new Error(`${tool} ${cliCase.name}: the saved session cannot be resumed`);
  return prepared;
}

/** A session id no CLI has. */
const MISSING_SESSION = "00000000-0000-4000-8000-000000000000";

const versions = await pinnedVersions();
const bin = await installPinnedClis(versions);
const standIn = await startModelApi();
try {
  // Tools and cases to capture (`claude`, `resumed`…): by default all of them.
  const only = process.argv.slice(2);
  const picked = (names: readonly string[]) => {
    const named = names.filter((name) => only.includes(name));
    return named.length > 0 ? named : names;
  };
  const tools = picked(TOOLS) as Tool[];
  // One CLI at a time per tool, the three tools side by side.
  await Promise.all(
    tools.map(async (tool) => {
      const names = picked(CASES[tool].map((c) => c.name));
      for (const cliCase of CASES[tool].filter((c) => names.includes(c.name))) {
        await capture(tool, versions[tool], cliCase, bin, standIn);
      }
    }),
  );
} finally {
  await standIn.close();
}
