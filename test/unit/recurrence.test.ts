import { describe, expect, it } from "vitest";
import {
  firstFireTime,
  isExhausted,
  nextFireTime,
  type Recurrence,
  recurrenceIssues,
  resumeFireTime,
  shiftFireTime,
} from "../../core/recurrence.ts";

// The clock is whatever Date each test passes in: the module never reads the time itself.
const at = (iso: string) => new Date(iso);
const HOUR = 3_600_000;

/** "YYYY-MM-DD HH:mm" on the wall clock of `tz`. */
const local = (d: Date | undefined, tz: string) =>
  d === undefined ? "none" : d.toLocaleString("sv-SE", { timeZone: tz }).slice(0, 16);

const rec = (r: Partial<Recurrence>): Recurrence => ({ timezone: "UTC", ...r });

/** The next `n` occurrences after `from`, each computed from the previous one's slot. */
function series(r: Recurrence, from: Date, n: number, anchor = from): Date[] {
  const out: Date[] = [];
  let after = from;
  for (let i = 0; i < n; i++) {
    const next = nextFireTime(r, after, anchor);
    if (!next) break;
    out.push(next);
    after = next;
  }
  return out;
}

/**
 * A tick loop driven by a fake clock: the tick runs every `tickMs`; a due occurrence fires (counted for
 * `times`) and the next one is computed from its slot, as the tick will. Returns the slots fired.
 */
function simulate(r: Recurrence, anchor: Date, until: Date, tickMs = 60_000): Date[] {
  const fired: Date[] = [];
  let next = firstFireTime(r, anchor);
  for (let now = anchor.getTime(); now <= until.getTime(); now += tickMs) {
    while (next && next.getTime() <= now && !isExhausted(r, fired.length)) {
      fired.push(next);
      next = isExhausted(r, fired.length) ? undefined : nextFireTime(r, next, anchor);
    }
  }
  return fired;
}

