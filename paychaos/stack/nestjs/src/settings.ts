// The injection token of the command-line settings (see config.ts).
export const SETTINGS = Symbol("SETTINGS");
