import type { RouteMap } from "../_shared/http.ts";
import type { RouteGroup } from "../_shared/routes.ts";
import { routes as health } from "./health.ts";
import { routes as instances } from "./instances.ts";
import { routes as pools } from "./pools.ts";
import { routes as tasks } from "./tasks.ts";
import { routes as tenants } from "./tenants.ts";

/** Every group's routes, for servers that host all groups in one process (local/). */
export const ROUTE_MAPS: Record<RouteGroup, RouteMap> = { health, tasks, instances, tenants, pools };
