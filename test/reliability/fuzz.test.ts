/**
 * Fuzzing the parsers and decoders with hostile input (issue 7, "Reliability: fuzzing"). Fills the
 * gaps the per-module property tests leave (test/core, test/nar): grammar-aware narinfo garbage,
 * hash and key text, signatures that are garbage, store URLs, `.ls` JSON, random and mutated NARs
 * (huge length fields included) and garbage for every decompressor. Every case must either succeed
 * or throw a NixcacheError (a TypeError only for wrongly typed input), must finish within a time
 * bound, and must not allocate what a length field claims.
 *
 * Runs: a few thousand cases per property in the normal test run; set NIXCACHE_FUZZ_RUNS to
 * multiply (it is the run count of the cheapest properties; the others scale from it).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compress, decompress } from '../../src/compression/index.js';
import { SUPPORTED_COMPRESSION_METHODS } from '../../src/compression/registry.js';
import {
  formatHash,
  generateSecretKey,
  makeKeyring,
  NixcacheError,
  parseHash,
  parseNarInfo,
  parsePublicKey,
  parseSecretKey,
  parseStorePath,
  signNarInfo,
  verifyNarInfo,
} from '../../src/index.js';
import { hashNar, parseNarListing, readNar, writeNar } from '../../src/nar/index.js';
import { parseStoreUrl } from '../../src/store/url.js';
import { arbitraryNarInfo, basename, nix32Char } from '../helpers/arbitraries.js';
import { arbTree, treeEntries } from '../nar/helpers.js';

/** Base run count; the cheap properties use it, the expensive ones a fraction. */
const RUNS = Number(process.env.NIXCACHE_FUZZ_RUNS ?? 2000);
const scaled = (fraction: number) => Math.max(20, Math.round(RUNS * fraction));
/** Each async case must finish within this. */
const CASE_TIMEOUT_MS = 5_000;

function allowed(e: unknown): boolean {
  return e instanceof NixcacheError || e instanceof TypeError;
}

/** Runs fn; anything thrown must be an allowed error (the assertion names it otherwise). */
function tolerate(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!allowed(e))
      throw new Error(`unexpected ${(e as Error)?.constructor?.name}: ${String(e)}`, { cause: e });
  }
}

/** Like tolerate for async work, with a hard time bound per case. */
async function tolerateAsync(fn: () => Promise<unknown>, ms = CASE_TIMEOUT_MS): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`case did not finish within ${ms} ms (hang?)`)), ms);
  });
  try {
    await Promise.race([fn(), timeout]);
  } catch (e) {
    if (!allowed(e))
      throw new Error(`unexpected ${(e as Error)?.constructor?.name}: ${String(e)}`, { cause: e });
  } finally {
    clearTimeout(timer);
  }
}

async function drain(it: AsyncIterable<Uint8Array>, limit = 64 << 20): Promise<number> {
  let n = 0;
  for await (const c of it) {
    n += c.length;
    if (n > limit) break;
  }
  return n;
}

const garbageText = fc.oneof(
  fc.string({ maxLength: 120 }),
  fc.string({ unit: 'binary', maxLength: 120 }),
  fc.string({ unit: fc.constantFrom(...':-=/+_. \n\t0123456789abcdfgsxyzAZ'.split('')), maxLength: 120 }),
);

describe('fuzz: narinfo text built from its grammar', () => {
  const key = fc.constantFrom(
    'StorePath',
    'URL',
    'Compression',
    'FileHash',
    'FileSize',
    'NarHash',
    'NarSize',
    'References',
    'Deriver',
    'Sig',
    'CA',
    'System',
    'Unknown',
    '',
  );
  const value = fc.oneof(
    garbageText,
    basename.map((b) => `/nix/store/${b}`),
    basename,
    fc.string({ unit: nix32Char, maxLength: 60 }).map((s) => `sha256:${s}`),
    fc.bigInt({ min: -(1n << 70n), max: 1n << 70n }).map(String),
    fc.array(basename, { maxLength: 4 }).map((r) => r.join(' ')),
    fc.constantFrom('xz', 'none', 'zstd', 'lzip', 'fixed:r:sha256:', 'text:sha256:', 'nar/x.nar.xz', '../x'),
  );
  const line = fc
    .tuple(key, fc.constantFrom(': ', ':', ' : ', ': '), value)
    .map(([k, s, v]) => `${k}${s}${v}`);

  it('parses or throws NixcacheError for random lines of known keys (property)', () => {
    const ring = makeKeyring([generateSecretKey('fuzz-1').publicKey]);
    fc.assert(
      fc.property(fc.array(line, { maxLength: 14 }), fc.constantFrom('\n', '\r\n', ''), (lines, end) => {
        tolerate(() => verifyNarInfo(parseNarInfo(lines.join('\n') + end), ring));
      }),
      { numRuns: RUNS },
    );
  });

  it('a valid narinfo with one field replaced by garbage parses or throws NixcacheError (property)', () => {
    fc.assert(
      fc.property(arbitraryNarInfo, fc.nat(), garbageText, (info, which, junk) => {
        const text = [
          `StorePath: ${info.storePath}`,
          `URL: ${info.url}`,
          `Compression: ${info.compression}`,
          `NarHash: ${formatHash(info.narHash)}`,
          `NarSize: ${info.narSize}`,
          `References: ${info.references.join(' ')}`,
        ];
        const at = which % text.length;
        text[at] = `${text[at]!.split(':')[0]}: ${junk}`;
        tolerate(() => parseNarInfo(`${text.join('\n')}\n`));
      }),
      { numRuns: scaled(0.5) },
    );
  });
});

