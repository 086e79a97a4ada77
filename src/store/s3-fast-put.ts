/**
 * A direct PutObject for small in-memory bodies on an S3-compatible endpoint with path-style
 * addressing (MinIO, Garage, R2, Ceph, s3rver: `endpoint=` in the store URL). A push of a system
 * closure writes thousands of objects of a few KiB, and the SDK spends about 2 ms of CPU on each
 * (middleware stack, endpoint rules, schema serialisation; measured against s3rver), more than
 * compressing it. This is one signed HTTP request over a keep-alive agent instead, with the SDK's
 * own credentials (`client.config.credentials`, so profiles, session tokens and refresh work as
 * before), and the same integrity as the SDK's request: Content-MD5 and a signed
 * `x-amz-content-sha256` of the body.
 *
 * It answers "done" (2xx, with the ETag), "precondition failed" (412: a conditional write lost,
 * final, the caller reports CONFLICT as for the SDK's 412) or "not done": anything else (another
 * HTTP error, a redirect, a clock-skew refusal, a network failure, a timeout) returns undefined
 * and the caller sends the same request through the SDK, which retries, corrects skew and names
 * the error as before. A 4xx other than 412, or three attempts in a row without an HTTP answer,
 * also turn the direct path off for the rest of the backend's life, since the server (or the
 * network) may not like something about it. Only an abort is thrown.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import * as https from 'node:https';
import { type SigV4Credentials, s3Path, signV4 } from './s3-sigv4.js';

/** Largest body sent directly (larger ones take the SDK's path, streamed or multipart). */
export const FAST_PUT_MAX_BYTES = 5 * 1024 * 1024;
/** Direct attempts in a row without an HTTP answer after which the SDK sends everything. */
const MAX_FAILURES_IN_A_ROW = 3;
/** Most bytes of a response read (success bodies are empty; errors are a short XML document). */
const MAX_RESPONSE_BYTES = 64 * 1024;

export interface FastPutOptions {
  /** The signing region. */
  readonly region: string;
  readonly credentials: () => Promise<SigV4Credentials>;
  readonly maxSockets: number;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
}

/** What a direct PUT settled: stored (with its ETag, '' when none came), or a failed precondition. */
export type FastPutResult =
  | { readonly etag: string; readonly preconditionFailed?: undefined }
  | {
      readonly etag?: undefined;
      readonly preconditionFailed: { readonly code: string; readonly message: string };
    };

export interface FastPutRequest {
  /** `bucket/full-object-key` (not encoded). */
  readonly path: string;
  readonly body: Uint8Array;
  /** Extra headers, lower case (content-type, content-encoding, if-match, …). */
  readonly headers: Record<string, string>;
  readonly signal?: AbortSignal;
}

/**
 * The endpoint origin when the direct path can serve it (http or https, no path, query or
 * credentials), else undefined.
 */
export function fastPutOrigin(endpoint: string | undefined): URL | undefined {
  if (endpoint === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.username || url.password)
    return undefined;
  return url;
}

/** Direct small PutObjects to one endpoint; see the module comment. */
export class FastPut {
  #enabled = true;
  /** Direct attempts in a row that got no HTTP answer (the SDK then sent them). */
  #failuresInARow = 0;
  readonly #origin: URL;
  readonly #agent: http.Agent;
  readonly #request: typeof http.request;
  readonly #options: FastPutOptions;

  constructor(origin: URL, options: FastPutOptions) {
    this.#origin = origin;
    this.#options = options;
    const secure = origin.protocol === 'https:';
    const agentOptions = { keepAlive: true, maxSockets: options.maxSockets };
    this.#agent = secure ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
    this.#request = secure ? https.request : http.request;
  }

  /** False once the server refused a direct request for a reason other than a precondition. */
  get enabled(): boolean {
    return this.#enabled;
  }

