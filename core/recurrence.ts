/**
 * The time arithmetic of recurring tasks. Pure: every instant comes in as a
 * `Date` argument; nothing here reads the clock or starts a timer. Cron matching and all wall-clock/DST
 * conversion is done by `croner`; this module never parses cron itself.
 *
 * Conventions used throughout:
 * - An occurrence's *slot* is the instant it was scheduled for (after any window wait), not the instant a
 *   late tick happened to fire it. Pass slots as `after`/`lastFire` to keep the cadence exact.
 * - `anchor` is where an interval series starts: its occurrences are `anchor + k·interval` for k ≥ 0, so the
 *   anchor itself is the first one. Cron schedules ignore it except in {@link firstFireTime}.
 * - The functions other than {@link recurrenceIssues} assume a recurrence that passed it.
 */
import { Cron } from "croner";

export interface Recurrence {
  /** A 5-field cron expression, matched in `timezone`. */
  schedule?: string;
  /** Seconds between occurrences, an integer ≥ 1. */
  interval?: number;
  /** IANA time zone of `schedule` and `valid_time_range`; "UTC" by default. */
  timezone: string;
  /**
   * [start_hour, end_hour), local hours in `timezone`, 0 ≤ start < end ≤ 24. An occurrence outside it waits
   * for the window's next opening (local start_hour:00); it is not dropped.
   */
  valid_time_range?: [number, number];
  /** ISO 8601; no occurrence is scheduled after it (one exactly at it still fires). */
  end_time?: string;
  /** Maximum number of occurrences. */
  times?: number;
}

export interface RecurrenceIssue {
  field: string;
  reason: string;
}

const NEEDS_SCHEDULE = "needs schedule or interval";

/**
 * Semantic problems of a recurrence, each naming its field (the API answers 400, code 1001, with the first).
 *
 * Decisions:
 * - `schedule` and `interval` both given: the problem names `interval` (the schedule is the primary form;
 *   the interval is the one to drop).
 * - An inverted window (start_hour > end_hour) is refused: a window is [start_hour, end_hour) within one
 *   day, so one that would cross midnight is not expressible. `nextFireTime` would handle one (it treats
 *   start > end as crossing midnight): allowing them means relaxing only this check.
 * - A schedule that never matches (e.g. `0 0 30 2 *`) is a bad `schedule`.
 * - `end_time` must be strictly after `now`.
 */
export function recurrenceIssues(
  r: Omit<Partial<Recurrence>, "schedule"> & { schedule?: unknown },
  now: Date,
): RecurrenceIssue[] {
  const issues: RecurrenceIssue[] = [];
  const hasSchedule = r.schedule !== undefined;
  const hasInterval = r.interval !== undefined;

  const timezone = r.timezone ?? "UTC";
  const timezoneOk = isTimeZone(timezone);
  if (!timezoneOk) issues.push({ field: "timezone", reason: `unknown IANA time zone '${String(timezone)}'` });

  if (hasSchedule) {
    const reason = cronProblem(r.schedule, timezoneOk ? timezone : "UTC", now);
    if (reason) issues.push({ field: "schedule", reason });
  }
  if (hasSchedule && hasInterval) {
    issues.push({ field: "interval", reason: "give schedule or interval, not both" });
  }
  if (hasInterval && !(Number.isSafeInteger(r.interval) && (r.interval as number) >= 1)) {
    issues.push({ field: "interval", reason: "must be a whole number of seconds, 1 or more" });
  }

  const recurring = hasSchedule || hasInterval;
  if (r.valid_time_range !== undefined) {
    const reason = recurring ? windowProblem(r.valid_time_range) : NEEDS_SCHEDULE;
    if (reason) issues.push({ field: "valid_time_range", reason });
  }
  if (r.end_time !== undefined) {
    const end = typeof r.end_time === "string" ? Date.parse(r.end_time) : Number.NaN;
    const reason = !recurring
      ? NEEDS_SCHEDULE
      : Number.isNaN(end)
        ? "must be an ISO 8601 date-time"
        : end <= now.getTime()
          ? "must be in the future"
          : undefined;
    if (reason) issues.push({ field: "end_time", reason });
  }
  if (r.times !== undefined) {
    const reason = !recurring
      ? NEEDS_SCHEDULE
      : Number.isSafeInteger(r.times) && r.times >= 1
        ? undefined
        : "must be a whole number, 1 or more";
    if (reason) issues.push({ field: "times", reason });
  }
  return issues;
}

/**
 * The first occurrence strictly after `after`: the cron's next match in `r.timezone` (croner's DST rules,
 * see the tests), or `anchor + k·interval` for the smallest k ≥ 0 beyond `after` — anchored, so late ticks
 * never make the cadence drift. An occurrence outside `valid_time_range` waits for the window's next opening
 * (local start_hour:00, DST-correct); one later than `end_time` means there is none (undefined). `times` is
 * {@link isExhausted}'s job.
 */
export function nextFireTime(r: Recurrence, after: Date, anchor: Date): Date | undefined {
  let candidate: Date | undefined;
  if (r.schedule !== undefined) {
    candidate = cron(r.schedule, r.timezone).nextRun(after) ?? undefined;
  } else if (r.interval !== undefined) {
    const step = r.interval * 1000;
    const k = Math.max(0, Math.floor((after.getTime() - anchor.getTime()) / step) + 1);
    candidate = new Date(anchor.getTime() + k * step);
  }
  if (candidate && r.valid_time_range) candidate = waitForWindow(candidate, r.valid_time_range, r.timezone);
  if (candidate && r.end_time !== undefined && candidate.getTime() > Date.parse(r.end_time)) return undefined;
  return candidate;
}