describe("recurrenceIssues", () => {
  const now = at("2025-06-01T12:00:00Z");
  const fields = (r: Parameters<typeof recurrenceIssues>[0]) => recurrenceIssues(r, now).map((i) => i.field);
  const issue = (r: Parameters<typeof recurrenceIssues>[0], field: string) =>
    recurrenceIssues(r, now).find((i) => i.field === field);

  it("accepts good recurrences and non-recurring tasks", () => {
    expect(recurrenceIssues({}, now)).toEqual([]);
    expect(recurrenceIssues({ schedule: "30 2 * * *", timezone: "America/New_York" }, now)).toEqual([]);
    expect(recurrenceIssues({ schedule: "0 9 L * *" }, now)).toEqual([]);
    expect(recurrenceIssues({ schedule: "*/5 9-17 * * MON-FRI", timezone: "Europe/Berlin" }, now)).toEqual(
      [],
    );
    expect(
      recurrenceIssues(
        {
          interval: 1,
          timezone: "Asia/Kolkata",
          valid_time_range: [0, 24],
          end_time: "2025-06-01T12:00:01Z",
          times: 1,
        },
        now,
      ),
    ).toEqual([]);
    expect(recurrenceIssues({ interval: 60, valid_time_range: [9, 17] }, now)).toEqual([]);
  });

  it.each([
    ["61 * * * *", /minute/],
    ["* * *", /5-field/],
    ["0 * * * * *", /5-field/],
    ["0 0 * * * * 2030", /5-field/],
    ["@daily", /5-field/],
    ["*/0 * * * *", /stepping/],
    ["0 0 * * 8", /dayOfWeek/],
    ["0 0 30 2 *", /never matches/],
    ["", /5-field/],
  ])("refuses the cron %j, naming schedule", (schedule, reason) => {
    expect(fields({ schedule })).toEqual(["schedule"]);
    expect(issue({ schedule }, "schedule")?.reason).toMatch(reason);
  });

  it("refuses a schedule that is not a string", () => {
    expect(fields({ schedule: 5 })).toEqual(["schedule"]);
  });

  it.each(["Mars/Olympus", "+01:00", "", "GMT+1", "America/New York"])(
    "refuses the timezone %j, naming timezone",
    (timezone) => {
      expect(fields({ schedule: "0 * * * *", timezone })).toEqual(["timezone"]);
    },
  );

  it("accepts IANA zones, including links such as US/Eastern", () => {
    for (const timezone of ["UTC", "Etc/GMT+5", "US/Eastern", "Australia/Lord_Howe", "Asia/Kathmandu"]) {
      expect(fields({ schedule: "0 * * * *", timezone })).toEqual([]);
    }
  });

  it("names interval when both schedule and interval are given", () => {
    expect(fields({ schedule: "0 * * * *", interval: 60 })).toEqual(["interval"]);
    expect(issue({ schedule: "0 * * * *", interval: 60 }, "interval")?.reason).toMatch(/not both/);
  });

  it.each([0, -5, 1.5, Number.NaN, Number.POSITIVE_INFINITY])("refuses the interval %s", (interval) => {
    expect(fields({ interval })).toEqual(["interval"]);
  });

  it.each([
    [[25, 3], /0 to 24/],
    [[-1, 5], /0 to 24/],
    [[9.5, 17], /0 to 24/],
    [[9, 9], /differ/],
    [[22, 6], /inverted/],
    [[24, 0], /inverted/],
    [[9], /start_hour, end_hour/],
  ])("refuses the window %j, naming valid_time_range", (range, reason) => {
    const r = { interval: 60, valid_time_range: range as [number, number] };
    expect(fields(r)).toEqual(["valid_time_range"]);
    expect(issue(r, "valid_time_range")?.reason).toMatch(reason);
  });

  it("refuses an end_time that is not in the future, or not a date", () => {
    expect(fields({ interval: 60, end_time: "2025-06-01T11:59:59Z" })).toEqual(["end_time"]);
    expect(fields({ interval: 60, end_time: now.toISOString() })).toEqual(["end_time"]);
    expect(issue({ interval: 60, end_time: "tomorrow" }, "end_time")?.reason).toMatch(/ISO 8601/);
    expect(fields({ interval: 60, end_time: "2025-06-01T12:00:01Z" })).toEqual([]);
  });

  it.each([0, -1, 2.5])("refuses times = %s", (times) => {
    expect(fields({ interval: 60, times })).toEqual(["times"]);
  });

  it("refuses window, end_time and times without schedule or interval", () => {
    const issues = recurrenceIssues(
      { valid_time_range: [9, 17], end_time: "2030-01-01T00:00:00Z", times: 3 },
      now,
    );
    expect(issues).toEqual([
      { field: "valid_time_range", reason: "needs schedule or interval" },
      { field: "end_time", reason: "needs schedule or interval" },
      { field: "times", reason: "needs schedule or interval" },
    ]);
  });

  it("reports every problem at once, each naming its field", () => {
    expect(
      fields({
        schedule: "bad",
        interval: 0,
        timezone: "Nowhere/Special",
        valid_time_range: [17, 9],
        end_time: "2020-01-01T00:00:00Z",
        times: 0,
      }),
    ).toEqual(["timezone", "schedule", "interval", "interval", "valid_time_range", "end_time", "times"]);
  });
});

