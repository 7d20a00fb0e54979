// Every refusal as an RFC 9457 problem: Nest's own (an unknown path or method) and anything
// thrown by mistake (a 500 that names no internals; the error goes to the log).
import { ArgumentsHost, BadRequestException, Catch, HttpException, type ExceptionFilter } from "@nestjs/common";
import { STATUS_CODES } from "node:http";
import { sendJson, type Req, type Res } from "./http";
import { log } from "./logger";
import { problem, type Problem } from "./problem";

interface BodyParserError {
  type?: string;
  status?: number;
  message?: string;
}

/** The body parser's refusals (express's, which Nest hands over: its invalid JSON as a 400
 * BadRequestException, the rest as they are) as the Python API answers them. */
function bodyProblem(exception: unknown): Problem | undefined {
  if (exception instanceof BadRequestException) {
    // the only 400 Nest raises here: body-parser's SyntaxError (invalid JSON), or a path
    // with a broken %-encoding (URIError)
    const message = exception.message;
    if (/JSON/.test(message)) {
      const detail = `not valid JSON: ${message}`;
      return problem(422, "invalid-request", "Invalid request body", `(body): ${detail}`, {
        errors: [{ pointer: "#", field: "(body)", detail }],
      });
    }
    return problem(400, "bad-request", "Bad Request", message);
  }
  const err = exception as BodyParserError | null;
  if (!err || typeof err !== "object" || typeof err.type !== "string") return undefined;
  if (err.type === "entity.too.large") {
    return problem(413, "body-too-large", "Request body too large", "the body is larger than 64 KiB");
  }
  const status = err.status && err.status >= 400 && err.status < 500 ? err.status : 400;
  return problem(status, "unreadable-body", "Request body could not be read",
    "the body is not JSON text (UTF-8); send the checkout as a JSON object");
}

@Catch()
export class ProblemFilter implements ExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const req = http.getRequest<Req>();
    const res = http.getResponse<Res>();
    if (res.headersSent) return;
    const body = bodyProblem(exception);
    if (body) return sendJson(res, body.status, body.body, {}, true);
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const phrase = STATUS_CODES[status] ?? "Error";
      const p = problem(status, phrase.toLowerCase().replace(/ /g, "-"), phrase,
        status === 404 ? `no route ${req.method} ${req.path}` : phrase.toLowerCase());
      return sendJson(res, status, p.body, {}, true);
    }
    log.error({ err: exception, route: req.route?.path ?? req.path }, "unhandled error");
    const p = problem(500, "internal-error", "Internal Server Error", "the request failed inside the service");
    sendJson(res, 500, p.body, {}, true);
  }
}
