/**
 * Running the real `nix` in tests: an isolated cache directory (no narinfo disk cache shared
 * between tests), the fixture closure of fixtures/closure.nix, and `nix path-info --json`.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PathMetadata } from '../../src/cache/index.js';
import { repoRoot } from './env.js';

const cacheHome = mkdtempSync(join(tmpdir(), 'nixcache-nix-home-'));

export const nixEnv = {
  ...process.env,
  XDG_CACHE_HOME: cacheHome,
  NIX_CONFIG: [
    'experimental-features = nix-command',
    'narinfo-cache-negative-ttl = 0',
    'narinfo-cache-positive-ttl = 0',
    'substituters =',
  ].join('\n'),
};

/** Runs a nix command and returns stdout; throws with stderr on failure. */
export function nix(args: readonly string[], input?: string): string {
  return execFileSync(args[0]!, args.slice(1), {
    env: nixEnv,
    encoding: 'utf8',
    input,
    stdio: ['pipe', 'pipe', 'pipe'],
  }).trim();
}

/**
 * Runs a nix command asynchronously and returns its status and output without throwing. Async
 * because the servers Nix talks to in tests run in this same process.
 */
export function nixStatus(
  args: readonly string[],
): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(args[0]!, args.slice(1), { env: nixEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('close', (status) => resolve({ status: status ?? -1, stdout, stderr }));
  });
}

export interface FixtureClosure {
  readonly app: string;
  readonly lib: string;
  readonly dep: string;
  /** `nix path-info --json` of the closure, keyed by path. */
  readonly metadata: Map<string, PathMetadata & { narHash: string; narSize: number }>;
}

/** Builds fixtures/closure.nix (app → lib → dep, app → itself) with real Nix. */
export function buildFixtureClosure(): FixtureClosure {
  const app = nix(['nix-build', join(repoRoot, 'fixtures', 'closure.nix'), '-A', 'app', '--no-out-link']);
  const closure = nix(['nix-store', '--query', '--requisites', app]).split('\n');
  const infos = JSON.parse(nix(['nix', 'path-info', '--json', ...closure])) as {
    path: string;
    narHash: string;
    narSize: number;
    references: string[];
    deriver?: string;
    ca?: string;
  }[];
  const metadata = new Map<string, PathMetadata & { narHash: string; narSize: number }>();
  for (const i of infos) {
    metadata.set(i.path, {
      references: i.references,
      narHash: i.narHash,
      narSize: i.narSize,
      ...(i.deriver && { deriver: i.deriver }),
      ...(i.ca && { ca: i.ca }),
    });
  }
  const find = (suffix: string) => closure.find((p) => p.endsWith(suffix))!;
  return { app, lib: find('-nixcache-fixture-lib'), dep: find('-nixcache-fixture-dep.txt'), metadata };
}
