/**
 * The test helpers the S3 suites and the fault tests build on: s3rver as a child process (kill,
 * restart on the same port and data) and the recording proxy (faults, stop accepting).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectBytes } from '../../src/internal/iter.js';
import { S3Backend } from '../../src/store/s3.js';
import { parseStoreUrl } from '../../src/store/url.js';
import { faults, type LoopbackProxy, startProxy } from '../helpers/proxy.js';
import { type S3rverHandle, s3ConfigFor, startS3rver } from '../helpers/s3rver.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

let s3: S3rverHandle;
let proxy: LoopbackProxy;

function open(endpoint: string): S3Backend {
  const { url, credentials } = s3ConfigFor(endpoint, 'cache');
  return new S3Backend(parseStoreUrl(url), { credentials, maxAttempts: 1 });
}

beforeAll(async () => {
  s3 = await startS3rver({ buckets: ['cache'] });
  proxy = await startProxy({ target: s3.endpoint });
});

afterAll(async () => {
  await proxy?.close();
  await s3?.stop();
});

describe('startS3rver', () => {
  it('serves anonymous GETs over plain HTTP (what real Nix reads)', async () => {
    const b = open(s3.endpoint);
    await b.put('nix-cache-info', new TextEncoder().encode('StoreDir: /nix/store\n'), {
      contentType: 'text/x-nix-cache-info',
    });
    const res = await fetch(`${s3.endpoint}/cache/nix-cache-info`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('StoreDir: /nix/store\n');
    await b.close();
  });

  it('survives kill() and restart() on the same port with its data', async () => {
    const b = open(s3.endpoint);
    await b.put('kept.narinfo', new TextEncoder().encode('kept'), { contentType: 'text/x-nix-narinfo' });
    const port = s3.port;
    s3.kill();
    await expect(b.head('kept.narinfo')).rejects.toMatchObject({ code: 'NETWORK' });
    await s3.restart();
    expect(s3.port).toBe(port);
    const obj = await b.get('kept.narinfo');
    expect(new TextDecoder().decode(await collectBytes(obj!.body))).toBe('kept');
    await b.close();
  });
});

describe('startProxy', () => {
  it('records requests and stops/resumes accepting connections', async () => {
    const b = open(proxy.endpoint);
    proxy.clear();
    await b.put('p.narinfo', new TextEncoder().encode('body'), { contentType: 'text/x-nix-narinfo' });
    const [put] = proxy.find('PUT', 'p.narinfo');
    expect(put).toMatchObject({
      method: 'PUT',
      // A small PutObject goes out directly (s3-direct.ts), without the SDK's x-id query.
      url: '/cache/p.narinfo',
      status: 200,
      bodyBytes: 4,
    });
    expect(put!.text()).toBe('body');

    await proxy.stopAccepting();
    await expect(b.head('p.narinfo')).rejects.toMatchObject({ code: 'NETWORK' });
    await proxy.resumeAccepting();
    expect(await b.head('p.narinfo')).toMatchObject({ size: 4 });

    proxy.onRequest = () => ({ kind: 'delay', ms: 100, next: faults.slowDown });
    const started = Date.now();
    await expect(b.head('p.narinfo')).rejects.toMatchObject({ code: 'NETWORK' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    proxy.onRequest = undefined;
    await b.close();
  });
});
