import { health } from "../../core/health.ts";
import { ENV } from "../../core/names.ts";
import type { RouteFn } from "../_shared/http.ts";

export const report: RouteFn = async (deps) => {
  const answer = await health(deps, process.env[ENV.version] ?? "0.1.0");
  return { status: answer.status === "healthy" ? 200 : 503, data: answer };
};
