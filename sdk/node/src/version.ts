import { createRequire } from "node:module";

/** The SDK's version, read from its package.json (in step with grconnect's releases). */
export const VERSION: string = (createRequire(import.meta.url)("../package.json") as { version: string }).version;
