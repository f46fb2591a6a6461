/**
 * A small read-through cache whose entries live for a fixed time, for records that may be a little stale
 * (API keys and tenants in a Lambda container). The clock is injected so that tests can move time.
 */
export class TtlCache<K, V> {
  readonly #entries = new Map<K, { value: Promise<V | undefined>; expiresAt: number }>();

  constructor(
    /** Milliseconds since the epoch. */
    private readonly now: () => number,
    private readonly ttlMs: number,
    /** Past this many entries the oldest is dropped, so that a flood of distinct keys cannot grow memory. */
    private readonly maxEntries = 10_000,
  ) {}

  /**
   * The cached value of `key`, or what `load` returns (concurrent callers share one load). Only found values
   * are kept: undefined and failures are asked for again next time, so a record created a moment ago is
   * never hidden by an earlier miss.
   */
  get(key: K, load: () => Promise<V | undefined>): Promise<V | undefined> {
    const hit = this.#entries.get(key);
    if (hit && hit.expiresAt > this.now()) return hit.value;
    this.#entries.delete(key);
    const value = load();
    this.#entries.set(key, { value, expiresAt: this.now() + this.ttlMs });
    const forget = () => {
      if (this.#entries.get(key)?.value === value) this.#entries.delete(key);
    };
    value.then((found) => found === undefined && forget(), forget);
    while (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#entries.delete(oldest.value);
    }
    return value;
  }

  /** Drops the entries whose cached value matches `predicate` (or that are still loading). */
  async forget(predicate: (value: V) => boolean): Promise<void> {
    for (const [key, entry] of [...this.#entries]) {
      const value = await entry.value.catch(() => undefined);
      if (value === undefined || predicate(value)) {
        if (this.#entries.get(key) === entry) this.#entries.delete(key);
      }
    }
  }

  get size(): number {
    return this.#entries.size;
  }
}
