/**
 * Rate and usage limits as the coding-agent CLIs report them: whether an answer is one, and when it
 * lifts. The texts are those of the pinned CLIs (test/fixtures/clis):
 * - claude, API key: `API Error: Request rejected (429) · This request would exceed your account's rate limit…`;
 * - claude, subscription: `You've hit your 5-hour limit · resets 1:34am (UTC)`, `You've hit your Opus limit ·
 *   resets Dec 6, 12:21pm (UTC)`;
 * - codex: `You’ve hit your usage limit. … try again at 9:46 PM.`, `… try again at Dec 2nd, 2026 12:16 AM.`,
 *   `exceeded retry limit, last status: 429 Too Many Requests`;
 * - gemini: `You have exhausted your daily quota on this model.`, `Resource has been exhausted`.
 */

/** An account's usage window as a CLI's stream reports it (claude's `rate_limit_event`). */
export interface UsageReport {
  /** `allowed`, `allowed_warning` or `rejected`: only a rejection is a limit. */
  status: string;
  /** `five_hour`, `seven_day`, …: the window the report is about. */
  window?: string;
  resetAt?: Date;
  /** The share of the window used, 0 to 1. */
  utilization?: number;
  /** The run drew on paid overage beyond the subscription. */
  overage?: boolean;
}

/**
 * A limit a failed run hit: `event` when the CLI's stream reported a rejected status (its reset and window
 * are exact), `message` when its error text says so (the reset as the text tells it, if it does).
 */
export interface RateLimitHit {
  resetAt?: Date;
  window?: string;
  source: "event" | "message";
}

const RATE_LIMIT = new RegExp(
  [
    /rate[ _-]?limit(?!ing|er)/, // "rate limit", "rate_limit_error", "rate-limited"; not "rate limiting"
    /usage[ _]limit|hit your (?:[\w-]+ )?limit/, // subscription limits: "usage limit", "5-hour limit", "Opus limit"
    /too many requests|(?:status|code|error|http|rejected)\W{0,3}429\b/, // HTTP 429, not any "429"
    /quota (?:exceeded|exhausted)|exceeded your (?:current )?quota|exhausted your (?:\w+ )?(?:capacity|quota)/,
    /resource_exhausted|resource has been exhausted/, // Gemini API
  ]
    .map((part) => part.source)
    .join("|"),
  "i",
);

/** Gemini's daily quotas reset at midnight Pacific time, and its answer does not say so. */
const DAILY_QUOTA = /exhausted your daily quota/i;
const DAILY_QUOTA_ZONE = "America/Los_Angeles";

const UNIT_SECONDS: Record<string, number> = { d: 86_400, h: 3600, m: 60, s: 1 };
const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

/** `Dec 6, ` or `Dec 2nd, 2026 ` before a clock time. */
const DATE = String.raw`(?:(${MONTHS.join("|")})[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?(?:\s+(\d{4}))?,?\s+(?:at\s+)?)?`;
/** `1:34am`, `9:46 PM`, `15:00`, `3pm`, then an optional zone in parentheses: `(UTC)`, `(Asia/Tokyo)`. */
const CLOCK = String.raw`(\d{1,2})(?::(\d{2}))?\s*(?:([ap])\.?m(?![a-z])\.?)?(?:\s*\(([^)]+)\))?`;
const CLOCK_TIME = new RegExp(String.raw`(?:resets?(?:\s+at)?|try again at)\s+${DATE}${CLOCK}`, "gi");

/** Each form of reset time, as the dates it reads in text order. */
const RESET_FORMS: ((text: string, now: Date) => (Date | undefined)[])[] = [
  // ISO-8601; without an offset it is UTC.
  (text) =>
    [...text.matchAll(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?/gi)].map(
      ([iso, offset]) => new Date(offset ? iso : `${iso}Z`),
    ),
  // A delay: `try again in 2 days 3 hours 5 minutes`, `retry after 120 seconds`, `reset after 2h30m12s`.
  (text, now) =>
    [
      ...text.matchAll(
        /(?:try again|retry|resets?)\s+(?:in|after)\s+((?:\d+(?:\.\d+)?\s*(?:days?|d|hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)(?![a-z])[\s,]*(?:and\s+)?)+)/gi,
      ),
      ...[...text.matchAll(/retry-after:\s*(\d+)\s*$/gim)].map((m) => [m[0], `${m[1]}s`]),
    ].map(([, delay]) => {
      let seconds = 0;
      for (const [, amount, unit] of (delay ?? "").matchAll(/(\d+(?:\.\d+)?)\s*([dhms])/gi))
        seconds += Number(amount) * (UNIT_SECONDS[unit?.toLowerCase() ?? ""] ?? 0);
      return new Date(now.getTime() + seconds * 1000);
    }),
  // A clock time, with or without a date: `resets 1:34am (UTC)`, `resets Dec 6, 12:21pm (UTC)`,
  // `try again at 9:46 PM`, `try again at Dec 2nd, 2026 12:16 AM`, `resets at 15:00 (Europe/Berlin)`.
  (text, now) =>
    [...text.matchAll(CLOCK_TIME)].map(([, month, day, year, h, m, meridiem, zone]) => {
      const [hour, minute] = [Number(h), Number(m ?? 0)];
      if ((m === undefined && !meridiem) || hour > (meridiem ? 12 : 23) || minute > 59) return undefined;
      const hour24 = meridiem ? (hour % 12) + (meridiem.toLowerCase() === "p" ? 12 : 0) : hour;
      if (month === undefined) return nextClockTime(hour24, minute, zone, now);
      const date = { month: MONTHS.indexOf(month.toLowerCase()), day: Number(day) };
      return dateTime(date, year === undefined ? undefined : Number(year), hour24, minute, zone, now);
    }),
  (text, now) => (DAILY_QUOTA.test(text) ? [nextClockTime(0, 0, DAILY_QUOTA_ZONE, now)] : []),
];

