/**
 * `npm run openapi`: writes the API's OpenAPI 3.1 document (as GET /v2/openapi.json serves it) to the path
 * given, or to docs/openapi.json.
 */
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { apiDocumentText } from "../functions/_shared/openapi.ts";
import { ROUTES } from "../functions/_shared/routes.ts";

const target = resolve(process.argv[2] ?? resolve(import.meta.dirname, "../docs/openapi.json"));
writeFileSync(target, apiDocumentText(ROUTES));
console.log(`wrote ${target}`);
