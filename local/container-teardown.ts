/**
 * What a container's end does to the processes in it, for a local worker: on Fargate a worker that dies
 * takes its jobs with it, because the task's processes all die with the container. Locally a worker's jobs
 * are the processes whose working directory or temp dir lies in the worker's own temp root (the worker's
 * TMPDIR), however they were started; they are killed, process group and all. Linux (/proc) only: elsewhere
 * nothing is found.
 */
import { readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";

/** The pids of processes that run in `root` (cwd) or keep their temp files there (TMPDIR). */
export function processesUnder(root: string): number[] {
  let entries: string[];
  try {
    entries = readdirSync("/proc").filter((name) => /^\d+$/.test(name));
  } catch {
    return [];
  }
  const inside = (path: string) => path === root || path.startsWith(`${root}/`);
  return entries.map(Number).filter((pid) => {
    if (pid === process.pid) return false;
    try {
      if (inside(readlinkSync(`/proc/${pid}/cwd`))) return true;
      const environ = readFileSync(`/proc/${pid}/environ`, "utf8").split("\u0000");
      return environ.some((entry) => entry.startsWith("TMPDIR=") && inside(entry.slice("TMPDIR=".length)));
    } catch {
      return false; // gone meanwhile, or not ours
    }
  });
}

/** Kills every process under `root` with its process group, then removes `root`. */
export function tearDown(root: string): number {
  const pids = processesUnder(root);
  for (const pid of pids) {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, "SIGKILL");
      } catch {
        // not a group leader, or already gone
      }
    }
  }
  rmSync(root, { recursive: true, force: true });
  return pids.length;
}
