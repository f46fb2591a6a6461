import { health } from "../../core/health.ts";
import { ENV } from "../../core/names.ts";
import { lambdaDeps } from "../_shared/composition.ts";
import { apiHandler, type RouteMap } from "../_shared/http.ts";

export const routes: RouteMap = {
  "GET /v2/health": async (deps) => {
    const report = await health(deps, process.env[ENV.version] ?? "0.1.0");
    return { status: report.status === "healthy" ? 200 : 503, data: report };
  },
};

export const handler = apiHandler(routes, lambdaDeps);
