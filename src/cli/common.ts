/**
 * Shared pieces of the CLI commands: opening stores named on the command line, loading signing
 * keys from files (never echoing key material), trusted keys, and input files or stdin.
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { NixcacheError } from '../errors.js';
import { type PublicKey, parsePublicKey, parseSecretKey, type SecretKey } from '../signing/keys.js';
import type { BinaryCacheStore } from '../store/binary-cache.js';
import { openStore } from '../store/open.js';
import { type CliContext, UsageError } from './context.js';
import { errorHint, redactSecrets, registerSecret, safeMessage } from './safe-text.js';

export { redactSecrets } from './safe-text.js';

/**
 * True when `text` looks like a key rather than a file name: `<name>:<base64>` with at least 43
 * base64 characters (a public key has 44, a secret key 88). Spaces are allowed in the base64, as
 * a `+` turns into one when a key goes through form decoding.
 */
export function looksLikeKey(text: string): boolean {
  const m = /^[^\s:/]+:([A-Za-z0-9+/ ]+={0,2})$/.exec(text.trim());
  if (m === null) return false;
  // With spaces only a secret key's length counts, so that a file name with words is not a key.
  return m[1]!.includes(' ') ? m[1]!.length >= 80 && !m[1]!.includes('  ') : m[1]!.length >= 43;
}

/** `{ code, message }` of an error, for `--json` failure lists. */
export function errorJson(e: unknown): { code: string; message: string } {
  const err = e as Error;
  return {
    code: e instanceof NixcacheError ? e.code : (err?.name ?? 'Error'),
    message: redactSecrets(oneLine(`${err?.message ?? String(e)}${errorHint(err?.message ?? '')}`)),
  };
}

/** Collapses a message onto one line. */
export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/**
 * Opens the store a command-line option names; a malformed URL is a usage error naming the option.
 * Warnings about URL parameters go to stderr.
 */
export async function openCliStore(
  url: string,
  ctx: CliContext,
  option: string,
  command: string,
): Promise<BinaryCacheStore> {
  try {
    return await openStore(url, {
      onWarning: (m) => ctx.stderr.write(`nixcache: warning: ${safeMessage(m)}\n`),
    });
  } catch (e) {
    if (e instanceof NixcacheError && e.code === 'BAD_STORE_URL')
      throw new UsageError(`--${option}: ${e.message}`, command);
    throw e;
  }
}

/**
 * Reads the cache's `nix-cache-info` first, so an unreachable endpoint fails at once with one
 * clear error, and warns when there is none (a wrong URL or prefix usually).
 */
export async function preflight(store: BinaryCacheStore, ctx: CliContext): Promise<void> {
  const info = await store.getCacheInfo({ signal: ctx.signal });
  if (info === undefined) {
    ctx.stderr.write(
      `nixcache: warning: ${safeMessage(`${store.location} has no nix-cache-info; is this the right cache URL?`)}\n`,
    );
  }
}

/**
 * Reads and parses secret key files (Nix's `<name>:<base64>` format).
 *
 * @throws {UsageError} when a "file name" is in fact a key (so it is never echoed back).
 * @throws {NixcacheError} IO when a file cannot be read, BAD_KEY when it holds no valid key; the
 *   messages name the file, never its contents.
 */
export async function loadSecretKeys(files: readonly string[], command: string): Promise<SecretKey[]> {
  const keys: SecretKey[] = [];
  for (const file of files) {
    if (looksLikeKey(file)) {
      registerSecret(file);
      throw new UsageError(
        'a secret key file option was given a key instead of a file name; store the key in a file (mode 0600) and pass its path',
        command,
      );
    }
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code;
      throw new NixcacheError('IO', `cannot read secret key file '${file}': ${why}`, { file }, { cause: e });
    }
    const trimmed = text.trim();
    registerSecret(trimmed);
    registerSecret(trimmed.slice(trimmed.indexOf(':') + 1));
    try {
      const key = parseSecretKey(trimmed);
      const seed = Buffer.from(key.seed());
      registerSecret(seed.toString('base64'));
      registerSecret(seed.toString('base64').replace(/=+$/, ''));
      registerSecret(seed.toString('hex'));
      keys.push(key);
    } catch (e) {
      const msg = e instanceof NixcacheError ? e.message : 'not a secret key';
      throw new NixcacheError('BAD_KEY', `secret key file '${file}': ${msg}`, { file });
    }
  }
  return keys;
}

/**
 * Parses trusted public keys given on the command line; each value may hold several keys
 * separated by spaces (as in nix.conf's `trusted-public-keys`).
 *
 * @throws {UsageError} for a malformed key.
 */
export function parseTrustedKeys(values: readonly string[], command: string): PublicKey[] {
  const keys: PublicKey[] = [];
  for (const value of values) {
    for (const text of value.split(/\s+/).filter(Boolean)) {
      try {
        keys.push(parsePublicKey(text));
      } catch (e) {
        throw new UsageError(`--trusted-public-key: ${(e as Error).message}`, command);
      }
    }
  }
  return keys;
}

/** A file's bytes as a stream, or stdin for `-`. */
export function openInput(path: string, ctx: CliContext): AsyncIterable<Uint8Array> {
  if (path === '-') return ctx.stdin as AsyncIterable<Uint8Array>;
  const stream = createReadStream(path);
  return (async function* () {
    try {
      for await (const chunk of stream) yield chunk as Uint8Array;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT')
        throw new NixcacheError('IO', `cannot read '${path}': no such file`, { file: path });
      if (code === 'EISDIR')
        throw new NixcacheError('IO', `cannot read '${path}': it is a directory`, { file: path });
      throw e;
    } finally {
      stream.destroy();
    }
  })();
}

/** A whole input file (or stdin for `-`) as text. */
export async function readInputText(path: string, ctx: CliContext): Promise<string> {
  const parts: Uint8Array[] = [];
  for await (const chunk of openInput(path, ctx)) parts.push(chunk);
  return Buffer.concat(parts).toString('utf8');
}

/** Closes stores, ignoring errors (they have done their work or failed already). */
export async function closeAll(...stores: (BinaryCacheStore | undefined)[]): Promise<void> {
  await Promise.all(stores.map((s) => s?.close().catch(() => {})));
}
