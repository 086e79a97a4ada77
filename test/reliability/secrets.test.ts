/**
 * Secrets never print (issue 7, design.md §4.11): while the library pushes, signs, verifies and
 * fails, everything it writes to the console or stdout/stderr, every progress event, every thrown
 * error (message, JSON, inspect, cause chain) and the JSON/inspect form of results and options
 * is searched for the secret key in every encoding it could leak in (the key file text, the
 * base64 of seed+public key, the seed alone in base64 and hex, and any 12-character piece of
 * those), and for the S3 secret access key. The CLI's own output is tested by the CLI's tests.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSampleStore, type SampleStore } from '../../fixtures/sample-store.js';
import { pushPaths } from '../../src/cache/push.js';
import { addSignatures } from '../../src/cache/sign.js';
import { verifyCache } from '../../src/cache/verify.js';
import {
  formatSecretKey,
  generateSecretKey,
  parseSecretKey,
  type SecretKey,
} from '../../src/signing/keys.js';
import { BinaryCacheStore } from '../../src/store/binary-cache.js';
import { S3Backend } from '../../src/store/s3.js';
import { parseStoreUrl } from '../../src/store/url.js';
import { type S3rverHandle, s3ConfigFor, startS3rver } from '../helpers/s3rver.js';
import { fileStore } from './helpers.js';

const S3_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzSECRET';

let tmp: string;
let sample: SampleStore;
let key: SecretKey;
let s3: S3rverHandle;
/** Everything the library printed or handed out during the tests. */
const seen: string[] = [];

function secretForms(k: SecretKey): string[] {
  const text = formatSecretKey(k);
  const material = text.slice(text.indexOf(':') + 1).trim();
  const seed = Buffer.from(k.seed());
  const forms = [material, seed.toString('base64'), seed.toString('hex'), seed.toString('base64url')];
  // Any 12-character window of each form (a partial leak is still a leak).
  const windows: string[] = [];
  for (const f of forms) for (let i = 0; i + 12 <= f.length; i += 4) windows.push(f.slice(i, i + 12));
  return [...forms, ...windows];
}

/** Every printable view of a value: JSON, inspect (deep), String, and for errors the cause chain. */
function views(value: unknown): string[] {
  const out = [inspect(value, { depth: 8, showHidden: true, getters: true }), String(value)];
  try {
    out.push(JSON.stringify(value) ?? '');
  } catch {
    // circular (SDK errors): inspect covers it
  }
  let e: unknown = value;
  for (let i = 0; i < 8 && e instanceof Error; i++) {
    out.push(e.message, e.stack ?? '', JSON.stringify((e as { data?: unknown }).data ?? {}));
    e = e.cause;
  }
  return out;
}

function remember(value: unknown): void {
  seen.push(...views(value));
}

/** Captures console.* and process.stdout/stderr writes while fn runs. */
async function capturing<T>(fn: () => Promise<T>): Promise<T> {
  const methods = ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const;
  const saved = methods.map((m) => console[m]);
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  for (const m of methods)
    console[m] = (...args: unknown[]) => seen.push(...args.map((a) => inspect(a, { depth: 8 })));
  const grab = (chunk: unknown) => {
    seen.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'));
    return true;
  };
  process.stdout.write = grab as typeof process.stdout.write;
  process.stderr.write = grab as typeof process.stderr.write;
  try {
    return await fn();
  } finally {
    methods.forEach((m, i) => {
      console[m] = saved[i]!;
    });
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixcache-secrets-'));
  mkdirSync(join(tmp, 'store'));
  sample = await makeSampleStore(join(tmp, 'store'));
  key = generateSecretKey('secret-test-1');
  s3 = await startS3rver({ buckets: ['secrets'] });
});

