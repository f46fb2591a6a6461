import { randomUUID } from "node:crypto";
import { lstat, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { z } from "zod";
import { relativePath, TOOLS, type Tool } from "../../core/fields.ts";
import { namesSessions, type ResumePoint, resumePrompt, sessionDir, sessionHolds } from "./engines.ts";
import { inside } from "./work-dir.ts";

/**
 * A CLI's session state, saved at the end of a run that did not finish its task and taken up by the
 * task's retry on any worker: the files of that one session where the CLI keeps its sessions (claude's
 * projects, codex's sessions, gemini's chats), known by the session's id.
 */

/** One file of a session, relative to the CLI's session dir. */
export interface SessionFile {
  path: string;
  content: Uint8Array;
}

/** A session's files, read back from a job. */
export interface SessionState {
  files: SessionFile[];
}

const savedSessionSchema = z.object({
  tool: z.enum(TOOLS),
  /** The run that saved it, and its task's occurrence: another occurrence of a recurring task starts over. */
  run_id: z.string(),
  occurrence: z.number(),
  /** The CLI's own session id (claude, codex). */
  session_id: z.string().optional(),
  /** Why that run stopped, told to the CLI as it goes on. */
  ended: z.string(),
  files: z.array(z.object({ path: relativePath, data: z.base64() })),
});
type SavedSessionJson = z.infer<typeof savedSessionSchema>;

/** What a run left for its task's retry, as stored (blobKeys.session). */
export interface SavedSession extends Omit<SavedSessionJson, "files"> {
  files: SessionFile[];
}

/** The session files a job may keep: past this, its retry starts over. */
export const SESSION_BYTES = 50 * 1024 * 1024;

export function encodeSession(saved: SavedSession): Uint8Array {
  const json: SavedSessionJson = {
    ...saved,
    files: saved.files.map((f) => ({ path: f.path, data: Buffer.from(f.content).toString("base64") })),
  };
  return new Uint8Array(gzipSync(JSON.stringify(json)));
}

/** The stored session, or undefined for bytes that are not one (a retry then starts over). */
export function decodeSession(bytes: Uint8Array): SavedSession | undefined {
  try {
    const parsed = savedSessionSchema.safeParse(JSON.parse(gunzipSync(bytes).toString("utf8")));
    if (!parsed.success) return undefined;
    const files = parsed.data.files.map((f) => ({
      path: f.path,
      content: new Uint8Array(Buffer.from(f.data, "base64")),
    }));
    return { ...parsed.data, files };
  } catch {
    return undefined;
  }
}

/**
 * A job's session dir, set up: what resumes the saved session and the prompt that goes on (absent: the
 * run starts a new one), the id the CLI is to give a new session, and the files the job started from.
 */
export interface PreparedSession {
  tool: Tool;
  dir: string;
  resume?: ResumePoint;
  prompt?: string;
  sessionId?: string;
  restored: SessionFile[];
}

/** Lays out the CLI's session dir of a new job (`env`: its environment) from `saved`, if given. */
export async function prepareSession(
  tool: Tool,
  env: Record<string, string>,
  saved?: { sessionId?: string; files: SessionFile[]; ended: string },
): Promise<PreparedSession> {
  const dir = sessionDir(tool, env);
  await mkdir(dir, { recursive: true });
  const restored = saved?.files ?? [];
  for (const file of restored) {
    const target = inside(dir, file.path);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, file.content);
  }
  // A session is taken up by its id; one saved without (spent, or its id never seen) is not.
  if (saved?.sessionId !== undefined) {
    const { sessionId, ended } = saved;
    return { tool, dir, resume: { sessionId }, prompt: resumePrompt(ended), sessionId, restored };
  }
  return { tool, dir, restored, ...(namesSessions(tool) && { sessionId: randomUUID() }) };
}

/**
 * The files of session `sessionId` in the job, when they changed since `since` (by default what the job
 * started from: a run that wrote nothing leaves the saved session as it was); undefined too past
 * SESSION_BYTES. Symlinks and other non-files are skipped.
 */
export async function readSession(
  prepared: PreparedSession,
  sessionId: string | undefined,
  since: SessionFile[] = prepared.restored,
): Promise<SessionState | undefined> {
  if (sessionId === undefined) return undefined;
  const files: SessionFile[] = [];
  let bytes = 0;
  const entries = await readdir(prepared.dir, { recursive: true, withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const full = join(entry.parentPath, entry.name);
    const path = relative(prepared.dir, full);
    const stat = await lstat(full).catch(() => undefined);
    if (!stat?.isFile() || !sessionHolds(prepared.tool, path, sessionId)) continue;
    bytes += stat.size;
    if (bytes > SESSION_BYTES) return undefined;
    files.push({ path, content: new Uint8Array(await readFile(full)) });
  }
  return changed(files, since) ? { files } : undefined;
}

function changed(files: SessionFile[], since: SessionFile[]): boolean {
  if (files.length !== since.length) return true;
  const before = new Map(since.map((f) => [f.path, f.content]));
  return files.some((f) => {
    const was = before.get(f.path);
    return was === undefined || !Buffer.from(was).equals(f.content);
  });
}