describe("cron across DST changes", () => {
  it("America/New_York spring forward: 02:30 does not exist, so it runs at 03:00 that day", () => {
    const tz = "America/New_York";
    const fires = series(rec({ schedule: "30 2 * * *", timezone: tz }), at("2025-03-08T12:00:00Z"), 3);
    expect(fires.map((d) => local(d, tz))).toEqual([
      "2025-03-09 03:00",
      "2025-03-10 02:30",
      "2025-03-11 02:30",
    ]);
    expect(fires[0]?.toISOString()).toBe("2025-03-09T07:00:00.000Z");
  });

  it("America/New_York fall back: 01:30 happens twice but runs once, at the first pass", () => {
    const tz = "America/New_York";
    const fires = series(rec({ schedule: "30 1 * * *", timezone: tz }), at("2025-11-01T12:00:00Z"), 2);
    expect(fires.map((d) => d.toISOString())).toEqual([
      "2025-11-02T05:30:00.000Z", // 01:30 EDT; 01:30 EST (06:30Z) is not a second run
      "2025-11-03T06:30:00.000Z",
    ]);
    // Asked from between the two passes, the next run is the next day, not the second 01:30.
    expect(
      nextFireTime(
        rec({ schedule: "30 1 * * *", timezone: tz }),
        at("2025-11-02T05:45:00Z"),
        at("2025-01-01"),
      ),
    ).toEqual(at("2025-11-03T06:30:00Z"));
  });

  it("Europe/Berlin spring forward and fall back for 30 2 * * *", () => {
    const tz = "Europe/Berlin";
    const r = rec({ schedule: "30 2 * * *", timezone: tz });
    expect(series(r, at("2025-03-29T12:00:00Z"), 2).map((d) => d.toISOString())).toEqual([
      "2025-03-30T01:00:00.000Z", // 03:00 CEST: 02:30 was skipped by the clock
      "2025-03-31T00:30:00.000Z",
    ]);
    expect(series(r, at("2025-10-25T12:00:00Z"), 2).map((d) => d.toISOString())).toEqual([
      "2025-10-26T00:30:00.000Z", // first 02:30 (CEST); the repeated one (01:30Z) does not run
      "2025-10-27T01:30:00.000Z",
    ]);
  });

  it.each(["America/New_York", "Europe/Berlin", "Australia/Lord_Howe"])(
    "a daily 30 2 * * * in %s runs exactly once on every local day of a year",
    (tz) => {
      const fires = series(rec({ schedule: "30 2 * * *", timezone: tz }), at("2025-01-01T00:00:00Z"), 400);
      const days = fires.map((d) => local(d, tz).slice(0, 10));
      expect(new Set(days).size).toBe(days.length); // never twice on a day
      const first = Date.parse(`${days[0]}T00:00:00Z`);
      days.forEach((day, i) => {
        expect(Date.parse(`${day}T00:00:00Z`) - first).toBe(i * 24 * HOUR); // never a day skipped
      });
    },
  );

  it("an hourly cron keeps one run per real hour through both changes in New York", () => {
    const tz = "America/New_York";
    const r = rec({ schedule: "0 * * * *", timezone: tz });
    for (const from of ["2025-03-09T04:30:00Z", "2025-11-02T03:30:00Z"]) {
      const fires = series(r, at(from), 6);
      const gaps = fires.slice(1).map((d, i) => d.getTime() - (fires[i] as Date).getTime());
      expect(gaps).toEqual([HOUR, HOUR, HOUR, HOUR, HOUR]);
    }
    // The wall clock shows it: no 02:00 in spring, 01:00 twice in autumn.
    expect(series(r, at("2025-03-09T05:30:00Z"), 3).map((d) => local(d, tz))).toEqual([
      "2025-03-09 01:00",
      "2025-03-09 03:00",
      "2025-03-09 04:00",
    ]);
    expect(series(r, at("2025-11-02T04:30:00Z"), 3).map((d) => local(d, tz))).toEqual([
      "2025-11-02 01:00",
      "2025-11-02 01:00",
      "2025-11-02 02:00",
    ]);
  });

  it("an hourly cron with a 09–17 window in New York stays on local hours across the spring change", () => {
    const tz = "America/New_York";
    const r = rec({ schedule: "0 * * * *", timezone: tz, valid_time_range: [9, 17] });
    const fires = series(r, at("2025-03-08T00:00:00Z"), 24);
    expect(fires.map((d) => local(d, tz).slice(11))).toEqual(
      Array.from({ length: 3 }, () =>
        ["09", "10", "11", "12", "13", "14", "15", "16"].map((h) => `${h}:00`),
      ).flat(),
    );
    // 09:00 local is 14:00Z in EST and 13:00Z in EDT.
    expect(fires[0]?.toISOString()).toBe("2025-03-08T14:00:00.000Z");
    expect(fires[8]?.toISOString()).toBe("2025-03-09T13:00:00.000Z");
  });

  it("an interval task waiting for a New York window opens at local 09:00 on both sides of the change", () => {
    const tz = "America/New_York";
    const r = rec({ interval: 3600, timezone: tz, valid_time_range: [9, 17] });
    const anchor = at("2025-03-07T00:00:00Z");
    // The 17:00 local occurrence (22:00Z EST) waits for the next opening.
    expect(nextFireTime(r, at("2025-03-07T21:00:00Z"), anchor)).toEqual(at("2025-03-08T14:00:00Z"));
    expect(nextFireTime(r, at("2025-03-08T21:00:00Z"), anchor)).toEqual(at("2025-03-09T13:00:00Z"));
    expect(nextFireTime(r, at("2025-10-31T20:00:00Z"), anchor)).toEqual(at("2025-11-01T13:00:00Z"));
    expect(nextFireTime(r, at("2025-11-01T20:00:00Z"), anchor)).toEqual(at("2025-11-02T14:00:00Z"));
  });

  it("a window whose opening falls in the spring-forward gap", () => {
    const tz = "America/New_York";
    const anchor = at("2025-01-01T00:00:00Z");
    const from = at("2025-03-09T05:30:00Z"); // 00:30 EST on the change day
    // [2, 5): 02:00 does not exist, so the window opens at 03:00 EDT, the first instant after the gap.
    const wide = rec({ interval: 600, timezone: tz, valid_time_range: [2, 5] });
    expect(local(nextFireTime(wide, from, anchor), tz)).toBe("2025-03-09 03:00");
    // [2, 3): that day has no such hour at all, so the wait goes on to the next day.
    const gone = rec({ interval: 600, timezone: tz, valid_time_range: [2, 3] });
    expect(local(nextFireTime(gone, from, anchor), tz)).toBe("2025-03-10 02:00");
  });

  it("a window opening in the repeated hour opens at its first pass", () => {
    const tz = "America/New_York";
    const r = rec({ interval: 7200, timezone: tz, valid_time_range: [1, 4] });
    const next = nextFireTime(r, at("2025-11-02T03:59:00Z"), at("2025-11-02T00:00:00Z"));
    expect(next).toEqual(at("2025-11-02T05:00:00Z")); // 01:00 EDT, not 01:00 EST (06:00Z)
  });
});