describe('fuzz: hashes, store paths, keys and signatures', () => {
  it('parseHash accepts or throws NixcacheError for garbage with and without an algorithm (property)', () => {
    const prefixed = fc
      .tuple(
        fc.constantFrom('sha256', 'sha512', 'sha1', 'md5', 'blake3', 'SHA256', ''),
        fc.constantFrom(':', '-', ''),
        fc.oneof(
          garbageText,
          fc.string({ unit: nix32Char, maxLength: 110 }),
          fc.uint8Array({ maxLength: 70 }).map((b) => Buffer.from(b).toString('base64')),
          fc.uint8Array({ maxLength: 70 }).map((b) => Buffer.from(b).toString('hex')),
        ),
      )
      .map(([a, s, v]) => `${a}${s}${v}`);
    fc.assert(
      fc.property(
        prefixed,
        fc.constantFrom(undefined, 'sha256', 'sha512', 'sha1', 'md5', 'nope'),
        (text, algorithm) => {
          tolerate(() => {
            const h = parseHash(text, algorithm as never);
            // Whatever parses formats back to something that parses to the same digest.
            for (const enc of ['nix32', 'base16', 'base64', 'sri'] as const) {
              expect(parseHash(formatHash(h, enc)).digest).toEqual(h.digest);
            }
          });
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('parseStorePath accepts or throws NixcacheError for paths in odd store directories (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('/nix/store', '/', '/a/', 'relative', '', '/nix/store/'),
        fc.oneof(
          garbageText,
          basename,
          basename.map((b) => `${b}/sub`),
        ),
        fc.constantFrom('/nix/store/', '/', '', '//'),
        (storeDir, rest, join) => {
          tolerate(() => parseStorePath(`${storeDir}${join}${rest}`, storeDir));
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('parsePublicKey / parseSecretKey never throw anything else and never echo key material (property)', () => {
    const keyText = fc.oneof(
      garbageText,
      fc
        .tuple(
          fc.string({ maxLength: 12 }),
          fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b).toString('base64')),
        )
        .map(([n, b]) => `${n}:${b}`),
      fc.tuple(fc.string({ maxLength: 8 }), fc.string({ maxLength: 90 })).map(([n, b]) => `${n}:${b}`),
    );
    fc.assert(
      fc.property(keyText, (text) => {
        tolerate(() => parsePublicKey(text));
        try {
          parseSecretKey(text);
        } catch (e) {
          expect(allowed(e)).toBe(true);
          const material = text.slice(text.indexOf(':') + 1);
          if (material.length >= 8) expect((e as Error).message).not.toContain(material);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('verifyNarInfo reports garbage signatures without throwing and never trusts them (property)', () => {
    const key = generateSecretKey('fuzz-signer-1');
    const other = generateSecretKey('fuzz-other-1');
    const ring = makeKeyring([key.publicKey, other.publicKey]);
    const sig = fc.oneof(
      garbageText,
      fc.uint8Array({ maxLength: 100 }).map((b) => `fuzz-signer-1:${Buffer.from(b).toString('base64')}`),
      fc
        .uint8Array({ minLength: 64, maxLength: 64 })
        .map((b) => `fuzz-signer-1:${Buffer.from(b).toString('base64')}`),
      fc.string({ maxLength: 100 }).map((s) => `fuzz-other-1:${s}`),
      fc.constant('fuzz-signer-1:'),
      fc.constant(':'),
    );
    fc.assert(
      fc.property(arbitraryNarInfo, fc.array(sig, { minLength: 1, maxLength: 4 }), (info, sigs) => {
        const result = verifyNarInfo({ ...info, sigs, ca: undefined } as never, ring);
        expect(result.trusted).toBe(false);
        expect(result.signedBy).toEqual([]);
        // A real signature beside the garbage is still found.
        const signed = signNarInfo({ ...info, sigs, ca: undefined } as never, key);
        expect(verifyNarInfo(signed, ring).signedBy).toEqual(['fuzz-signer-1']);
      }),
      { numRuns: scaled(0.25) },
    );
  });
});

describe('fuzz: store URLs', () => {
  const param = fc.constantFrom(
    'region',
    'endpoint',
    'profile',
    'scheme',
    'compression',
    'compression-level',
    'secret-key',
    'secret-keys',
    'write-nar-listing',
    'narinfo-compression',
    'ls-compression',
    'multipart-upload',
    'multipart-chunk-size',
    'multipart-threshold',
    'want-mass-query',
    'priority',
    'parallel-compression',
    'storage-class',
    'addressing-style',
    'store',
    'bogus',
    '',
  );
  const value = fc.oneof(
    garbageText,
    fc.constantFrom(
      'true',
      'false',
      '1',
      '0',
      'xz',
      'zstd',
      '-1',
      '99999999999999999999',
      'http://[::1',
      '%',
      '%zz',
    ),
    fc.integer().map(String),
  );
  it('a file:// path with a bad %-escape is BAD_STORE_URL (found by this fuzzer: was a URIError)', () => {
    expect(() => parseStoreUrl('file:///tmp/cache%zz')).toThrow(
      expect.objectContaining({ code: 'BAD_STORE_URL', message: expect.stringContaining('%-escape') }),
    );
    expect(parseStoreUrl('file:///tmp/my%20cache').path).toBe('/tmp/my cache');
  });

  it('parses or throws NixcacheError naming the problem (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('s3://', 'file://', 'http://', 'https://', 'ftp://', '', 's3:', 'file:'),
        fc.oneof(garbageText, fc.constantFrom('bucket', 'bucket/a/b', '/tmp/x', 'host:9/p', '/', '')),
        fc.array(fc.tuple(param, value), { maxLength: 5 }),
        (scheme, rest, params) => {
          const query = params.map(([k, v]) => `${k}=${v}`).join('&');
          tolerate(() => parseStoreUrl(`${scheme}${rest}${query ? `?${query}` : ''}`));
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('fuzz: NAR listings', () => {
  const node: fc.Arbitrary<unknown> = fc.letrec<{ node: unknown }>((tie) => ({
    node: fc.oneof(
      { depthSize: 'small' },
      fc.record(
        {
          type: fc.constantFrom('regular', 'symlink', 'directory', 'fifo', 1),
          size: fc.oneof(fc.nat(), fc.constant(-1), fc.constant(2 ** 60), fc.string()),
          narOffset: fc.oneof(fc.nat(), fc.constant(-1), fc.double()),
          executable: fc.oneof(fc.boolean(), fc.constant('yes')),
          target: fc.oneof(fc.string({ maxLength: 20 }), fc.constant(''), fc.constant('a\0b')),
          entries: fc.dictionary(
            fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('.', '..', '', 'a/b', '__proto__')),
            tie('node'),
            { maxKeys: 3 },
          ),
        },
        { requiredKeys: [] },
      ),
      fc.anything({ maxDepth: 2 }),
    ),
  })).node;
  it('parses or throws NixcacheError for random JSON documents (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          node.map((root) => JSON.stringify({ version: 1, root })),
          node.map((root) => JSON.stringify(root)),
          fc.record({ version: fc.anything(), root: node }).map((d) => JSON.stringify(d)),
          garbageText,
        ),
        (text) => {
          tolerate(() => parseNarListing(text));
        },
      ),
      { numRuns: scaled(0.5) },
    );
  });
});

/** Valid NARs from random trees, as bytes. */
async function narBytes(tree: Parameters<typeof treeEntries>[0]): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of writeNar(treeEntries(tree))) parts.push(c);
  return new Uint8Array(Buffer.concat(parts));
}

/** Positions of u64 length fields in a NAR (every 8-aligned word whose value is a small length). */
function lengthFieldOffsets(nar: Uint8Array): number[] {
  const view = new DataView(nar.buffer, nar.byteOffset, nar.byteLength);
  const out: number[] = [];
  for (let at = 0; at + 8 <= nar.length; at += 8) {
    const v = view.getBigUint64(at, true);
    if (v > 0n && v < 4096n) out.push(at);
  }
  return out;
}

async function readAll(nar: Uint8Array, chunk: number): Promise<void> {
  async function* source() {
    for (let i = 0; i < nar.length; i += chunk) yield nar.subarray(i, i + chunk);
  }
  for await (const entry of readNar(source())) {
    if (entry.contents) await drain(entry.contents);
  }
}

describe('fuzz: readNar and hashNar', () => {
  it('random bytes (with and without the magic) are rejected with NixcacheError (property)', async () => {
    const magic = new Uint8Array(
      Buffer.from('0d000000000000006e69782d617263686976652d3100000000', 'hex'),
    ).subarray(0, 24);
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 600 }),
        fc.boolean(),
        fc.integer({ min: 1, max: 64 }),
        async (bytes, withMagic, chunk) => {
          const nar = withMagic ? new Uint8Array(Buffer.concat([magic, bytes])) : bytes;
          await tolerateAsync(() => readAll(nar, chunk));
          await tolerateAsync(() => hashNar([nar]));
        },
      ),
      { numRuns: scaled(0.5) },
    );
  });

  it('mutated valid NARs (byte flips, truncation, inserted bytes) are read or rejected cleanly (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        arbTree,
        fc.array(fc.tuple(fc.nat(), fc.nat(255), fc.integer({ min: 0, max: 2 })), {
          minLength: 1,
          maxLength: 4,
        }),
        fc.integer({ min: 1, max: 256 }),
        async (tree, edits, chunk) => {
          let nar = await narBytes(tree);
          for (const [pos, byte, kind] of edits) {
            const at = pos % (nar.length + 1);
            if (kind === 0 && at < nar.length) {
              nar = nar.slice();
              nar[at] = byte;
            } else if (kind === 1) nar = nar.slice(0, at);
            else
              nar = new Uint8Array(
                Buffer.concat([nar.subarray(0, at), new Uint8Array([byte]), nar.subarray(at)]),
              );
          }
          await tolerateAsync(() => readAll(nar, chunk));
        },
      ),
      { numRuns: scaled(0.15) },
    );
  });

  it('huge length fields neither allocate nor wait for data (property)', async () => {
    const before = process.memoryUsage().rss;
    let maxPulled = 0;
    await fc.assert(
      fc.asyncProperty(
        arbTree,
        fc.nat(),
        fc.constantFrom(
          1n << 63n,
          (1n << 64n) - 1n,
          1n << 53n,
          (1n << 53n) - 1n,
          1n << 40n,
          1n << 32n,
          0xffffffffn,
          1n << 31n,
        ),
        async (tree, which, huge) => {
          const nar = (await narBytes(tree)).slice();
          const offsets = lengthFieldOffsets(nar);
          if (offsets.length === 0) return;
          new DataView(nar.buffer).setBigUint64(offsets[which % offsets.length]!, huge, true);
          // After the NAR, an endless stream of zeros: a reader that trusts the length would wait
          // (or buffer) forever. Bounded by pulling at most 256 MiB of it.
          let pulled = 0;
          const block = new Uint8Array(1 << 20);
          async function* source() {
            yield nar;
            while (pulled < 256) {
              pulled++;
              yield block;
            }
          }
          await tolerateAsync(() => hashNar(source()));
          maxPulled = Math.max(maxPulled, pulled);
        },
      ),
      { numRuns: scaled(0.05) },
    );
    // Whatever the claimed length, memory stays near where it was (file contents stream through).
    expect(process.memoryUsage().rss - before).toBeLessThan(200 << 20);
    expect(maxPulled).toBeLessThanOrEqual(256);
  }, 120_000);
});

describe('fuzz: decompress garbage and corrupted streams', () => {
  const methods = SUPPORTED_COMPRESSION_METHODS.filter((m) => m !== 'none');
  const valid = new Map<string, Uint8Array>();

  it.each(methods)(
    '%s: random bytes are decoded or rejected with NixcacheError, never hang',
    async (method) => {
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ maxLength: 400 }), async (bytes) => {
          await tolerateAsync(() => drain(decompress(method, [bytes])));
        }),
        { numRuns: scaled(0.1) },
      );
    },
  );

  it.each(methods)(
    '%s: a valid stream with flipped, cut or inserted bytes is decoded or rejected cleanly',
    async (method) => {
      if (!valid.has(method)) {
        const input = new Uint8Array(64 * 1024).map((_, i) => (i * 7 + (i >> 9)) & 0xff);
        const parts: Uint8Array[] = [];
        for await (const c of compress(method, [input])) parts.push(c);
        valid.set(method, new Uint8Array(Buffer.concat(parts)));
      }
      const packed = valid.get(method)!;
      await fc.assert(
        fc.asyncProperty(
          fc.nat(),
          fc.nat(255),
          fc.integer({ min: 0, max: 2 }),
          fc.integer({ min: 1, max: 4096 }),
          async (pos, byte, kind, chunk) => {
            const at = pos % packed.length;
            let data: Uint8Array;
            if (kind === 0) {
              data = packed.slice();
              data[at] = data[at]! ^ (byte | 1);
            } else if (kind === 1) data = packed.subarray(0, at);
            else
              data = new Uint8Array(
                Buffer.concat([packed.subarray(0, at), new Uint8Array([byte]), packed.subarray(at)]),
              );
            const source = function* () {
              for (let i = 0; i < data.length; i += chunk) yield data.subarray(i, i + chunk);
            };
            await tolerateAsync(() => drain(decompress(method, source())));
          },
        ),
        { numRuns: scaled(0.05) },
      );
    },
  );
});
