import { describe, expect, it } from "vitest";
import { detectRateLimit } from "../../core/rate-limits.ts";

describe("detectRateLimit", () => {
  const now = new Date("2026-11-27T16:00:00Z");

  it.each([
    'API Error: 429 {"type":"error","error":{"type":"rate_limit_error","message":"..."}}',
    "You've hit your session limit · resets 8:30pm (Asia/Tokyo)",
    "You've hit your limit · resets 1:30am (Asia/Dhaka)",
    "■ You've hit your usage limit. Upgrade to Pro or try again in 5 days 22 hours 11 minutes.",
    "stream error: exceeded retry limit, last status: 429 Too Many Requests",
    '{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}',
    "You have exhausted your capacity on this model. Your quota will reset after 8h44m7s.",
    "[API Error: You have exhausted your daily quota on this model.]",
    "Quota exceeded for quota metric 'Generate Content API requests per minute'",
    "HTTP 429",
    "Request was rate-limited",
  ])("recognises %j", (text) => {
    expect(detectRateLimit(text, now)).toBeDefined();
  });

  it.each([
    "All tests pass.",
    "no rate limiting here",
    "Added a rate limiter to the API",
    '{"usage":{"input_tokens":429,"output_tokens":1429}}',
    "processed 429 files",
    "exit code 1: Cannot find module 'x'",
  ])("does not mistake %j for a limit", (text) => {
    expect(detectRateLimit(text, now)).toBeUndefined();
  });

  it("reads an ISO time, UTC when it has no offset", () => {
    expect(detectRateLimit("usage limit reached, resets 2026-11-27T18:00:00Z", now)?.resetAt).toEqual(
      new Date("2026-11-27T18:00:00Z"),
    );
    expect(detectRateLimit("rate limit; resets 2026-11-27T18:30:00+01:00", now)?.resetAt).toEqual(
      new Date("2026-11-27T17:30:00Z"),
    );
    expect(detectRateLimit("rate limit until 2026-11-28T09:00", now)?.resetAt).toEqual(
      new Date("2026-11-28T09:00:00Z"),
    );
  });

  it("skips a stale timestamp for a later reset time", () => {
    const text = '{"error":"Error: 429 …","timestamp":"2026-11-27T15:59:58.000Z"}\nusage limit · resets 5pm';
    expect(detectRateLimit(text, now)?.resetAt).toEqual(new Date("2026-11-27T17:00:00Z"));
  });

  it.each([
    ["try again in 37 minutes", 37 * 60],
    ["retry after 120 seconds", 120],
    ["Please retry in 37.5s", 37.5],
    ["Your quota will reset after 2h30m12s.", 2 * 3600 + 30 * 60 + 12],
    ["or try again in 5 days 22 hours 11 minutes.", 5 * 86_400 + 22 * 3600 + 11 * 60],
    ["try again in 1 hour and 5 minutes", 3900],
    ["429 Too Many Requests\nRetry-After: 90", 90],
  ])("reads the delay in %j", (text, seconds) => {
    expect(detectRateLimit(`rate limit: ${text}`, now)?.resetAt).toEqual(
      new Date(now.getTime() + seconds * 1000),
    );
  });

  it.each([
    ["usage limit reached … resets at 3pm", "2026-11-28T15:00:00Z"], // 3pm has passed today
    ["usage limit reached, resets 5pm", "2026-11-27T17:00:00Z"],
    ["usage limit reached, resets at 15:00 (UTC)", "2026-11-28T15:00:00Z"],
    ["usage limit reached, resets 12am", "2026-11-28T00:00:00Z"],
    ["You've hit your limit for Claude messages. Limits will reset at 9:30 AM.", "2026-11-28T09:30:00Z"],
    ["You've hit your session limit · resets 8:30pm (Asia/Tokyo)", "2026-11-28T11:30:00Z"],
    ["Claude usage limit reached. Your limit will reset at 1pm (Etc/GMT+5).", "2026-11-27T18:00:00Z"],
    ["usage limit, resets 9am (Not/AZone)", "2026-11-28T09:00:00Z"],
  ])("reads the clock time in %j as the next one", (text, expected) => {
    expect(detectRateLimit(text, now)?.resetAt).toEqual(new Date(expected));
  });

  it.each([
    // Claude's subscription limits: a time for the next few hours, a date further out.
    ["You've hit your 5-hour limit · resets 12:14am (UTC)", "2026-11-28T00:14:00Z"],
    ["You've hit your Opus limit · resets Dec 6, 12:21pm (UTC)", "2026-12-06T12:21:00Z"],
    ["You've hit your weekly limit · resets Dec 6, 1:52am (UTC)", "2026-12-06T01:52:00Z"],
    ["You've hit your Sonnet limit · resets Nov 30, 9am (America/New_York)", "2026-11-30T14:00:00Z"],
    // Codex: a 12-hour time on the same day, or a date with an ordinal and a year.
    ["You’ve hit your usage limit. … or try again at 9:46 PM.", "2026-11-27T21:46:00Z"],
    ["You’ve hit your usage limit. … or try again at Dec 2nd, 2026 12:16 AM.", "2026-12-02T00:16:00Z"],
    ["You’ve hit your usage limit. … or try again at December 1st, 2026 1:05 PM.", "2026-12-01T13:05:00Z"],
    // 24-hour clocks, and a zone in parentheses (Berlin is UTC+1 in November, +2 in summer).
    ["usage limit reached, resets Nov 28, 15:30 (Europe/Berlin)", "2026-11-28T14:30:00Z"],
    ["usage limit reached, resets Jul 1, 15:30 (Europe/Berlin)", "2027-07-01T13:30:00Z"],
  ])("reads the dated or clock reset in %j", (text, expected) => {
    expect(detectRateLimit(text, now)?.resetAt).toEqual(new Date(expected));
  });

  it("puts a date without a year that has passed in the next year", () => {
    const newYearsEve = new Date("2026-12-31T22:00:00Z");
    expect(
      detectRateLimit("You've hit your weekly limit · resets Jan 3, 4:10am (UTC)", newYearsEve)?.resetAt,
    ).toEqual(new Date("2027-01-03T04:10:00Z"));
    // A time after midnight on the last day of the year is on the first day of the next.
    expect(
      detectRateLimit("You've hit your 5-hour limit · resets 1:00am (UTC)", newYearsEve)?.resetAt,
    ).toEqual(new Date("2027-01-01T01:00:00Z"));
  });

  it("resets Gemini's daily quota at the next midnight Pacific time", () => {
    const text = "You have exhausted your daily quota on this model.";
    // 16:00 UTC is 08:00 in Los Angeles (PST, UTC−8): midnight is 08:00 UTC the next day.
    expect(detectRateLimit(text, now)?.resetAt).toEqual(new Date("2026-11-28T08:00:00Z"));
    // In summer (PDT, UTC−7) midnight is 07:00 UTC.
    expect(detectRateLimit(text, new Date("2026-07-01T06:00:00Z"))?.resetAt).toEqual(
      new Date("2026-07-01T07:00:00Z"),
    );
  });

  it("gives no reset time when none can be read or it has passed", () => {
    expect(detectRateLimit("429 Too Many Requests", now)).toEqual({});
    // Its date has passed.
    expect(detectRateLimit("You've hit your usage limit, try again at Jul 5th, 2026 8:19 PM.", now)).toEqual(
      {},
    );
    expect(detectRateLimit("rate limit; resets 25:00", now)).toEqual({});
  });
});
