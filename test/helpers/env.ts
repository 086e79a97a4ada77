/**
 * Where the tests find their outside parts (../shared/corpus, the real `nix`) and how they skip
 * when a user's clone lacks them. Under CI=true a missing part is a failure, never a skip.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe } from 'vitest';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const corpusDir = resolve(repoRoot, '..', 'shared', 'corpus');
export const inCI = process.env.CI === 'true';

export function corpusPath(...parts: string[]): string {
  return join(corpusDir, ...parts);
}

export const hasCorpus = existsSync(join(corpusDir, 'cache-nixos-org.narinfos'));

function commandWorks(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export const hasNix = commandWorks('nix', ['--version']);

function gate(available: boolean, what: string): typeof describe {
  if (available) return describe;
  if (inCI) {
    return ((name: string) =>
      describe(name, () => {
        throw new Error(`${what} is required under CI=true but is missing`);
      })) as unknown as typeof describe;
  }
  console.warn(`[nixcache tests] skipping: ${what} is not available`);
  return describe.skip as unknown as typeof describe;
}

/** `describe` for suites that read ../shared/corpus. */
export const describeWithCorpus = gate(hasCorpus, `the corpus at ${corpusDir}`);
/** `describe` for suites that run the real `nix` binary. */
export const describeWithNix = gate(
  hasNix,
  'the `nix` binary (install it with ../shared/scripts/install-nix.sh)',
);