describe("windows and midnight", () => {
  it("an occurrence after the window closes waits across midnight for the next opening", () => {
    const tz = "Europe/Berlin";
    const r = rec({ schedule: "0 20 * * *", timezone: tz, valid_time_range: [8, 12] });
    expect(series(r, at("2025-12-30T00:00:00Z"), 3).map((d) => local(d, tz))).toEqual([
      "2025-12-31 08:00",
      "2026-01-01 08:00",
      "2026-01-02 08:00",
    ]);
  });

  it("an occurrence before the window opens waits until later the same day", () => {
    const r = rec({ schedule: "15 6 * * *", valid_time_range: [9, 17] });
    expect(nextFireTime(r, at("2025-06-01T00:00:00Z"), at("2025-06-01T00:00:00Z"))).toEqual(
      at("2025-06-01T09:00:00Z"),
    );
  });

  it("occurrences outside the window are not dropped: they collapse into one run at the opening", () => {
    const r = rec({ interval: 3600, valid_time_range: [9, 17] });
    const anchor = at("2025-06-01T00:00:00Z");
    const fires = simulate(r, anchor, at("2025-06-02T23:59:00Z"));
    const hours = fires.map((d) => d.toISOString().slice(0, 13));
    // 00:00 on day 1 waits for 09:00; 17:00 … 08:00 overnight become the one 09:00 run of day 2.
    expect(hours).toEqual(
      ["2025-06-01", "2025-06-02"].flatMap((day) =>
        [9, 10, 11, 12, 13, 14, 15, 16].map((h) => `${day}T${h.toString().padStart(2, "0")}`),
      ),
    );
  });

  it("a window ending at 24 includes 23:xx; after midnight it waits for the next evening", () => {
    const r = rec({ schedule: "30 * * * *", valid_time_range: [22, 24] });
    expect(series(r, at("2025-06-01T21:00:00Z"), 4).map((d) => d.toISOString())).toEqual([
      "2025-06-01T22:00:00.000Z", // the 21:30 occurrence, waited for the opening
      "2025-06-01T22:30:00.000Z",
      "2025-06-01T23:30:00.000Z",
      "2025-06-02T22:00:00.000Z", // 00:30 … 21:30 the next day, waited for the opening
    ]);
  });

  it("a window crossing midnight ([22, 6)) is refused by validation", () => {
    expect(recurrenceIssues({ interval: 60, valid_time_range: [22, 6] }, at("2025-01-01"))).toEqual([
      { field: "valid_time_range", reason: "inverted: start_hour must be before end_hour" },
    ]);
  });

  it("the arithmetic itself reads start > end as crossing midnight (not reachable through the API)", () => {
    const r = rec({ schedule: "0 * * * *", valid_time_range: [22, 6] });
    const fires = series(r, at("2025-06-01T20:30:00Z"), 9).map((d) => d.toISOString().slice(0, 13));
    expect(fires).toEqual([
      "2025-06-01T22",
      "2025-06-01T23",
      "2025-06-02T00",
      "2025-06-02T01",
      "2025-06-02T02",
      "2025-06-02T03",
      "2025-06-02T04",
      "2025-06-02T05",
      "2025-06-02T22",
    ]);
  });
});

