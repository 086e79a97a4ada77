/**
 * Direct requests to an S3-compatible endpoint with path-style addressing (MinIO, Garage, R2,
 * Ceph, s3rver: `endpoint=` in the store URL): small in-memory PutObjects, GetObject, HeadObject
 * and ListObjectsV2 pages (`s3-list-xml.ts` reads them). A push of a system closure writes
 * thousands of objects of a few KiB, and a whole-cache run reads a narinfo per path; the SDK
 * spends about 1-2 ms of CPU on each request (middleware stack, endpoint rules, schema
 * (de)serialisation; measured against s3rver: 4,000 narinfo GETs took 3.2-5.3 s of CPU through
 * the SDK and 0.7-1.1 s this way), more than compressing a small NAR or checking a signature.
 * This is one signed HTTP request over a keep-alive agent instead, with the credentials the SDK
 * would use (keys in the environment when no profile is named; otherwise the SDK client's own
 * provider, so profiles, session tokens and refresh work as before). A PUT carries the same
 * integrity as the SDK's request: Content-MD5 and a signed `x-amz-content-sha256` of the body.
 *
 * A PUT answers "done" (2xx, with the ETag), "precondition failed" (412: a conditional write
 * lost, final, the caller reports CONFLICT as for the SDK's 412) or "not done". A read answers
 * the response (a 2xx GET with its body to stream; otherwise the status and S3's error code) or
 * "not done". "Not done" is anything the caller must send again through the SDK, which retries,
 * corrects clock skew and names the error as before: a network failure, a timeout before the
 * response, a redirect, a server error, and any other 4xx of a PUT. A 4xx the caller does not
 * take as an answer (for a read, anything but absence) or three attempts in a row without an
 * HTTP answer also turn direct requests off for the rest of the backend's life (`refused()`),
 * since the server (or the network) may not like something about them. Only an abort is thrown.
 */
import { createHash } from 'node:crypto';
import { getMaxListeners, setMaxListeners } from 'node:events';
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import * as https from 'node:https';
import { type ListPage, parseListPage } from './s3-list-xml.js';
import { canonicalQuery, type SigV4Credentials, s3Path, signV4 } from './s3-sigv4.js';

/** Largest body sent directly (larger ones take the SDK's path, streamed or multipart). */
export const DIRECT_PUT_MAX_BYTES = 5 * 1024 * 1024;
/** Direct attempts in a row without an HTTP answer after which the SDK sends everything. */
const MAX_FAILURES_IN_A_ROW = 3;
/** Most bytes of a response read (success bodies are empty; errors are a short XML document). */
const MAX_RESPONSE_BYTES = 64 * 1024;
/**
 * Most bytes of a listing page: 1000 keys of S3's longest (1024 bytes, each character escaped
 * as up to 10) stay under it, with ETags, sizes and dates. A larger answer goes to the SDK.
 */
const MAX_LIST_PAGE_BYTES = 16 * 1024 * 1024;
/** About how long a read that got a server error waits before the SDK sends it again. */
const SERVER_ERROR_PAUSE_MS = 100;
/** SHA-256 of an empty payload (GET and HEAD). */
const EMPTY_SHA256 = createHash('sha256').digest('hex');

export interface DirectOptions {
  /** The signing region. */
  readonly region: string;
  readonly credentials: () => Promise<SigV4Credentials>;
  readonly maxSockets: number;
  readonly connectTimeoutMs: number;
  /** Longest wait for the response once the request is sent (0: none). */
  readonly firstByteTimeoutMs: number;
  /** Longest time the connection may carry no bytes, the body included (0: none). */
  readonly idleTimeoutMs: number;
}

/** What a direct PUT settled: stored (with its ETag, '' when none came), or a failed precondition. */
export type DirectPutResult =
  | { readonly etag: string; readonly preconditionFailed?: undefined }
  | {
      readonly etag?: undefined;
      readonly preconditionFailed: { readonly code: string; readonly message: string };
    };

