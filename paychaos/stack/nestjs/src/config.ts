// Command-line settings, named like the Python API's (`--database-url`, `--gateway-url`, ...).
// A bad flag or value is named and the process exits 2, without a stack trace.

export interface Settings {
  host: string;
  port: number;
  databaseUrl: string;
  gatewayUrl: string;
  gatewayTimeoutS: number;
  dbStatementTimeoutMs: number;
  dbPoolMax: number;
  dbAcquireTimeoutS: number;
  reconcileIntervalS: number;
  reconcileAfterS: number;
  giveUpAfterS: number;
  maxBodyBytes: number;
  /** Browser origins allowed to call the API (the checkout page's); none: no CORS. */
  corsOrigins: string[];
}

const NUMBERS: Record<string, keyof Settings> = {
  "--port": "port",
  "--gateway-timeout-s": "gatewayTimeoutS",
  "--db-statement-timeout-ms": "dbStatementTimeoutMs",
  "--db-pool-max": "dbPoolMax",
  "--db-acquire-timeout-s": "dbAcquireTimeoutS",
  "--reconcile-interval-s": "reconcileIntervalS",
};
const STRINGS: Record<string, keyof Settings> = {
  "--host": "host",
  "--database-url": "databaseUrl",
  "--gateway-url": "gatewayUrl",
};

export class UsageError extends Error {}

export function parseArgs(argv: string[]): Settings {
  const s: Settings = {
    host: "127.0.0.1",
    port: 8000,
    databaseUrl: "",
    gatewayUrl: "",
    gatewayTimeoutS: 2.0,
    dbStatementTimeoutMs: 2000,
    dbPoolMax: 10,
    dbAcquireTimeoutS: 1.0,
    reconcileIntervalS: 5.0,
    reconcileAfterS: 10.0,
    giveUpAfterS: 120.0,
    maxBodyBytes: 64 * 1024,
    corsOrigins: [],
  };
  const out = s as unknown as Record<string, string | number>;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (flag === "--cors-origin") {
      // repeatable, like the Python API's: one origin a flag
      if (argv[i + 1] === undefined || !/^https?:\/\/[^/]+$/.test(argv[i + 1])) {
        throw new UsageError(`--cors-origin: ${JSON.stringify(argv[i + 1] ?? "")} is not an origin (http://host:port)`);
      }
      s.corsOrigins.push(argv[++i]);
      continue;
    }
    if (!(flag in NUMBERS) && !(flag in STRINGS)) {
      throw new UsageError(`unknown argument ${JSON.stringify(flag)}`);
    }
    if (value === undefined) throw new UsageError(`${flag} needs a value`);
    i++;
    if (flag in STRINGS) {
      out[STRINGS[flag]] = value;
    } else {
      const n = Number(value);
      if (!Number.isFinite(n) || n <= 0) {
        throw new UsageError(`${flag}: ${JSON.stringify(value)} is not a positive number`);
      }
      out[NUMBERS[flag]] = n;
    }
  }
  if (!Number.isInteger(s.port) || s.port > 65535) throw new UsageError(`--port: ${s.port} is not a port`);
  if (!/^postgres(ql)?:\/\//.test(s.databaseUrl)) {
    throw new UsageError("--database-url: a postgresql:// URL is required");
  }
  if (!/^https?:\/\//.test(s.gatewayUrl)) throw new UsageError("--gateway-url: an http:// URL is required");
  return s;
}
