/**
 * Issue 10 item 6: a server that never answers, or never even accepts, makes a store fail with
 * NETWORK naming the host after the configured connect / first-byte timeout, instead of hanging
 * (an HTTP store waited 301 s, an S3 endpoint indefinitely). S3 retries stay bounded: at most
 * maxAttempts times the timeout.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NixcacheError } from '../../src/errors.js';
import { openStore } from '../../src/store/index.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_FIRST_BYTE_TIMEOUT_MS } from '../../src/store/timeouts.js';

const HASH = 'syd87l2rxw8cbsxmxl853h0r6pdwhwjr';
const S3_ENV = { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' };

/** Accepts connections and never writes a byte. */
let silent: Server;
let silentPort: number;
/** S3 GET requests the silent server received. */
let accepted = 0;
const sockets: Socket[] = [];
/** A listening socket whose accept queue is full: connecting hangs (SYNs are dropped). */
let full: ChildProcess | undefined;
let fullPort: number | undefined;
const hasPython = spawnSync('python3', ['--version']).status === 0;

const FULL_BACKLOG = `
import socket, time
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)
fill = []
for _ in range(3):
    c = socket.socket(); c.settimeout(0.3)
    try: c.connect(s.getsockname())
    except Exception: pass
    fill.append(c)
print(s.getsockname()[1], flush=True)
time.sleep(300)
`;

beforeAll(async () => {
  for (const [k, v] of Object.entries(S3_ENV)) process.env[k] ??= v;
  silent = createServer((socket) => {
    sockets.push(socket);
    socket.on('data', (d: Buffer) => {
      if (d.toString().startsWith('GET /bucket/')) accepted++;
    });
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  silentPort = (silent.address() as AddressInfo).port;
  if (hasPython) {
    const child = spawn('python3', ['-c', FULL_BACKLOG], { stdio: ['ignore', 'pipe', 'inherit'] });
    full = child;
    fullPort = await new Promise<number>((resolve, reject) => {
      child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      child.once('error', reject);
    });
  }
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((resolve) => silent.close(resolve));
  if (full?.pid !== undefined) full.kill();
});

async function timed(promise: Promise<unknown>): Promise<{ error: NixcacheError; ms: number }> {
  const started = Date.now();
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(NixcacheError);
  return { error: error as NixcacheError, ms: Date.now() - started };
}

describe('network timeouts', () => {
  it('defaults are tens of seconds', () => {
    expect(DEFAULT_CONNECT_TIMEOUT_MS).toBe(15_000);
    expect(DEFAULT_FIRST_BYTE_TIMEOUT_MS).toBe(30_000);
  });

  it('http: a server that accepts and never answers fails with NETWORK naming the host', async () => {
    const store = await openStore(`http://127.0.0.1:${silentPort}/cache`, { firstByteTimeoutMs: 300 });
    const { error, ms } = await timed(store.getNarInfo(HASH));
    expect(error.code).toBe('NETWORK');
    expect(error.message).toContain(`no response from 127.0.0.1:${silentPort} within 0.3 s`);
    expect(error.message).toContain(`/cache/${HASH}.narinfo`);
    expect(ms).toBeLessThan(3000);
    const head = await timed(store.hasNarInfo(HASH));
    expect(head.error.code).toBe('NETWORK');
  });

  it('http: the caller’s own abort is still ABORTED, not a timeout', async () => {
    const store = await openStore(`http://127.0.0.1:${silentPort}/cache`, { firstByteTimeoutMs: 10_000 });
    const { error } = await timed(store.getNarInfo(HASH, { signal: AbortSignal.timeout(100) }));
    expect(error.code).toBe('ABORTED');
  });

  it('s3: an endpoint that accepts and never answers fails after at most maxAttempts × the timeout', async () => {
    const before = accepted;
    const store = await openStore(`s3://bucket?endpoint=http://127.0.0.1:${silentPort}&region=us-east-1`, {
      firstByteTimeoutMs: 300,
      onWarning: () => {},
    });
    try {
      const { error, ms } = await timed(store.getNarInfo(HASH));
      expect(error.code).toBe('NETWORK');
      expect(error.message).toContain(`127.0.0.1:${silentPort}`);
      expect(error.message).toContain(`no response from 127.0.0.1:${silentPort} within 0.3 s`);
      expect(ms).toBeLessThan(6000);
      // The direct request (s3-direct.ts) got no answer, then the SDK retried (3 attempts by
      // default), and no more.
      expect(accepted - before).toBeGreaterThanOrEqual(1);
      expect(accepted - before).toBeLessThanOrEqual(4);
      const list = await timed(
        (async () => {
          for await (const _ of store.listNarInfos()) {
            // nothing
          }
        })(),
      );
      expect(list.error.code).toBe('NETWORK');
    } finally {
      await store.close();
    }
  }, 20_000);

  it.skipIf(!hasPython)('http: a server that never accepts (full backlog) fails with NETWORK', async () => {
    const store = await openStore(`http://127.0.0.1:${fullPort}`, { firstByteTimeoutMs: 300 });
    const { error, ms } = await timed(store.getCacheInfo());
    expect(error.code).toBe('NETWORK');
    expect(error.message).toContain(`127.0.0.1:${fullPort}`);
    expect(ms).toBeLessThan(3000);
  });

  it.skipIf(!hasPython)(
    's3: an endpoint that never accepts fails on the connect timeout',
    async () => {
      const store = await openStore(`s3://bucket?endpoint=http://127.0.0.1:${fullPort}&region=us-east-1`, {
        connectTimeoutMs: 300,
        firstByteTimeoutMs: 0,
        onWarning: () => {},
      });
      try {
        const { error, ms } = await timed(store.getNarInfo(HASH));
        expect(error.code).toBe('NETWORK');
        expect(error.message).toContain(`127.0.0.1:${fullPort}`);
        expect(ms).toBeLessThan(6000);
      } finally {
        await store.close();
      }
    },
    20_000,
  );
});
