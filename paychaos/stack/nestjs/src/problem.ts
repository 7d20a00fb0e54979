// RFC 9457 problem details: every error the service answers has this shape, as the Python
// API's do (`type`, `title`, `status`, `detail`, and `errors` naming each bad field).
export const PROBLEM_BASE = "https://paychaos.dev/problems/";
export const PROBLEM_CONTENT_TYPE = "application/problem+json";

export interface FieldError {
  pointer: string;
  field: string;
  detail: string;
}

export interface Problem {
  status: number;
  body: Record<string, unknown>;
  headers: Record<string, string>;
}

export function problem(
  status: number,
  kind: string,
  title: string,
  detail: string,
  extra: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Problem {
  const body: Record<string, unknown> = { type: PROBLEM_BASE + kind, title, status, detail };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined && v !== null) body[k] = v;
  return { status, body, headers };
}

export function validationProblem(errors: FieldError[]): Problem {
  const summary = errors
    .slice(0, 5)
    .map((e) => `${e.field}: ${e.detail}`)
    .join("; ");
  return problem(422, "invalid-request", "Invalid request body", summary || "the request body is not valid", {
    errors,
  });
}
