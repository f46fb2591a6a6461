/**
 * Per-tenant limits: the request rate (every authenticated request, in functions/_shared/http.ts) and the
 * submission quotas (submissions are metered with their request; queued tasks in submitTask). The admin
 * key is not limited.
 *
 * Rates are fixed one-minute windows counted in the store: one conditional `ADD` on an item keyed by
 * (tenant, minute), holding a counter for requests and one for submissions, refused once a count reaches
 * its limit. A submission counts as a request and a submission in that one write, and no read. It is exact
 * across every Lambda container and the local stack alike, and the window items expire by TTL. The price
 * of fixed windows: a client may spend a window's limit at its end and the next window's at once after,
 * so a burst can reach twice the limit across a boundary.
 */
import { limitsOf, type Principal, type TenantLimits } from "./auth.ts";
import type { Deps } from "./deps.ts";
import { QueuedQuotaError, RateLimitedError } from "./errors.ts";
import type { RateLimits } from "./ports.ts";

export const RATE_WINDOW_SECONDS = 60;
/** Window items outlive their window by this much before DynamoDB's TTL may delete them. */
const WINDOW_RETENTION_SECONDS = 300;

/** The fixed window `now` falls in: its start (the counter item's key) and the seconds until the next. */
export function rateWindow(now: Date) {
  const windowMs = RATE_WINDOW_SECONDS * 1000;
  const startMs = Math.floor(now.getTime() / windowMs) * windowMs;
  const endMs = startMs + windowMs;
  return {
    start: new Date(startMs).toISOString(),
    /** Whole seconds to the next window, at least 1: the Retry-After of a refusal. */
    retryAfterSeconds: Math.max(1, Math.ceil((endMs - now.getTime()) / 1000)),
    /** Epoch seconds, the TTL attribute of the counter item. */
    expiresAt: Math.floor(endMs / 1000) + WINDOW_RETENTION_SECONDS,
  };
}

const tenantLimits = (principal: Extract<Principal, { kind: "tenant" }>): TenantLimits =>
  principal.limits ?? limitsOf(undefined);

/**
 * Counts one request of a tenant key against `rate_limit_per_minute` (a 429, code 1010, with Retry-After,
 * past it) and, for a `submission`, one submission against `max_submissions_per_minute`: one store write.
 * The admin key and public routes are not counted.
 *
 * Past the submission quota, the request is counted alone and the quota's 429 is returned, not thrown: the
 * submit raises it unless the request replays a stored submission, which creates nothing. Every other
 * submit request, valid or not, counts as a submission.
 */
export async function countRequest(
  deps: Pick<Deps, "counters" | "clock">,
  principal: Principal,
  submission = false,
): Promise<RateLimitedError | undefined> {
  if (principal.kind !== "tenant") return undefined;
  const limits = tenantLimits(principal);
  const requests = limits.rate_limit_per_minute;
  const perMinute = limits.max_submissions_per_minute;
  const window = rateWindow(deps.clock.now());
  const take = (counters: RateLimits) =>
    deps.counters.takeRateTokens(principal.tenantId, window.start, counters, window.expiresAt);
  const retry = window.retryAfterSeconds;
  const full = await take(submission ? { requests, submissions: perMinute } : { requests });
  if (full === "requests" || (full === "submissions" && (await take({ requests })))) {
    throw new RateLimitedError(
      `rate limit: at most ${requests} requests per minute for this tenant; retry after ${retry} s`,
      retry,
    );
  }
  if (full !== "submissions") return undefined;
  return new RateLimitedError(
    `max_submissions_per_minute: the tenant's quota of ${perMinute} submissions per minute is used; retry after ${retry} s`,
    retry,
  );
}

/**
 * `max_queued_tasks` of a tenant key (none for the admin key). The write that queues a submitted task
 * enforces it: the tenant's queued-task counter (core/commit.ts) goes up only while under it, so it holds
 * exactly even for racing submissions, and costs no read. A task dispatched as it is submitted is never
 * queued, so it does not count.
 */
export const queuedLimitOf = (principal: Principal): number | undefined =>
  principal.kind === "tenant" ? tenantLimits(principal).max_queued_tasks : undefined;

/**
 * The refusal of a submission past max_queued_tasks: a 409, code 1005 (resources insufficient). It clears
 * when queued work starts or is canceled, which no clock can promise, so it is not a 429 with a Retry-After.
 */
export const queuedQuotaReached = (limit: number) =>
  new QueuedQuotaError(
    `max_queued_tasks: the tenant's quota of ${limit} queued tasks is reached; ` +
      "wait for queued work to start, or cancel some",
  );