afterAll(async () => {
  await s3?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe('a secret key never appears in what the library prints or returns', () => {
  it('push: progress events, results, options', async () => {
    const store = fileStore(join(tmp, 'cache'));
    const options = {
      storeDir: sample.dir,
      secretKeys: [key],
      onProgress: (e: unknown) => remember(e),
    };
    const result = await capturing(() => pushPaths(store, [sample.hello], options));
    expect(result.pushed).toHaveLength(3);
    remember(result);
    remember(options);
    remember(key);
    remember({ keys: [key], nested: { key } });
  });

  it('push failures: failed events and errors carry no key material', async () => {
    const store = fileStore(join(tmp, 'cache-fail'));
    const events: unknown[] = [];
    const result = await capturing(() =>
      pushPaths(store, [sample.hello], {
        storeDir: sample.dir,
        secretKeys: [key],
        // a reference the metadata claims but the store lacks: the push fails for hello
        metadata: { [sample.hello]: { references: [`${sample.storeDir}/${'0'.repeat(32)}-missing`] } },
        onProgress: (e) => events.push(e),
      }),
    );
    expect(result.failed.length).toBeGreaterThan(0);
    for (const e of events) remember(e);
    for (const f of result.failed) remember(f.error);
    remember(result);
  });

  it('sign and verify: progress and results', async () => {
    const store = fileStore(join(tmp, 'cache'));
    const other = generateSecretKey('secret-test-2');
    const signed = await capturing(() =>
      addSignatures(store, 'all', [key, other], { onProgress: (e) => remember(e) }),
    );
    remember(signed);
    const verified = await capturing(() =>
      verifyCache(store, { trustedKeys: [key.publicKey], onReport: (r) => remember(r) }),
    );
    expect(verified.ok).toBe(true);
    remember(verified);
    for (const f of secretForms(other)) for (const s of seen) expect(s).not.toContain(f);
  });

  it('malformed key files: errors name the problem, never the key', async () => {
    const text = formatSecretKey(key);
    const material = text.slice(text.indexOf(':') + 1);
    const other = formatSecretKey(generateSecretKey('secret-test-1'));
    const broken = [
      text.slice(0, -6), // cut short
      `${text}AAAA`, // too long
      `${text.slice(0, 30)}!${text.slice(31)}`, // a bad base64 character
      `${text.slice(0, 20)} ${text.slice(20)}`, // whitespace inside
      `${text.split(':')[0]}:${material.slice(0, 43)}${other.slice(other.indexOf(':') + 44)}`, // public half of another key
      material, // no name
      `secret test:${material}`, // bad name
      `${text}\n${text}`, // two keys
      `:${material}`,
    ];
    for (const b of broken) {
      try {
        parseSecretKey(b);
        // Some variants may parse (e.g. trailing data tolerated by lenient base64): that's fine too.
      } catch (e) {
        remember(e);
      }
    }
  });

  it('S3: a rejected secret access key is not echoed in errors', async () => {
    const config = parseStoreUrl(s3ConfigFor(s3.endpoint, 'secrets').url);
    const store = new BinaryCacheStore(
      config,
      new S3Backend(config, {
        credentials: { accessKeyId: 'NOPE', secretAccessKey: S3_SECRET },
        maxAttempts: 1,
      }),
    );
    try {
      await capturing(() => pushPaths(store, [sample.data], { storeDir: sample.dir, secretKeys: [key] }));
      throw new Error('expected the push to fail');
    } catch (e) {
      expect((e as Error).message).toContain('rejected the credentials');
      remember(e);
    } finally {
      await store.close();
    }
    for (const s of seen) expect(s).not.toContain(S3_SECRET);
  });

  it('… and none of the above contains the secret key in any encoding', () => {
    expect(seen.length).toBeGreaterThan(20);
    const forms = secretForms(key);
    for (const s of seen)
      for (const f of forms)
        expect(s.includes(f), `leak of ${f.slice(0, 4)}… in ${s.slice(0, 200)}`).toBe(false);
    // The public key does show (so the search would see key material if it were there).
    expect(seen.join('\n')).toContain(Buffer.from(key.publicKey.key).toString('base64'));
  });
});
