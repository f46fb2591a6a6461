import { health } from "../../core/health.ts";
import { ENV } from "../../core/names.ts";
import { RAW_CONTENT_TYPES, type RouteFn } from "../_shared/http.ts";
import { apiDocumentText } from "../_shared/openapi.ts";
import { ROUTES } from "../_shared/routes.ts";

export const report: RouteFn = async (deps) => {
  const answer = await health(deps, process.env[ENV.version] ?? "0.1.0");
  return { status: answer.status === "healthy" ? 200 : 503, data: answer };
};

/** The document as served, by base path (one per stage): built once per process. */
const documents = new Map<string, string>();

export const apiDocument: RouteFn = async (_deps, { basePath }) => {
  const text = documents.get(basePath) ?? apiDocumentText(ROUTES, basePath || "/");
  documents.set(basePath, text);
  return { raw: text, contentType: RAW_CONTENT_TYPES.document };
};
