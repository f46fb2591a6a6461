import type { APIGatewayProxyResult } from "aws-lambda";
import { DomainError, ERROR_CODES, type ErrorCode, RateLimitedError } from "../../core/errors.ts";

/** The one mapping from error codes to HTTP statuses. */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  "1001": 400,
  "1002": 404,
  "1003": 404,
  "1004": 404,
  "1005": 409,
  "1006": 404,
  "1007": 409,
  "1008": 401,
  "1009": 403,
  "1010": 429,
  "1011": 413,
  "1012": 404,
  "1013": 404,
  "1014": 404,
  "1015": 404,
  "2001": 500,
  "2002": 503,
  "2003": 503,
};

/** The body of an error answer. */
export const errorBody = (code: ErrorCode, message: string) =>
  JSON.stringify({ code, message, success: false, data: null });

/** Messages may quote what a client sent; an answer never grows with it. */
const MAX_MESSAGE_LENGTH = 1000;

const envelope = (
  statusCode: number,
  code: ErrorCode,
  message: string,
  headers: Record<string, string> = {},
): APIGatewayProxyResult => ({
  statusCode,
  headers: { "content-type": "application/json", ...headers },
  body: errorBody(
    code,
    message.length > MAX_MESSAGE_LENGTH ? `${message.slice(0, MAX_MESSAGE_LENGTH)}…` : message,
  ),
});

/** DynamoDB errors worth a 503 (the client may retry), by SDK error name. */
const DATABASE_BUSY = new Set([
  "ProvisionedThroughputExceededException",
  "ThrottlingException",
  "RequestLimitExceeded",
  "InternalServerError",
]);

/** Turns any error into an error envelope. Internals are logged, never answered. */
export function errorResponse(
  error: unknown,
  log: { error: (message: string, extra: { error: unknown }) => void },
): APIGatewayProxyResult {
  if (error instanceof RateLimitedError) {
    return envelope(HTTP_STATUS[error.code], error.code, error.message, {
      "retry-after": String(error.retryAfterSeconds),
    });
  }
  if (error instanceof DomainError) return envelope(HTTP_STATUS[error.code], error.code, error.message);
  log.error("request failed", { error });
  if (DATABASE_BUSY.has((error as { name?: string })?.name ?? "")) {
    return envelope(503, ERROR_CODES.database, "the database is busy; try again");
  }
  return envelope(500, ERROR_CODES.system, "internal error");
}
