/**
 * Running the real `nix` in tests: an isolated cache directory (no narinfo disk cache shared
 * between tests), the fixture closure of fixtures/closure.nix, and `nix path-info --json`.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PathMetadata } from '../../src/cache/index.js';
import { parseSecretKey, type SecretKey } from '../../src/index.js';
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

export interface NixSigningKey {
  /** The key file `nix key generate-secret` wrote (mode 0600). */
  readonly keyFile: string;
  readonly key: SecretKey;
  /** Its public half, as `nix key convert-secret-to-public` prints it. */
  readonly publicKey: string;
}

/** A fresh signing key made by real Nix, written to `dir`. */
export function nixSigningKey(dir: string, prefix: string): NixSigningKey {
  const secret = nix([
    'nix',
    'key',
    'generate-secret',
    '--key-name',
    `${prefix}-${Date.now().toString(36)}-1`,
  ]);
  const keyFile = join(dir, `${prefix}.secret`);
  writeFileSync(keyFile, secret, { mode: 0o600 });
  return {
    keyFile,
    key: parseSecretKey(secret),
    publicKey: nix(['nix', 'key', 'convert-secret-to-public'], secret),
  };
}

/** `nix copy --from <url>` of `path` into a fresh chroot store at `target`, trusting only `trustedKey`. */
export async function nixSubstitute(url: string, target: string, path: string, trustedKey: string) {
  const args = [
    'nix',
    'copy',
    '--from',
    url,
    '--to',
    target,
    path,
    '--option',
    'trusted-public-keys',
    trustedKey,
  ];
  return { ...(await nixStatus(args)), target };
}