describe("month-end cron", () => {
  it("0 9 L * * runs on the last day of every month, Feb 29 in a leap year", () => {
    const fires = series(rec({ schedule: "0 9 L * *" }), at("2024-01-01T00:00:00Z"), 14);
    expect(fires.map((d) => d.toISOString().slice(0, 10))).toEqual([
      "2024-01-31",
      "2024-02-29",
      "2024-03-31",
      "2024-04-30",
      "2024-05-31",
      "2024-06-30",
      "2024-07-31",
      "2024-08-31",
      "2024-09-30",
      "2024-10-31",
      "2024-11-30",
      "2024-12-31",
      "2025-01-31",
      "2025-02-28",
    ]);
  });

  it("0 9 31 * * skips months without a 31st rather than running on the 30th", () => {
    const fires = series(rec({ schedule: "0 9 31 * *" }), at("2025-01-01T00:00:00Z"), 7);
    expect(fires.map((d) => d.toISOString().slice(0, 10))).toEqual([
      "2025-01-31",
      "2025-03-31",
      "2025-05-31",
      "2025-07-31",
      "2025-08-31",
      "2025-10-31",
      "2025-12-31",
    ]);
  });

  it("0 9 28-31 * * runs on each of those days that the month has", () => {
    const fires = series(rec({ schedule: "0 9 28-31 * *" }), at("2025-02-01T00:00:00Z"), 6);
    expect(fires.map((d) => d.toISOString().slice(0, 10))).toEqual([
      "2025-02-28",
      "2025-03-28",
      "2025-03-29",
      "2025-03-30",
      "2025-03-31",
      "2025-04-28",
    ]);
  });

  it("the last day is the last day in the task's timezone", () => {
    const tz = "America/Los_Angeles";
    const fires = series(rec({ schedule: "0 22 L * *", timezone: tz }), at("2025-01-02T00:00:00Z"), 2);
    expect(fires.map((d) => local(d, tz))).toEqual(["2025-01-31 22:00", "2025-02-28 22:00"]);
    expect(fires[0]?.toISOString()).toBe("2025-02-01T06:00:00.000Z");
  });
});