/** The first occurrence at or after `anchor` (window and `end_time` applied): a new task's first run. */
export function firstFireTime(r: Recurrence, anchor: Date): Date | undefined {
  return nextFireTime(r, new Date(anchor.getTime() - 1), anchor);
}

/** Whether `times` occurrences have fired, so the task is `completed`. */
export function isExhausted(r: Recurrence, occurrencesFired: number): boolean {
  return r.times !== undefined && occurrencesFired >= r.times;
}

/**
 * Where a resumed task goes next.
 *
 * Rule (README): if the occurrence that was pending when the task was paused — the first after `lastFire`, or
 * the first at or after `anchor` if it never fired — fell due by `now`, exactly one catch-up runs at `now`
 * (or at the window's next opening, if it is closed) and every other missed occurrence is dropped; otherwise
 * the task simply continues with that pending occurrence.
 *
 * `pausedAt` does not change the answer: an occurrence that was already due but not yet fired when the pause
 * came (the tick is once a minute on AWS) counts as missed too. It is taken so callers state the whole
 * situation and so the rule can be tightened without changing the call sites. A catch-up that would land
 * after `end_time` does not happen: the schedule is over.
 */
export function resumeFireTime(
  r: Recurrence,
  lastFire: Date | undefined,
  _pausedAt: Date,
  now: Date,
  anchor: Date,
): { at: Date | undefined; catchUp: boolean } {
  const pending = lastFire ? nextFireTime(r, lastFire, anchor) : firstFireTime(r, anchor);
  if (!pending) return { at: undefined, catchUp: false };
  if (pending.getTime() > now.getTime()) return { at: pending, catchUp: false };
  const at = r.valid_time_range ? waitForWindow(now, r.valid_time_range, r.timezone) : now;
  if (r.end_time !== undefined && at.getTime() > Date.parse(r.end_time))
    return { at: undefined, catchUp: false };
  return { at, catchUp: true };
}

/**
 * The next occurrence moved by a reorder's `priority_offset` (negative = earlier). Only that occurrence moves:
 * compute the one after it with `nextFireTime(r, max(slot, shifted), anchor)`, where `slot` is the unshifted
 * time, so an earlier move does not fire the original slot again and a later one does not release a burst.
 */
export function shiftFireTime(next: Date, offsetSeconds: number): Date {
  return new Date(next.getTime() + offsetSeconds * 1000);
}

// ---------------------------------------------------------------------------------------------------------

function cron(schedule: string, timezone: string): Cron {
  // No callback: croner only evaluates the pattern and starts no timer.
  return new Cron(schedule, { timezone, mode: "5-part" });
}

function cronProblem(schedule: unknown, timezone: string, now: Date): string | undefined {
  if (typeof schedule !== "string") return "must be a 5-field cron expression";
  // Croner also takes nicknames such as @daily, which are not 5 fields: the API promises 5-field cron only.
  if (schedule.trim().split(/\s+/).length !== 5) return "must be a 5-field cron expression";
  try {
    if (!cron(schedule, timezone).nextRun(now)) return "never matches";
  } catch (error) {
    return error instanceof Error ? error.message.replace(/^CronPattern:\s*/, "") : "invalid cron expression";
  }
  return undefined;
}

function windowProblem(range: unknown): string | undefined {
  if (!Array.isArray(range) || range.length !== 2) return "must be [start_hour, end_hour]";
  const [start, end] = range as unknown[];
  const hour = (h: unknown) => Number.isInteger(h) && (h as number) >= 0 && (h as number) <= 24;
  if (!hour(start) || !hour(end)) return "hours must be whole numbers from 0 to 24";
  if (start === end) return "start_hour and end_hour must differ";
  if ((start as number) > (end as number)) return "inverted: start_hour must be before end_hour";
  return undefined;
}

function isTimeZone(tz: unknown): boolean {
  // Newer ICU also takes offsets such as "+01:00"; those are not IANA zones and have no DST rules.
  if (typeof tz !== "string" || tz === "" || /^[+-]/.test(tz)) return false;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const hourFormats = new Map<string, Intl.DateTimeFormat>();

/** The local wall-clock hour (0–23) of an instant in a time zone. */
function localHour(at: Date, timezone: string): number {
  let format = hourFormats.get(timezone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", { timeZone: timezone, hour: "numeric", hourCycle: "h23" });
    hourFormats.set(timezone, format);
  }
  const hour = format.formatToParts(at).find((p) => p.type === "hour")?.value;
  return Number(hour) % 24;
}

/** In [start, end); a window with start > end crosses midnight (refused by validation, see above). */
function inWindow(hour: number, [start, end]: [number, number]): boolean {
  return start < end ? hour >= start && hour < end : hour >= start || hour < end;
}

/**
 * `at` if its local hour is inside the window, else the window's next opening: the next local
 * `start_hour:00`, found by croner so it is DST-correct (an opening inside a spring-forward gap is the first
 * instant after the gap; one in a repeated hour is its first pass). An opening whose hour does not exist that
 * day (window [2, 3) on a spring-forward day) is not inside the window, so the wait goes on to the next day.
 */
function waitForWindow(at: Date, range: [number, number], timezone: string): Date {
  let candidate = at;
  for (let day = 0; day < 8 && !inWindow(localHour(candidate, timezone), range); day++) {
    const opening = cron(`0 ${range[0]} * * *`, timezone).nextRun(candidate);
    if (!opening) break;
    candidate = opening;
  }
  return candidate;
}
