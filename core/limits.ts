/**
 * Per-tenant limits: the request rate (every authenticated request, in functions/_shared/http.ts) and the
 * submission quotas (in submitTask). The admin key is not limited.
 *
 * Rates are fixed one-minute windows counted in the store: one conditional `ADD count 1` on an item keyed
 * by (counter, minute), refused once the count reaches the limit. That is one write per counted request
 * and no read, it is exact across every Lambda container and the local stack alike, and the window items
 * expire by TTL. The price of fixed windows: a client may spend a window's limit at its end and the next
 * window's at once after, so a burst can reach twice the limit across a boundary.
 */
import { limitsOf, type Principal, type TenantLimits } from "./auth.ts";
import type { Deps } from "./deps.ts";
import { InsufficientResourcesError, RateLimitedError } from "./errors.ts";

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

/** Takes one unit of `counter` in the current window, or throws a 429 that says when to retry. */
async function take(
  deps: Pick<Deps, "counters" | "clock">,
  counter: string,
  limit: number,
  refusal: (retryAfterSeconds: number) => string,
): Promise<void> {
  const window = rateWindow(deps.clock.now());
  if (await deps.counters.takeRateToken(counter, window.start, limit, window.expiresAt)) return;
  throw new RateLimitedError(refusal(window.retryAfterSeconds), window.retryAfterSeconds);
}

const tenantLimits = (principal: Extract<Principal, { kind: "tenant" }>): TenantLimits =>
  principal.limits ?? limitsOf(undefined);

/**
 * Counts one request of a tenant key against `rate_limit_per_minute` (429, code 1010, past it). This is
 * one DynamoDB write per authenticated tenant request; the admin and public routes are not counted.
 */
export async function countRequest(
  deps: Pick<Deps, "counters" | "clock">,
  principal: Principal,
): Promise<void> {
  if (principal.kind !== "tenant") return;
  const limit = tenantLimits(principal).rate_limit_per_minute;
  await take(
    deps,
    `requests#${principal.tenantId}`,
    limit,
    (retry) => `rate limit: at most ${limit} requests per minute for this tenant; retry after ${retry} s`,
  );
}

/**
 * `max_submissions_per_minute` of a tenant key: a 429, code 1010, with Retry-After. Taken when a submission
 * would create a task (not for an idempotent replay, which creates nothing). The admin key is not limited.
 */
export async function takeSubmission(
  deps: Pick<Deps, "counters" | "clock">,
  principal: Principal,
): Promise<void> {
  if (principal.kind !== "tenant") return;
  const perMinute = tenantLimits(principal).max_submissions_per_minute;
  await take(
    deps,
    `submissions#${principal.tenantId}`,
    perMinute,
    (retry) =>
      `max_submissions_per_minute: the tenant's quota of ${perMinute} submissions per minute is used; retry after ${retry} s`,
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
  new InsufficientResourcesError(
    `max_queued_tasks: the tenant's quota of ${limit} queued tasks is reached; ` +
      "wait for queued work to start, or cancel some",
  );