describe("times and end_time", () => {
  it("isExhausted once times occurrences fired; never without times", () => {
    const r = rec({ interval: 60, times: 3 });
    expect([0, 1, 2, 3, 4].map((n) => isExhausted(r, n))).toEqual([false, false, false, true, true]);
    expect(isExhausted(rec({ interval: 60 }), 1_000_000)).toBe(false);
  });

  it("an interval task with times: 3 fires three times and stops", () => {
    const anchor = at("2025-06-01T00:00:00Z");
    const fires = simulate(rec({ interval: 60, times: 3 }), anchor, at("2025-06-01T01:00:00Z"), 1000);
    expect(fires.map((d) => d.toISOString())).toEqual([
      "2025-06-01T00:00:00.000Z",
      "2025-06-01T00:01:00.000Z",
      "2025-06-01T00:02:00.000Z",
    ]);
  });

  it("end_time ends the schedule; an occurrence exactly at end_time still fires", () => {
    const r = rec({ schedule: "0 9 * * *", end_time: "2025-01-03T09:00:00Z" });
    expect(series(r, at("2025-01-01T00:00:00Z"), 10).map((d) => d.toISOString().slice(0, 10))).toEqual([
      "2025-01-01",
      "2025-01-02",
      "2025-01-03",
    ]);
    expect(nextFireTime(r, at("2025-01-03T09:00:00Z"), at("2025-01-01"))).toBeUndefined();
    const earlier = rec({ schedule: "0 9 * * *", end_time: "2025-01-03T08:59:59Z" });
    expect(series(earlier, at("2025-01-01T00:00:00Z"), 10)).toHaveLength(2);
  });

  it("an occurrence waiting for the window past end_time never fires", () => {
    const r = rec({ interval: 3600, valid_time_range: [9, 17], end_time: "2025-06-02T08:00:00Z" });
    const anchor = at("2025-06-01T00:00:00Z");
    expect(nextFireTime(r, at("2025-06-01T16:00:00Z"), anchor)).toBeUndefined();
  });

  it("whichever of times and end_time comes first ends it", () => {
    const anchor = at("2025-06-01T00:00:00Z");
    const r = rec({ interval: 600, times: 100, end_time: "2025-06-01T00:30:00Z" });
    expect(simulate(r, anchor, at("2025-06-02T00:00:00Z"))).toHaveLength(4);
  });

  it("a leap-day cron waits for the next leap year", () => {
    const r = rec({ schedule: "0 0 29 2 *" });
    expect(nextFireTime(r, at("2025-01-01T00:00:00Z"), at("2025-01-01"))).toEqual(at("2028-02-29T00:00:00Z"));
  });
});

describe("interval anchoring", () => {
  const anchor = at("2025-06-01T10:00:00Z");
  const r = rec({ interval: 300 });

  it("the anchor is the first occurrence; each next one is strictly after `after`", () => {
    expect(firstFireTime(r, anchor)).toEqual(anchor);
    expect(nextFireTime(r, at("2025-06-01T09:00:00Z"), anchor)).toEqual(anchor);
    expect(nextFireTime(r, anchor, anchor)).toEqual(at("2025-06-01T10:05:00Z"));
    expect(nextFireTime(r, at("2025-06-01T10:04:59.999Z"), anchor)).toEqual(at("2025-06-01T10:05:00Z"));
  });

  it("a late tick does not make it drift: the next is on the anchor's grid", () => {
    expect(nextFireTime(r, at("2025-06-01T10:07:43.250Z"), anchor)).toEqual(at("2025-06-01T10:10:00Z"));
    // Fire 1000 times, each time late by a varying amount, and compute the next from the late instant.
    let firedAt = anchor;
    for (let i = 1; i <= 1000; i++) {
      const next = nextFireTime(r, firedAt, anchor) as Date;
      expect(next.getTime() - anchor.getTime()).toBe(i * 300_000);
      firedAt = new Date(next.getTime() + ((i * 37_123) % 299_000)); // up to 299 s late
    }
  });

  it("after a long outage the next is the first slot after now, not a burst", () => {
    const next = nextFireTime(r, at("2025-06-03T17:42:10Z"), anchor);
    expect(next).toEqual(at("2025-06-03T17:45:00Z"));
  });

  it("a one-second interval works", () => {
    const one = rec({ interval: 1 });
    expect(series(one, anchor, 3).map((d) => d.getTime() - anchor.getTime())).toEqual([1000, 2000, 3000]);
  });

  it("cron is strict too, to the millisecond", () => {
    const daily = rec({ schedule: "0 10 * * *" });
    expect(nextFireTime(daily, at("2025-06-01T10:00:00.000Z"), anchor)).toEqual(at("2025-06-02T10:00:00Z"));
    expect(nextFireTime(daily, at("2025-06-01T09:59:59.999Z"), anchor)).toEqual(at("2025-06-01T10:00:00Z"));
    expect(firstFireTime(daily, at("2025-06-01T10:00:00.000Z"))).toEqual(at("2025-06-01T10:00:00Z"));
    expect(firstFireTime(daily, at("2025-06-01T10:00:00.001Z"))).toEqual(at("2025-06-02T10:00:00Z"));
  });

  it("no schedule and no interval: no occurrence", () => {
    expect(nextFireTime(rec({}), anchor, anchor)).toBeUndefined();
  });
});

