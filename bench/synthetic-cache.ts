/**
 * Synthetic signed file:// binary caches of any size, for scale benchmarks and tests (verify, gc,
 * sign, copy): narinfo text is written directly, as Nix writes it, for fake but well-formed store
 * paths, signed with a fixed key through node:crypto. No NAR files (good for `--no-contents`)
 * unless `nars` is set: then each path is a small regular file whose NAR is written uncompressed
 * and the narinfo's hashes and sizes are its own, so copy and verify with contents work.
 *
 * Deterministic: the same options give the same cache, byte for byte. Path i's basename is a
 * function of (seed, i), so references (to earlier paths, making a closed DAG) cost no memory and
 * a million paths generate in constant memory.
 */
import { createHash, createPrivateKey, type KeyObject, sign } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { encodeNix32 } from '../src/nix32.js';
import { formatPublicKey, formatSecretKey, parseSecretKey, type SecretKey } from '../src/signing/keys.js';

const NIX32 = '0123456789abcdfghijklmnpqrsvwxyz';
const NAMES = [
  'glibc-2.37-8',
  'bash-5.2-p15',
  'coreutils-9.3',
  'openssl-3.0.10',
  'zlib-1.3',
  'python3-3.11.4',
  'perl-5.38.0',
  'gcc-12.3.0-lib',
  'libffi-3.4.4',
  'ncurses-6.4',
  'hello-2.12.1',
  'source',
  'node-20.5.1',
  'curl-8.2.1',
  'sqlite-3.42.0',
  'xz-5.4.4',
];

/** The key every synthetic cache is signed with unless another is given (seed 0x42 × 32). */
export const SYNTHETIC_SECRET_KEY = parseSecretKey(
  'nixcache-bench-1:QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkIhUvjRm3kdJEUyQuFfLqtst8/6e2pe0wCXlg4GmIHbEg==',
);

export interface SyntheticCacheOptions {
  /** Directory to write (created; existing narinfos with the same names are overwritten). */
  readonly dir: string;
  /** Number of narinfos. */
  readonly count: number;
  /** Varies every hash and size (default 1). */
  readonly seed?: number;
  /** Signing key (default SYNTHETIC_SECRET_KEY). */
  readonly secretKey?: SecretKey;
  /** Most references per path, to earlier paths, plus itself sometimes (default 12). */
  readonly maxReferences?: number;
  readonly storeDir?: string;
  /** Write a real NAR per path (a regular file of 64 to 4,159 bytes, `Compression: none`). */
  readonly nars?: boolean;
}

export interface SyntheticCache {
  readonly dir: string;
  readonly count: number;
  /** `name:base64`, for `--trusted-public-keys` / `-k`. */
  readonly publicKey: string;
  /** Bytes of narinfo text written. */
  readonly bytes: number;
  /** Seconds spent generating. */
  readonly seconds: number;
}

/** A 32-bit mixer (murmur3's finaliser): a fast, well-spread function of its input. */
function mix(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** `length` nix32 digits drawn from (seed, i, salt). */
function digits(seed: number, i: number, salt: number, length: number): string {
  let out = '';
  let word = 0;
  for (let k = 0; k < length; k++) {
    if (k % 6 === 0) word = mix(seed * 0x9e3779b1 + i * 0x7feb352d + salt * 0x846ca68b + k);
    out += NIX32[word & 31];
    word >>>= 5;
  }
  return out;
}

/** The basename `<hash>-<name>` of synthetic path i. */
export function syntheticBasename(seed: number, i: number): string {
  return `${digits(seed, i, 1, 32)}-${NAMES[mix(seed + i) % NAMES.length]}`;
}

/** A sha256 in Nix's `sha256:<nix32>` form (the top digit holds a single bit). */
function sha256(seed: number, i: number, salt: number): string {
  return `sha256:${NIX32[mix(seed ^ (i + salt)) & 1]}${digits(seed, i, salt, 51)}`;
}

function signer(key: SecretKey): KeyObject {
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), key.seed()]);
  return createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
}

/** A NAR string: its length (u64, little-endian), its bytes, zeros up to a multiple of 8. */
function narString(bytes: Uint8Array): Buffer {
  const out = Buffer.alloc(8 + Math.ceil(bytes.length / 8) * 8);
  out.writeUInt32LE(bytes.length, 0);
  out.set(bytes, 8);
  return out;
}

const NAR_HEAD = Buffer.concat(
  ['nix-archive-1', '(', 'type', 'regular', 'contents'].map((t) => narString(Buffer.from(t))),
);
const NAR_TAIL = narString(Buffer.from(')'));

interface SyntheticNar {
  readonly bytes: Buffer;
  /** Its sha256 in nix32. */
  readonly hash: string;
}