/**
 * Recognises a rate-limit or usage-limit answer in a CLI's output and, when it can be known, the
 * reset time as an absolute date. Forms, tried in this order, the first date after `now` wins (so a
 * stale timestamp in a log line is skipped):
 * - an ISO-8601 time (`resets 2026-11-27T18:00:00Z`; no offset means UTC);
 * - a delay after "try again / retry / reset(s) in|after" (`try again in 2 days 3 hours 5 minutes`,
 *   `retry after 120 seconds`, `reset after 2h30m12s`), or a `Retry-After: 120` header line;
 * - a clock time after "reset(s) (at)" or "try again at", 12- or 24-hour, with or without a date
 *   (`Dec 6,`, `Dec 2nd, 2026`), in the IANA zone given in parentheses, else in UTC (the worker's zone,
 *   in which codex prints it). Without a date it is the next such time; a date without a year that has
 *   passed is next year's;
 * - Gemini's daily quota: the next midnight Pacific time.
 */
export function detectRateLimit(text: string, now: Date): { resetAt?: Date } | undefined {
  if (!RATE_LIMIT.test(text)) return undefined;
  for (const form of RESET_FORMS)
    for (const resetAt of form(text, now)) if (resetAt && resetAt > now) return { resetAt };
  return {};
}

/** The first instant after `now` when the wall clock in `zone` (IANA; UTC if unknown or absent) reads h:m. */
function nextClockTime(hour: number, minute: number, zone: string | undefined, now: Date): Date {
  const today = wallDate(zone, now);
  const candidate = fromWallTime({ ...today, hour, minute }, zone);
  return candidate > now ? candidate : fromWallTime({ ...today, day: today.day + 1, hour, minute }, zone);
}

/** A dated wall-clock time; without a year, this year's, or next year's once this year's has passed. */
function dateTime(
  date: { month: number; day: number },
  year: number | undefined,
  hour: number,
  minute: number,
  zone: string | undefined,
  now: Date,
): Date {
  const at = (y: number) => fromWallTime({ year: y, ...date, hour, minute }, zone);
  if (year !== undefined) return at(year);
  const thisYear = wallDate(zone, now).year;
  const candidate = at(thisYear);
  return candidate > now ? candidate : at(thisYear + 1);
}

interface WallTime {
  year: number;
  /** 0-based. */
  month: number;
  day: number;
  hour: number;
  minute: number;
}

/** The instant at which the wall clock in `zone` reads `wall` (days past the month's end roll over). */
function fromWallTime(wall: WallTime, zone: string | undefined): Date {
  const asUtc = Date.UTC(wall.year, wall.month, wall.day, wall.hour, wall.minute);
  // The zone's offset at the guess, then at the corrected instant (they differ only across a DST change).
  const guess = asUtc - zoneOffsetMs(zone, new Date(asUtc));
  return new Date(asUtc - zoneOffsetMs(zone, new Date(guess)));
}

/** The calendar date the wall clock in `zone` shows at `at`. */
function wallDate(zone: string | undefined, at: Date): Pick<WallTime, "year" | "month" | "day"> {
  const local = new Date(at.getTime() + zoneOffsetMs(zone, at));
  return { year: local.getUTCFullYear(), month: local.getUTCMonth(), day: local.getUTCDate() };
}

/** How far the zone's wall clock is ahead of UTC at `at` (0 for UTC, an unknown zone, or none). */
function zoneOffsetMs(zone: string | undefined, at: Date): number {
  if (!zone) return 0;
  let parts: Intl.DateTimeFormatPart[];
  try {
    parts = new Intl.DateTimeFormat("en-US", {
      timeZone: zone.trim(),
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    }).formatToParts(at);
  } catch {
    return 0; // not a zone Intl knows
  }
  const part = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  const wall = Date.UTC(
    part("year"),
    part("month") - 1,
    part("day"),
    part("hour"),
    part("minute"),
    part("second"),
  );
  return wall - (at.getTime() - at.getMilliseconds());
}
