import { lstat, mkdir, mkdtemp, readFile, realpath, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve, sep } from "node:path";
import { relativePath } from "../../core/fields.ts";

/** A declared input or output path that would leave the job's work dir. */
export class UnsafePathError extends Error {
  constructor(readonly path: string) {
    super(`unsafe path '${path}': it must be relative and stay inside the work dir`);
    this.name = "UnsafePathError";
  }
}

/** A job's fresh temp dir: `work` is the CLI's cwd, `home` its HOME, `tmp` its TMPDIR. */
export interface WorkDir {
  root: string;
  work: string;
  home: string;
  tmp: string;
}

export interface Outputs {
  outputFiles: { path: string; content: Uint8Array }[];
  /** Declared outputs that were absent, not regular files inside the work dir, or too large. */
  missingOutputFiles: string[];
}

/** Checks every declared path (UnsafePathError before anything is written), then lays out the dir and the inputs. */
export async function prepareWorkDir(
  inputFiles: { name: string; content: Uint8Array | string }[],
  outputFiles: string[],
): Promise<WorkDir> {
  for (const path of [...inputFiles.map((f) => f.name), ...outputFiles]) checkRelative(path);
  const root = await mkdtemp(join(tmpdir(), "switchyard-job-"));
  const dir = { root, work: join(root, "work"), home: join(root, "home"), tmp: join(root, "tmp") };
  try {
    await Promise.all([dir.work, dir.home, dir.tmp].map((path) => mkdir(path)));
    for (const file of inputFiles) {
      const target = inside(dir.work, file.name);
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, file.content);
    }
    return dir;
  } catch (err) {
    await removeWorkDir(dir);
    throw err;
  }
}

/** A CLI may leave read-only files behind; a leftover temp dir must not fail the job. */
export const removeWorkDir = (dir: WorkDir) =>
  rm(dir.root, { recursive: true, force: true }).catch(() => undefined);

/** The same rule as the API's (`relativePath`), so a path the API accepted is accepted here. */
function checkRelative(path: string): void {
  if (!relativePath.safeParse(path).success) throw new UnsafePathError(path);
}

/** `dir/path`, or UnsafePathError if that resolves outside `dir`. */
export function inside(dir: string, path: string): string {
  const target = resolve(dir, path);
  if (!target.startsWith(dir + sep)) throw new UnsafePathError(path);
  return target;
}

/**
 * Reads the declared outputs that are regular files of at most `maxBytes` whose real path (symlinks
 * followed) is in the work dir; the others are missing.
 */
export async function collectOutputs(work: string, paths: string[], maxBytes: number): Promise<Outputs> {
  const realWork = await realpath(work);
  const outputFiles: Outputs["outputFiles"] = [];
  const missingOutputFiles: string[] = [];
  for (const path of paths) {
    const content = await readInside(realWork, inside(work, path), maxBytes);
    if (content) outputFiles.push({ path, content });
    else missingOutputFiles.push(path);
  }
  return { outputFiles, missingOutputFiles };
}

async function readInside(
  realWork: string,
  target: string,
  maxBytes: number,
): Promise<Uint8Array | undefined> {
  try {
    const real = await realpath(target);
    if (!real.startsWith(realWork + sep)) return undefined;
    const stat = await lstat(real);
    if (!stat.isFile() || stat.size > maxBytes) return undefined;
    return new Uint8Array(await readFile(real));
  } catch {
    return undefined; // absent
  }
}