/** The NAR of path i when the cache has NARs: one regular file of pseudo-random bytes. */
function syntheticNar(seed: number, i: number): SyntheticNar {
  const contents = Buffer.alloc(64 + (mix(seed * 7 + i) % 4096));
  for (let k = 0; k + 4 <= contents.length; k += 4) contents.writeUInt32LE(mix(seed + i * 65_537 + k), k);
  const bytes = Buffer.concat([NAR_HEAD, narString(contents), NAR_TAIL]);
  return { bytes, hash: encodeNix32(createHash('sha256').update(bytes).digest()) };
}

/** The narinfo of path i, given its signature, and the fingerprint that signature covers. */
function narInfoParts(
  seed: number,
  i: number,
  storeDir: string,
  maxRefs: number,
  nar: SyntheticNar | undefined,
): { hashPart: string; fingerprint: string; text: (sig: string) => string } {
  const base = syntheticBasename(seed, i);
  const storePath = `${storeDir}/${base}`;
  const r = mix(seed * 31 + i);
  const narSize = nar ? nar.bytes.length : 1024 + (r % 50_000_000);
  const fileSize = nar ? narSize : 1 + Math.floor(narSize * (0.2 + (r & 255) / 512));
  const refs = new Set<string>();
  const nRefs = i === 0 ? 0 : mix(r) % (maxRefs + 1);
  for (let k = 0; k < nRefs; k++) refs.add(syntheticBasename(seed, mix(r + k) % i));
  if ((r & 3) === 0) refs.add(base);
  const references = [...refs].sort();
  const narHash = nar ? `sha256:${nar.hash}` : sha256(seed, i, 2);
  const fileHash = nar ? narHash : sha256(seed, i, 3);
  const file = nar
    ? `nar/${fileHash.slice(7)}.nar\nCompression: none`
    : `nar/${fileHash.slice(7)}.nar.xz\nCompression: xz`;
  const head =
    `StorePath: ${storePath}\nURL: ${file}\n` +
    `FileHash: ${fileHash}\nFileSize: ${fileSize}\nNarHash: ${narHash}\nNarSize: ${narSize}\n` +
    `References: ${references.join(' ')}\nDeriver: ${digits(seed, i, 4, 32)}-${base.slice(33)}.drv\n`;
  return {
    hashPart: base.slice(0, 32),
    fingerprint: `1;${storePath};${narHash};${narSize};${references.map((b) => `${storeDir}/${b}`).join(',')}`,
    text: (sig) => `${head}Sig: ${sig}\n`,
  };
}

/**
 * Writes a synthetic cache: `nix-cache-info` and `count` narinfos `<hash>.narinfo`. Signatures are
 * made on libuv's thread pool (node:crypto's asynchronous sign) while the main thread writes.
 *
 * @example const cache = await generateSyntheticCache({ dir: '/tmp/c', count: 10_000 })
 */
export async function generateSyntheticCache(options: SyntheticCacheOptions): Promise<SyntheticCache> {
  const started = performance.now();
  const seed = options.seed ?? 1;
  const key = options.secretKey ?? SYNTHETIC_SECRET_KEY;
  const maxRefs = options.maxReferences ?? 12;
  const storeDir = options.storeDir ?? '/nix/store';
  const privateKey = signer(key);
  fs.mkdirSync(options.dir, { recursive: true });
  if (options.nars) fs.mkdirSync(join(options.dir, 'nar'), { recursive: true });
  fs.writeFileSync(
    join(options.dir, 'nix-cache-info'),
    `StoreDir: ${storeDir}\nWantMassQuery: 1\nPriority: 40\n`,
  );
  let bytes = 0;
  let inFlight = 0;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const settled = () => {
    inFlight--;
    wake?.();
  };
  for (let i = 0; i < options.count && failure === undefined; i++) {
    while (inFlight >= 32) await new Promise<void>((resolve) => (wake = resolve));
    const nar = options.nars ? syntheticNar(seed, i) : undefined;
    const parts = narInfoParts(seed, i, storeDir, maxRefs, nar);
    if (nar) fs.writeFileSync(join(options.dir, 'nar', `${nar.hash}.nar`), nar.bytes);
    inFlight++;
    sign(null, Buffer.from(parts.fingerprint), privateKey, (error, sig) => {
      try {
        if (error) throw error;
        const text = parts.text(`${key.name}:${sig.toString('base64')}`);
        fs.writeFileSync(join(options.dir, `${parts.hashPart}.narinfo`), text);
        bytes += text.length;
      } catch (e) {
        failure ??= e;
      }
      settled();
    });
  }
  while (inFlight > 0) await new Promise<void>((resolve) => (wake = resolve));
  if (failure !== undefined) throw failure;
  return {
    dir: options.dir,
    count: options.count,
    publicKey: formatPublicKey(key.publicKey),
    bytes,
    seconds: (performance.now() - started) / 1000,
  };
}

/** The secret key file text of the default key, for tools that sign synthetic caches again. */
export function syntheticSecretKeyText(): string {
  return formatSecretKey(SYNTHETIC_SECRET_KEY);
}
