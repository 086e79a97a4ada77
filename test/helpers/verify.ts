/**
 * `verifyCache` for tests that look at individual reports: collects them through `onReport`
 * (the library keeps only the summary) and returns them beside the result.
 */
import {
  type PathReport,
  type VerifyOptions,
  type VerifyResult,
  verifyCache,
} from '../../src/cache/verify.js';
import type { BinaryCacheStore } from '../../src/store/binary-cache.js';

/** Runs verifyCache and returns its result with every report, in completion order. */
export async function verifyReports(
  store: BinaryCacheStore,
  options: VerifyOptions,
): Promise<VerifyResult & { reports: PathReport[] }> {
  const reports: PathReport[] = [];
  const result = await verifyCache(store, {
    ...options,
    onReport: async (r) => {
      reports.push(r);
      await options.onReport?.(r);
    },
  });
  return { ...result, reports };
}

/** What `nixcache verify --json` printed: NDJSON, one report per line and the summary line last. */
export interface VerifyJsonOutput {
  // biome-ignore lint/suspicious/noExplicitAny: test data read from JSON
  readonly reports: any[];
  readonly summary: Record<string, number>;
  readonly ok: boolean;
}

/**
 * Parses `verify --json` output line by line (every line must be one JSON object), checking that
 * exactly one summary line is there and that it is the last.
 *
 * @throws {Error} when a line is not JSON or the summary is missing or not last.
 */
export function parseVerifyJson(stdout: string): VerifyJsonOutput {
  const lines = stdout.split('\n');
  if (lines.pop() !== '') throw new Error('verify --json output does not end with a newline');
  const objects = lines.map((line, i) => {
    try {
      return JSON.parse(line);
    } catch {
      throw new Error(`verify --json line ${i + 1} is not JSON: ${line.slice(0, 80)}`);
    }
  });
  const last = objects.pop();
  if (!last || typeof last.summary !== 'object' || typeof last.ok !== 'boolean')
    throw new Error('verify --json: the last line is not the summary');
  if (objects.some((o) => 'summary' in o)) throw new Error('verify --json: a summary line before the end');
  return { reports: objects, summary: last.summary, ok: last.ok };
}