export interface DirectPutRequest {
  /** `bucket/full-object-key` (not encoded). */
  readonly path: string;
  readonly body: Uint8Array;
  /** Extra headers, lower case (content-type, content-encoding, if-match, …). */
  readonly headers: Record<string, string>;
  readonly signal?: AbortSignal;
}

/**
 * What a direct GET or HEAD got: the status and headers, the body to stream for a 2xx GET, and
 * S3's error code for an error with a body.
 */
export interface DirectRead {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** A 2xx GET's body, to be read to its end or destroyed. */
  readonly body?: IncomingMessage;
  /** `<Code>` of an error document. */
  readonly code?: string;
}

/** One ListObjectsV2 request: its prefix, and optionally a delimiter, a token and a page size. */
export interface DirectListRequest {
  readonly prefix: string;
  readonly delimiter?: string;
  readonly continuationToken?: string;
  readonly maxKeys?: number;
  /** Each object's Size and LastModified too (a page without them goes to the SDK). */
  readonly details?: boolean;
}

/** A raw response: the status, headers and either the body to stream or the body read as text. */
interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly stream?: IncomingMessage;
  readonly text: string;
}

/**
 * Lets a caller's signal carry a listener per request in flight: a whole-cache run shares one
 * signal among tens of requests, each listening for its abort until it settles (Node warns of a
 * leak from 11 on, and the CLI would print that warning).
 */
function allowListeners(signal: AbortSignal, n: number): void {
  const max = getMaxListeners(signal);
  if (max !== 0 && max < n) setMaxListeners(n, signal);
}

/** Waits `ms`, or throws the signal's reason when it aborts first. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    signal?.throwIfAborted();
    const done = () => {
      signal?.removeEventListener('abort', stop);
      resolve();
    };
    const timer = setTimeout(done, ms);
    const stop = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', stop, { once: true });
  });
}

/**
 * The endpoint origin when the direct path can serve it (http or https, no path, query or
 * credentials), else undefined.
 */