describe("resumeFireTime", () => {
  const anchor = at("2025-06-01T00:00:00Z");

  it("after a long pause: one catch-up now, then the normal cadence", () => {
    const r = rec({ interval: 3600 });
    const lastFire = at("2025-06-01T05:00:00Z");
    const pausedAt = at("2025-06-01T05:20:00Z");
    const now = at("2025-06-04T13:17:00Z"); // about 80 occurrences missed
    expect(resumeFireTime(r, lastFire, pausedAt, now, anchor)).toEqual({ at: now, catchUp: true });
    // The tick then fires the catch-up and computes the next from it: back on the anchor's grid.
    expect(nextFireTime(r, now, anchor)).toEqual(at("2025-06-04T14:00:00Z"));
  });

  it("a daily cron paused for a week runs one catch-up, then at its usual time", () => {
    const tz = "Europe/Berlin";
    const r = rec({ schedule: "0 7 * * *", timezone: tz });
    const now = at("2025-03-27T15:00:00Z");
    const resumed = resumeFireTime(r, at("2025-03-20T06:00:00Z"), at("2025-03-20T12:00:00Z"), now, anchor);
    expect(resumed).toEqual({ at: now, catchUp: true });
    // The next one is 07:00 local on the other side of the DST change (05:00Z, not 06:00Z).
    expect(series(r, now, 4).map((d) => local(d, tz))).toEqual([
      "2025-03-28 07:00",
      "2025-03-29 07:00",
      "2025-03-30 07:00",
      "2025-03-31 07:00",
    ]);
    expect(nextFireTime(r, at("2025-03-30T00:00:00Z"), anchor)).toEqual(at("2025-03-30T05:00:00Z"));
  });

  it("a short pause that missed nothing resumes at the pending occurrence, no catch-up", () => {
    const r = rec({ interval: 3600 });
    const resumed = resumeFireTime(
      r,
      at("2025-06-01T05:00:00Z"),
      at("2025-06-01T05:10:00Z"),
      at("2025-06-01T05:50:00Z"),
      anchor,
    );
    expect(resumed).toEqual({ at: at("2025-06-01T06:00:00Z"), catchUp: false });
  });

  it("the pending occurrence falling due exactly at resume counts as missed", () => {
    const r = rec({ interval: 3600 });
    const now = at("2025-06-01T06:00:00Z");
    const resumed = resumeFireTime(r, at("2025-06-01T05:00:00Z"), at("2025-06-01T05:10:00Z"), now, anchor);
    expect(resumed).toEqual({ at: now, catchUp: true });
  });

  it("an occurrence already due but not yet fired when the pause came is caught up", () => {
    const r = rec({ schedule: "0 * * * *" });
    // Due at 06:00, paused at 06:00:30 before the minute tick fired it, resumed at 06:20.
    const now = at("2025-06-01T06:20:00Z");
    const resumed = resumeFireTime(r, at("2025-06-01T05:00:00Z"), at("2025-06-01T06:00:30Z"), now, anchor);
    expect(resumed).toEqual({ at: now, catchUp: true });
  });

  it("a task paused before its first occurrence", () => {
    const r = rec({ interval: 86_400 });
    const start = at("2025-06-10T00:00:00Z");
    const pausedAt = at("2025-06-05T00:00:00Z");
    expect(resumeFireTime(r, undefined, pausedAt, at("2025-06-08T00:00:00Z"), start)).toEqual({
      at: start,
      catchUp: false,
    });
    const late = at("2025-06-20T08:00:00Z");
    expect(resumeFireTime(r, undefined, pausedAt, late, start)).toEqual({ at: late, catchUp: true });
  });

  it("a catch-up outside the window waits for its opening", () => {
    const tz = "America/New_York";
    const r = rec({ interval: 3600, timezone: tz, valid_time_range: [9, 17] });
    const now = at("2025-06-04T03:00:00Z"); // 23:00 local
    const resumed = resumeFireTime(r, at("2025-06-01T14:00:00Z"), at("2025-06-01T14:30:00Z"), now, anchor);
    expect(resumed.catchUp).toBe(true);
    expect(local(resumed.at, tz)).toBe("2025-06-04 09:00");
  });

  it("nothing missed while the window was closed: the waiting occurrence keeps its opening", () => {
    const r = rec({ schedule: "0 * * * *", valid_time_range: [9, 17] });
    // Last ran 16:00, paused 16:30, resumed 20:00: 17:00–20:00 would only have waited for 09:00 anyway.
    const resumed = resumeFireTime(
      r,
      at("2025-06-01T16:00:00Z"),
      at("2025-06-01T16:30:00Z"),
      at("2025-06-01T20:00:00Z"),
      anchor,
    );
    expect(resumed).toEqual({ at: at("2025-06-02T09:00:00Z"), catchUp: false });
  });

  it("no catch-up once end_time has passed", () => {
    const r = rec({ interval: 3600, end_time: "2025-06-02T00:00:00Z" });
    const resumed = resumeFireTime(
      r,
      at("2025-06-01T05:00:00Z"),
      at("2025-06-01T05:10:00Z"),
      at("2025-06-03T00:00:00Z"),
      anchor,
    );
    expect(resumed).toEqual({ at: undefined, catchUp: false });
  });

  it("a resume loop never floods: one run between pause and the next regular slot", () => {
    const r = rec({ interval: 600 });
    const now = at("2025-06-02T10:03:00Z");
    const { at: catchUp } = resumeFireTime(
      r,
      at("2025-06-01T00:50:00Z"),
      at("2025-06-01T00:55:00Z"),
      now,
      anchor,
    );
    const following = nextFireTime(r, catchUp as Date, anchor) as Date;
    expect([catchUp, following]).toEqual([now, at("2025-06-02T10:10:00Z")]);
  });
});

