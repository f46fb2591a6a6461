import { setTimeout as sleep } from "node:timers/promises";

/** A job runs as its own process group (spawned detached): these signal and watch the whole group. */

/** How long SIGKILLed processes may take to disappear. */
const REAP_MS = 2000;
/** SIGTERM the group, SIGKILL it if any member outlives the grace period, and wait until it is gone. */
export async function killGroup(pid: number, graceMs: number): Promise<void> {
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