export function directOrigin(endpoint: string | undefined): URL | undefined {
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

/** The text of `<Code>` or `<Message>` in an S3 error document, undefined when there is none. */
function errorField(text: string, name: 'Code' | 'Message'): string | undefined {
  return (name === 'Code' ? /<Code>([^<]*)<\/Code>/ : /<Message>([^<]*)<\/Message>/).exec(text)?.[1];
}

/** A request's kind: LIST is a GET of a bucket whose answer is read whole. */
type Method = 'GET' | 'HEAD' | 'PUT' | 'LIST';

/** The HTTP method a request of `kind` is signed and sent with. */
function httpMethod(kind: Method): 'GET' | 'HEAD' | 'PUT' {
  return kind === 'LIST' ? 'GET' : kind;
}

/** Direct requests to one endpoint; see the module comment. */
export class DirectS3 {
  #enabled = true;
  /** Direct attempts in a row that got no HTTP answer (the SDK then sent them). */
  #failuresInARow = 0;
  readonly #origin: URL;
  readonly #agent: http.Agent;
  readonly #request: typeof http.request;
  readonly #options: DirectOptions;

  constructor(origin: URL, options: DirectOptions) {
    this.#origin = origin;
    this.#options = options;
    const secure = origin.protocol === 'https:';
    const agentOptions = { keepAlive: true, maxSockets: options.maxSockets };
    this.#agent = secure ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
    this.#request = secure ? https.request : http.request;
  }

  /** False once the server refused a direct request (see the module comment). */
  get enabled(): boolean {
    return this.#enabled;
  }

  /** The caller took a direct answer for a refusal of the request: the SDK sends everything now. */
  refused(): void {
    this.#enabled = false;
  }

  /**
   * Sends a GET or HEAD of `bucket/key`; undefined when the caller should send it through the
   * SDK instead. A 2xx GET's body streams (its connection is idle-timed); any other response has
   * been read.
   *
   * @throws the signal's reason when it aborts.
   */
  async read(
    method: 'GET' | 'HEAD',
    bucketKey: string,
    signal?: AbortSignal,
  ): Promise<DirectRead | undefined> {
    const path = s3Path(bucketKey);
    const answer = await this.#attempt(method, path, '', {}, EMPTY_SHA256, undefined, signal);
    if (answer === undefined) return undefined;
    const { status, headers } = answer;
    if (answer.stream) return { status, headers, body: answer.stream };
    if (!(await this.#isAnswer(status, signal))) return undefined;
    const code = errorField(answer.text, 'Code');
    return { status, headers, ...(code !== undefined && { code }) };
  }

  /**
   * Lists one page of `bucket` (ListObjectsV2); undefined when the caller should send it through
   * the SDK instead: any answer but a 2xx this module can read (`s3-list-xml.ts`). A 4xx turns
   * direct requests off, as for a read, except a missing bucket and AccessDenied: credentials may
   * read and write objects without the right to list them, and the SDK then reports that.
   *
   * @throws the signal's reason when it aborts.
   */
  async list(
    bucket: string,
    request: DirectListRequest,
    signal?: AbortSignal,
  ): Promise<ListPage | undefined> {
    const query = canonicalQuery({
      'list-type': '2',
      prefix: request.prefix,
      ...(request.delimiter !== undefined && { delimiter: request.delimiter }),
      ...(request.continuationToken !== undefined && { 'continuation-token': request.continuationToken }),
      ...(request.maxKeys !== undefined && { 'max-keys': String(request.maxKeys) }),
    });
    // With the slash, as the SDK sends it: the request servers already answer for the SDK.
    const path = s3Path(`${bucket}/`);
    const answer = await this.#attempt('LIST', path, query, {}, EMPTY_SHA256, undefined, signal);
    if (answer === undefined) return undefined;
    const { status } = answer;
    if (status >= 200 && status < 300) return parseListPage(answer.text, request.details === true);
    if (!(await this.#isAnswer(status, signal))) return undefined;
    const code = errorField(answer.text, 'Code');
    if (status >= 400 && status < 500 && code !== 'NoSuchBucket' && code !== 'AccessDenied') this.refused();
    return undefined;
  }

  /**
   * Whether a read's non-2xx status is an answer to take; false for a redirect and for a server
   * error, after a pause: the SDK sends those again at once, and a 503 SlowDown asks for fewer
   * requests, not one more right away (as its own retry would wait).
   */
  async #isAnswer(status: number, signal: AbortSignal | undefined): Promise<boolean> {
    if (status >= 300 && status < 400) return false;
    if (status >= 500) {
      await pause(SERVER_ERROR_PAUSE_MS * (0.5 + Math.random()), signal);
      return false;
    }
    return true;
  }

  /**
   * Sends the PUT; the ETag (or '') when the server stored it, undefined when the caller should
   * send it through the SDK instead.
   *
   * @throws the signal's reason when it aborts.
   */
  async put(request: DirectPutRequest): Promise<DirectPutResult | undefined> {
    const body = request.body;
    const headers: Record<string, string> = {
      ...request.headers,
      'content-length': String(body.length),
      'content-md5': createHash('md5').update(body).digest('base64'),
    };
    const payloadHash = createHash('sha256').update(body).digest('hex');
    const path = s3Path(request.path);
    const answer = await this.#attempt('PUT', path, '', headers, payloadHash, body, request.signal);
    if (answer === undefined) return undefined;
    const { status } = answer;
    if (status >= 200 && status < 300) {
      const etag = answer.headers.etag;
      return { etag: typeof etag === 'string' ? etag : '' };
    }
    if (status === 412) {
      const code = errorField(answer.text, 'Code') ?? 'PreconditionFailed';
      const message = errorField(answer.text, 'Message') ?? code;
      return { preconditionFailed: { code, message } };
    }
    if (status >= 400 && status < 500) this.#enabled = false;
    return undefined;
  }

  /**
   * Signs and sends one request; its answer, or undefined when direct requests are off or no
   * HTTP answer came (counted: three in a row turn them off).
   */
  async #attempt(
    method: Method,
    path: string,
    query: string,
    extra: Record<string, string>,
    payloadHash: string,
    body: Uint8Array | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Answer | undefined> {
    if (!this.#enabled) return undefined;
    signal?.throwIfAborted();
    let credentials: SigV4Credentials;
    try {
      credentials = await this.#options.credentials();
    } catch {
      // The SDK reports credential problems with its own words.
      return undefined;
    }
    const headers: Record<string, string> = { ...extra, host: this.#origin.host };
    signV4(
      { method: httpMethod(method), path, query, headers, payloadHash },
      credentials,
      this.#options.region,
      's3',
      Date.now(),
    );
    let answer: Answer;
    try {
      answer = await this.#send(method, query ? `${path}?${query}` : path, headers, body, signal);
    } catch {
      if (signal?.aborted) throw signal.reason;
      // A network that fails only our requests (an IPv6 or TLS setup the SDK handles and we do
      // not, say) must not cost every request two attempts.
      if (++this.#failuresInARow >= MAX_FAILURES_IN_A_ROW) this.#enabled = false;
      return undefined;
    }
    this.#failuresInARow = 0;
    return answer;
  }

  /**
   * One request; a 2xx GET resolves with its body unread, any other response once read (a
   * listing's 2xx up to {@link MAX_LIST_PAGE_BYTES}, others up to {@link MAX_RESPONSE_BYTES}).
   */
  #send(
    method: Method,
    path: string,
    headers: Record<string, string>,
    body: Uint8Array | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Answer> {
    const { connectTimeoutMs, firstByteTimeoutMs, idleTimeoutMs, maxSockets } = this.#options;
    if (signal) allowListeners(signal, 4 * maxSockets);
    return new Promise((resolve, reject) => {
      const req = this.#request({
        protocol: this.#origin.protocol,
        // An IPv6 literal without its brackets (http.request would look `[::1]` up as a name).
        hostname: this.#origin.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: this.#origin.port || undefined,
        method: httpMethod(method),
        path,
        headers,
        agent: this.#agent,
        ...(signal && { signal }),
      });
      let timer: NodeJS.Timeout | undefined;
      const fail = (e: Error) => {
        if (timer) clearTimeout(timer);
        req.destroy(e);
        reject(e);
      };
      if (idleTimeoutMs > 0) req.setTimeout(idleTimeoutMs, () => fail(new Error('idle timeout')));
      // Reads only: a PUT's wait includes sending its body (up to 5 MiB on a slow uplink).
      const waitForAnswer = () => {
        if (firstByteTimeoutMs > 0 && method !== 'PUT')
          timer = setTimeout(() => fail(new Error('first byte timeout')), firstByteTimeoutMs);
      };
      req.on('socket', (socket) => {
        if (connectTimeoutMs > 0 && socket.connecting) {
          timer = setTimeout(() => fail(new Error('connect timeout')), connectTimeoutMs);
          socket.once('connect', () => {
            clearTimeout(timer);
            waitForAnswer();
          });
        } else waitForAnswer();
      });
      req.on('error', (e) => {
        if (timer) clearTimeout(timer);
        reject(e);
      });
      req.on('response', (res) => {
        if (timer) clearTimeout(timer);
        const status = res.statusCode ?? 0;
        if (method === 'GET' && status >= 200 && status < 300) {
          // Its reader sees a failure through its own listener; none must go unheard before.
          res.on('error', () => {});
          resolve({ status, headers: res.headers, stream: res, text: '' });
          return;
        }
        const chunks: Buffer[] = [];
        let seen = 0;
        const cap =
          method === 'LIST' && status >= 200 && status < 300 ? MAX_LIST_PAGE_BYTES : MAX_RESPONSE_BYTES;
        res.on('data', (chunk: Buffer) => {
          seen += chunk.length;
          if (seen > cap) fail(new Error('response too large'));
          else chunks.push(chunk);
        });
        res.on('error', reject);
        res.on('end', () => {
          resolve({ status, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') });
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
