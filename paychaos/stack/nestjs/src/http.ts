// The few pieces of express's request and response this service touches (express ships no
// types of its own, and @types/express would be a dependency for four methods).
export interface Req {
  method: string;
  path: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body?: unknown;
  route?: { path?: string };
}

export interface Res {
  statusCode: number;
  headersSent: boolean;
  status(code: number): Res;
  setHeader(name: string, value: string): void;
  type(value: string): Res;
  send(body: string): Res;
  on(event: "finish" | "close", listener: () => void): void;
}

export function sendJson(res: Res, status: number, body: unknown, headers: Record<string, string> = {}, problem = false): void {
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  res.status(status).type(problem ? "application/problem+json" : "application/json").send(JSON.stringify(body));
}
