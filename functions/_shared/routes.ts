/**
 * The route table: the one list of HTTP routes, served by API Gateway (infra) and by the local server.
 * `group` names the Lambda that serves the route: functions/api/<group>.ts.
 */
export const ROUTE_GROUPS = ["health", "tasks", "instances", "tenants", "pools"] as const;
export type RouteGroup = (typeof ROUTE_GROUPS)[number];

export interface Route {
  method: "GET" | "POST" | "DELETE";
  /** API Gateway resource path; `{name}` is a parameter, `{name+}` a greedy one. */
  path: string;
  group: RouteGroup;
  /** Routes that need no API key. */
  public?: boolean;
}

export const ROUTES: readonly Route[] = [
  { method: "GET", path: "/v2/health", group: "health", public: true },
  { method: "POST", path: "/v2/tasks", group: "tasks" },
  { method: "GET", path: "/v2/tasks", group: "tasks" },
  { method: "GET", path: "/v2/tasks/{uuid}", group: "tasks" },
  { method: "DELETE", path: "/v2/tasks/{uuid}", group: "tasks" },
  { method: "GET", path: "/v2/tasks/{uuid}/status", group: "tasks" },
  { method: "GET", path: "/v2/tasks/{uuid}/logs", group: "tasks" },
  { method: "POST", path: "/v2/tasks/{uuid}/tags", group: "tasks" },
  { method: "GET", path: "/v2/tasks/{uuid}/files", group: "tasks" },
  { method: "GET", path: "/v2/tasks/{uuid}/files/{path+}", group: "tasks" },
  { method: "GET", path: "/v2/tasks/{uuid}/events", group: "tasks" },
  { method: "POST", path: "/v2/tasks/{uuid}/pause", group: "tasks" },
  { method: "POST", path: "/v2/tasks/{uuid}/resume", group: "tasks" },
  { method: "POST", path: "/v2/tasks/{uuid}/reorder", group: "tasks" },
  { method: "GET", path: "/v2/instances", group: "instances" },
  { method: "GET", path: "/v2/instances/{run_id}", group: "instances" },
  { method: "GET", path: "/v2/instances/{run_id}/status", group: "instances" },
  { method: "GET", path: "/v2/instances/{run_id}/logs", group: "instances" },
  { method: "POST", path: "/v2/instances/{run_id}/tags", group: "instances" },
  { method: "POST", path: "/v2/tenants", group: "tenants" },
  { method: "GET", path: "/v2/tenants", group: "tenants" },
  { method: "POST", path: "/v2/tenants/{id}/keys", group: "tenants" },
  { method: "GET", path: "/v2/tenants/{id}/keys", group: "tenants" },
  { method: "DELETE", path: "/v2/tenants/{id}/keys/{key_id}", group: "tenants" },
  { method: "POST", path: "/v2/pools/{name}/pause", group: "pools" },
  { method: "POST", path: "/v2/pools/{name}/resume", group: "pools" },
  { method: "POST", path: "/v2/dispatcher/start", group: "pools" },
  { method: "POST", path: "/v2/dispatcher/stop", group: "pools" },
  { method: "GET", path: "/v2/dispatcher/status", group: "pools" },
  { method: "GET", path: "/v2/workers", group: "pools" },
];

/** decodeURIComponent, or undefined for a malformed escape (e.g. `%E0%A4%A`): such a path matches no route. */
function decoded(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/** Matches a concrete path against a route path; returns the path parameters, or undefined. */
export function matchPath(routePath: string, path: string): Record<string, string> | undefined {
  const want = routePath.split("/").filter(Boolean);
  const got = path.split("/").filter(Boolean);
  const params: Record<string, string> = {};
  for (const [i, segment] of want.entries()) {
    const greedy = /^\{(.+)\+\}$/.exec(segment);
    if (greedy?.[1]) {
      if (i >= got.length) return undefined;
      const rest = got.slice(i).map(decoded);
      if (rest.some((part) => part === undefined)) return undefined;
      params[greedy[1]] = rest.join("/");
      return params;
    }
    const value = got[i];
    if (value === undefined) return undefined;
    const param = /^\{(.+)\}$/.exec(segment);
    if (param?.[1]) {
      const text = decoded(value);
      if (text === undefined) return undefined;
      params[param[1]] = text;
    } else if (segment !== value) return undefined;
  }
  return want.length === got.length ? params : undefined;
}
