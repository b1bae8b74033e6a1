// JSON over HTTP for the UIs' APIs: the error type carrying a status, JSON responses, and body
// reading with a size cap and field checks. No routing, no sockets.

/** A failed API request: its HTTP status and a message "Cannot x: detail". */
export class HttpError extends Error {
  /** HTTP status (400, 401, 403, 404, 409, 413...). */
  readonly status: number;
  /** Why, for programs (a FetchError's code), sent as `code` beside the message. */
  readonly code: string | undefined;

  /**
   * @param status HTTP status sent with the error
   * @param message "Cannot x: detail"
   * @param code why, for programs
   */
  constructor(status: number, message: string, code?: string) {
    super(message);
    this.name = "HttpError";
    this.status = status;
    this.code = code;
  }
}

/** Largest JSON request body, bytes: every API body is a few fields. */
export const MAX_JSON_BODY_BYTES = 64 * 1024;

/** A JSON response with `status` (default 200). */
export function jsonResponse(data: unknown, status = 200): Response {
  return new Response(JSON.stringify(data), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" },
  });
}

/** The JSON error answer `{ok: false, error, status}` for `err` (500 for unexpected ones). */
export function errorResponse(err: unknown): Response {
  if (err instanceof HttpError) {
    const answer = { ok: false, status: err.status, error: err.message };
    return jsonResponse(
      err.code === undefined ? answer : { ...answer, code: err.code },
      err.status,
    );
  }
  const message = err instanceof Error ? err.message : String(err);
  return jsonResponse({ ok: false, status: 500, error: message }, 500);
}

/**
 * Reads a JSON object body of at most `maxBytes`, reading no further than the cap.
 *
 * @throws {HttpError} 413 when larger, 400 when not a JSON object, 415 when not JSON
 */
export async function readJsonObject(
  req: Request,
  maxBytes = MAX_JSON_BODY_BYTES,
): Promise<Record<string, unknown>> {
  const type = req.headers.get("content-type") ?? "";
  if (!/^application\/json\b/i.test(type)) {
    throw new HttpError(415, `Cannot read the request: content-type must be application/json`);
  }
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > maxBytes) {
    throw new HttpError(413, `Cannot read the request: ${declared} bytes, limit is ${maxBytes}`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (req.body) {
    for await (const chunk of req.body) {
      size += chunk.length;
      if (size > maxBytes) {
        throw new HttpError(413, `Cannot read the request: over ${maxBytes} bytes`);
      }
      chunks.push(chunk);
    }
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (err) {
    if (!(err instanceof SyntaxError || err instanceof TypeError)) throw err;
    throw new HttpError(400, `Cannot read the request: body is not valid JSON (${err.message})`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new HttpError(400, "Cannot read the request: body must be a JSON object");
  }
  return value as Record<string, unknown>;
}

/** Reads a required or optional string field. @throws {HttpError} 400 on a wrong type */
export function stringField(body: Record<string, unknown>, name: string): string;
export function stringField(
  body: Record<string, unknown>,
  name: string,
  optional: "optional",
): string | undefined;
export function stringField(
  body: Record<string, unknown>,
  name: string,
  optional?: "optional",
): string | undefined {
  const value = body[name];
  if (value === undefined && optional) return undefined;
  if (typeof value !== "string") {
    throw new HttpError(400, `Cannot read the request: "${name}" must be a string`);
  }
  return value;
}

/** Reads an optional boolean field (default false). @throws {HttpError} 400 on a wrong type */
export function booleanField(body: Record<string, unknown>, name: string): boolean {
  const value = body[name];
  if (value === undefined) return false;
  if (typeof value !== "boolean") {
    throw new HttpError(400, `Cannot read the request: "${name}" must be true or false`);
  }
  return value;
}

/**
 * Reads an integer query parameter in [min, max], or `fallback` when absent.
 *
 * @throws {HttpError} 400 when present and not such an integer
 */
export function intParam(
  url: URL,
  name: string,
  range: { min: number; max: number; fallback: number },
): number {
  const text = url.searchParams.get(name);
  if (text === null || text === "") return range.fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < range.min || value > range.max) {
    throw new HttpError(
      400,
      `Cannot read the request: "${name}" must be an integer from ${range.min} to ${range.max}, got "${text}"`,
    );
  }
  return value;
}
