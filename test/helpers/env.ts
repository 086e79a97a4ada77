/**
 * Where the tests find their outside parts (the real-world corpus, the real `nix`) and how they
 * skip when a user's machine lacks them. Under CI=true a missing part is a failure, never a skip.
 * The corpus comes from the repository itself: `fixtures/corpus/corpus.nar.xz`, unpacked into
 * `.cache/corpus/` by the global setup (test/helpers/corpus-setup.ts) before any suite loads.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe } from 'vitest';
import { nativeSodium } from '../../src/internal/native.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The corpus archive the repository carries (see fixtures/corpus/pack.ts). */
export const CORPUS_ARCHIVE = join(repoRoot, 'fixtures', 'corpus', 'corpus.nar.xz');
/** Where the global setup unpacks it. */
export const corpusDir = join(repoRoot, '.cache', 'corpus');
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

/** `describe` for suites that read the unpacked corpus (missing only when run without the global setup). */
export const describeWithCorpus = gate(hasCorpus, `the corpus at ${corpusDir}`);
/** `describe` for suites that need libsodium's Node binding (the optional `sodium-native`). */
export const describeWithSodium = gate(
  nativeSodium() !== undefined,
  'sodium-native (the optional libsodium binding that npm ci installs)',
);
/** `describe` for suites that run the real `nix` binary. */
export const describeWithNix = gate(hasNix, 'the `nix` binary (Nix 2.8 or later; .ci/run installs it)');
