// The release the service runs (paychaos.contracts.release, read the same way): the `deploy`
// fault writes $PAYCHAOS_RELEASE_FILE ({"version", "previous", "until_unix_s"}) and restarts
// the service gracefully; at start the service reports shop_build_info{version}, logs the
// deployment or its rollback (the MELT event), and past the record's TTL restarts itself
// (SIGTERM; the supervisor starts it again) onto the previous version.
import { readFileSync } from "node:fs";

export const RELEASE_FILE_ENV = "PAYCHAOS_RELEASE_FILE";
export const DEFAULT_VERSION = "v1.0";
const VERSION = /^v?[0-9]+(\.[0-9]+){0,3}([-+][0-9A-Za-z.-]{1,24})?$/;

export interface Release {
  version: string;
  previous: string;
  untilUnixS: number | null;
}

/** The release recorded at `path`; null when there is none (or it is unreadable). */
export function readRelease(path: string | undefined): Release | null {
  if (!path) return null;
  try {
    const raw = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
    const version = String(raw.version);
    const previous = raw.previous === undefined ? DEFAULT_VERSION : String(raw.previous);
    if (!VERSION.test(version) || !VERSION.test(previous)) return null;
    const until = raw.until_unix_s === undefined || raw.until_unix_s === null ? null : Number(raw.until_unix_s);
    if (until !== null && !Number.isFinite(until)) return null;
    return { version, previous, untilUnixS: until };
  } catch {
    return null;
  }
}

/** The version to run at `nowUnixS`: the deployed one, or past its TTL the previous. */
export function effectiveVersion(release: Release | null, nowUnixS: number): string {
  if (release === null) return DEFAULT_VERSION;
  return release.untilUnixS === null || nowUnixS < release.untilUnixS ? release.version : release.previous;
}
