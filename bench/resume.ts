/**
 * Resumed sessions: what a retry that takes up its failed run's CLI session saves against one that starts
 * over. Each CLI (the fakes, which note every turn in their session and report the tokens each turn
 * costs, the context growing) gets a task of RESUME.turns turns whose first run times out part way; the
 * same saved session then goes once to a resumed retry and once, for the floor, to a fresh one.
 */
import { type JobSpec, runJob } from "../containers/worker/job-runner.ts";
import { encodeSession } from "../containers/worker/sessions.ts";
import { TOOLS, type Tool } from "../core/fields.ts";
import { FAKE_CLI_PATH } from "../test/support/fake-clis.ts";
import { round } from "./stats.ts";

export const RESUME = { turns: 8, turnSeconds: 0.25, firstRunSeconds: 1.2 };

export interface ResumeFigures {
  /** Turns the first run finished before its timeout. */
  turns_done_before: number;
  resumed_retry_tokens: number;
  fresh_retry_tokens: number;
  /** The share of a fresh retry's tokens the resumed one did not spend. */
  tokens_saved: number;
  /** The resumed retry's time over the fresh one's. */
  resumed_over_fresh_seconds: number;
  /** What the saved session weighs in S3, gzipped. */
  session_bytes: number;
}

async function measure(tool: Tool): Promise<ResumeFigures> {
  const spec: JobSpec = {
    tool,
    prompt: `[turns:${RESUME.turns}@${RESUME.turnSeconds}] finish the migration`,
    allowDangerousFlags: false,
    inputFiles: [],
    outputFiles: [],
    timeoutSeconds: 60,
    env: {},
    path: FAKE_CLI_PATH,
  };
  const first = await runJob({ ...spec, timeoutSeconds: RESUME.firstRunSeconds, session: {} });
  if (!first.session || first.error === undefined) throw new Error(`${tool}: the first run left no session`);
  const files = first.session.files;
  const turnsDone = files.reduce(
    (turns, f) =>
      turns +
      (Buffer.from(f.content)
        .toString("utf8")
        .match(/"type":"turn"/g)?.length ?? 0),
    0,
  );
  const restore = { sessionId: first.signals.sessionId, files, ended: first.error };
  const resumed = await runJob({ ...spec, session: { restore } });
  const fresh = await runJob(spec);
  if (!resumed.resumed || resumed.error || fresh.error) throw new Error(`${tool}: a retry failed`);
  const total = (job: typeof fresh) => job.result.tokens?.total ?? 0;
  return {
    turns_done_before: turnsDone,
    resumed_retry_tokens: total(resumed),
    fresh_retry_tokens: total(fresh),
    tokens_saved: round(1 - total(resumed) / total(fresh), 3),
    resumed_over_fresh_seconds: round(resumed.durationMs / fresh.durationMs, 3),
    session_bytes: encodeSession({
      tool,
      run_id: "r",
      occurrence: 1,
      session_id: first.signals.sessionId,
      ended: first.error,
      files,
    }).length,
  };
}

/** Per CLI, one after another. */
export async function measureResume(): Promise<Record<Tool, ResumeFigures>> {
  const figures = {} as Record<Tool, ResumeFigures>;
  for (const tool of TOOLS) figures[tool] = await measure(tool);
  return figures;
}