describe("shiftFireTime (reorder)", () => {
  const anchor = at("2025-06-01T00:00:00Z");
  const r = rec({ interval: 3600 });

  it("moves the occurrence by the offset; negative is earlier", () => {
    const slot = at("2025-06-01T10:00:00Z");
    expect(shiftFireTime(slot, 300)).toEqual(at("2025-06-01T10:05:00Z"));
    expect(shiftFireTime(slot, -90)).toEqual(at("2025-06-01T09:58:30Z"));
    expect(shiftFireTime(slot, 0)).toEqual(slot);
  });

  it("after an earlier shift, the next is computed past the original slot: it does not fire twice", () => {
    const slot = at("2025-06-01T10:00:00Z");
    const shifted = shiftFireTime(slot, -900);
    const after = new Date(Math.max(slot.getTime(), shifted.getTime()));
    expect(nextFireTime(r, after, anchor)).toEqual(at("2025-06-01T11:00:00Z"));
  });

  it("after a later shift beyond the interval, the next is after the shifted run: no burst", () => {
    const slot = at("2025-06-01T10:00:00Z");
    const shifted = shiftFireTime(slot, 2.5 * 3600);
    const after = new Date(Math.max(slot.getTime(), shifted.getTime()));
    expect(nextFireTime(r, after, anchor)).toEqual(at("2025-06-01T13:00:00Z"));
  });
});