  /**
   * Sends the PUT; the ETag (or '') when the server stored it, undefined when the caller should
   * send it through the SDK instead.
   *
   * @throws the signal's reason when it aborts.
   */
  async put(request: FastPutRequest): Promise<FastPutResult | undefined> {
    if (!this.#enabled) return undefined;
    const signal = request.signal;
    signal?.throwIfAborted();
    let credentials: SigV4Credentials;
    try {
      credentials = await this.#options.credentials();
    } catch {
      // The SDK reports credential problems with its own words.
      return undefined;
    }
    const body = request.body;
    const path = s3Path(request.path);
    const headers: Record<string, string> = {
      ...request.headers,
      host: this.#origin.host,
      'content-length': String(body.length),
      'content-md5': createHash('md5').update(body).digest('base64'),
    };
    signV4(
      {
        method: 'PUT',
        path,
        headers,
        payloadHash: createHash('sha256').update(body).digest('hex'),
      },
      credentials,
      this.#options.region,
      's3',
      Date.now(),
    );
    let result: { status: number; etag: string | undefined; body: string };
    try {
      result = await this.#send(path, headers, body, signal);
    } catch {
      if (signal?.aborted) throw signal.reason;
      // A network that fails only our requests (an IPv6 or TLS setup the SDK handles and we do
      // not, say) must not cost every write two attempts.
      if (++this.#failuresInARow >= MAX_FAILURES_IN_A_ROW) this.#enabled = false;
      return undefined;
    }
    this.#failuresInARow = 0;
    if (result.status >= 200 && result.status < 300) return { etag: result.etag ?? '' };
    if (result.status === 412) {
      const code = /<Code>([^<]*)<\/Code>/.exec(result.body)?.[1] ?? 'PreconditionFailed';
      const message = /<Message>([^<]*)<\/Message>/.exec(result.body)?.[1] ?? code;
      return { preconditionFailed: { code, message } };
    }
    if (result.status >= 400 && result.status < 500) this.#enabled = false;
    return undefined;
  }

  #send(
    path: string,
    headers: Record<string, string>,
    body: Uint8Array,
    signal: AbortSignal | undefined,
  ): Promise<{ status: number; etag: string | undefined; body: string }> {
    const { connectTimeoutMs, idleTimeoutMs } = this.#options;
    return new Promise((resolve, reject) => {
      const req = this.#request({
        protocol: this.#origin.protocol,
        // An IPv6 literal without its brackets (http.request would look `[::1]` up as a name).
        hostname: this.#origin.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: this.#origin.port || undefined,
        method: 'PUT',
        path,
        headers,
        agent: this.#agent,
        ...(signal && { signal }),
      });
      let connectTimer: NodeJS.Timeout | undefined;
      const fail = (e: Error) => {
        if (connectTimer) clearTimeout(connectTimer);
        req.destroy(e);
        reject(e);
      };
      if (idleTimeoutMs > 0) req.setTimeout(idleTimeoutMs, () => fail(new Error('idle timeout')));
      req.on('socket', (socket) => {
        if (connectTimeoutMs > 0 && socket.connecting) {
          connectTimer = setTimeout(() => fail(new Error('connect timeout')), connectTimeoutMs);
          socket.once('connect', () => clearTimeout(connectTimer));
        }
      });
      req.on('error', (e) => {
        if (connectTimer) clearTimeout(connectTimer);
        reject(e);
      });
      req.on('response', (res) => {
        if (connectTimer) clearTimeout(connectTimer);
        const chunks: Buffer[] = [];
        let seen = 0;
        res.on('data', (chunk: Buffer) => {
          seen += chunk.length;
          if (seen > MAX_RESPONSE_BYTES) fail(new Error('response too large'));
          else chunks.push(chunk);
        });
        res.on('error', reject);
        res.on('end', () => {
          const etag = res.headers.etag;
          resolve({
            status: res.statusCode ?? 0,
            etag: typeof etag === 'string' ? etag : undefined,
            body: Buffer.concat(chunks).toString('utf8'),
          });
        });
      });
      req.end(body);
    });
  }

  /** Closes the kept-alive connections. */
  close(): void {
    this.#agent.destroy();
  }
}
