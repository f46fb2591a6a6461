import { useEffect, useState } from "preact/hooks";
import { SwitchyardClient, SwitchyardError } from "../sdk/client.ts";

/** The API key lives in this tab's sessionStorage only (never a cookie, never the query string). */
const KEY_ITEM = "switchyard.key";

/** A key passed as the URL fragment `#key=…` (for automation) is kept, and taken out of the address. */
export function keyFromFragment(): void {
  const match = /^#key=([^&]+)/.exec(location.hash);
  if (!match?.[1]) return;
  sessionStorage.setItem(KEY_ITEM, decodeURIComponent(match[1]));
  history.replaceState(null, "", `${location.pathname}${location.search}#/tasks`);
}

export const storedKey = () => sessionStorage.getItem(KEY_ITEM) ?? undefined;
export const keepKey = (key: string) => sessionStorage.setItem(KEY_ITEM, key);
export const forgetKey = () => sessionStorage.removeItem(KEY_ITEM);

/** The API beside the dashboard: its origin and the base path the dashboard is served under. */
export const clientFor = (key: string) =>
  new SwitchyardClient({ url: new URL(".", location.href).href.replace(/\/$/, ""), key, attempts: 2 });

/** An error as a person reads it: the API's message with its code. */
export const describe = (err: unknown) =>
  err instanceof SwitchyardError ? `${err.message} (${err.code})` : String(err);

/** Calls `load` now and every `everyMs` while the page shows it; `again` calls it at once. */
export function usePoll<T>(load: () => Promise<T>, everyMs: number, deps: unknown[]) {
  const [state, setState] = useState<{ data?: T; error?: string }>({});
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    const run = () =>
      load().then(
        (data) => live && setState({ data }),
        (err: unknown) => live && setState((s) => ({ ...s, error: describe(err) })),
      );
    void run();
    const timer = everyMs > 0 ? setInterval(run, everyMs) : undefined;
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [...deps, tick]);
  return { ...state, again: () => setTick((n) => n + 1) };
}

/** Seconds as `1.2 s`, `3 min 4 s`, `2 h 5 min`. */
export function duration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return "";
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}

/** Seconds between two instants (the second one now when absent). */
export const between = (from?: string | null, to?: string | null) =>
  from ? ((to ? Date.parse(to) : Date.now()) - Date.parse(from)) / 1000 : undefined;

export const usd = (cost: number | undefined) => (cost === undefined ? "" : `$${cost.toFixed(4)}`);
