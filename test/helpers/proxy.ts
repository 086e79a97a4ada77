/**
 * A recording loopback HTTP proxy for S3 tests (issue 5 "test the exact request nixcache sends",
 * issue 7 "Fault injection"). It listens on 127.0.0.1, forwards every request unchanged (Host
 * header included, so signatures stay valid) to a target such as s3rver, records method, URL,
 * headers and the first bytes of each body, and lets a test inject a fault per request: reset the
 * connection, delay, answer a status of its own (500, 503 SlowDown, 412, 403, …), truncate the
 * response body after N bytes, or stop accepting connections altogether.
 */
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';

/** One request that reached the proxy. */
export interface RecordedRequest {
  /** 0-based arrival order. */
  readonly index: number;
  readonly method: string;
  /** Path and query, as sent (`/bucket/key?uploads`). */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  /** The first `maxRecordBytes` bytes of the request body (complete once `done`). */
  body: Uint8Array;
  /** Total request body bytes seen. */
  bodyBytes: number;
  /** Status sent to the client (undefined when the connection was reset). */
  status?: number;
  /** The fault applied, if any. */
  fault?: Fault['kind'];
  /** True once the request body has been read completely. */
  done: boolean;
  /** The recorded body as UTF-8. */
  text(): string;
}

/** What to do with one request instead of (or on top of) forwarding it. */
export type Fault =
  /** Destroy the client's connection at once (the client sees ECONNRESET / socket hang up). */
  | { readonly kind: 'reset' }
  /** Destroy the client's connection after this many request body bytes arrived. */
  | { readonly kind: 'resetAfterRequestBytes'; readonly bytes: number }
  /** Answer with this status and body without forwarding (the request body is read and recorded first). */
  | {
      readonly kind: 'status';
      readonly status: number;
      readonly body?: string;
      readonly headers?: Readonly<Record<string, string>>;
    }
  /** Wait, then forward (or apply `next`). */
  | { readonly kind: 'delay'; readonly ms: number; readonly next?: Fault }
  /** Forward, but cut the response body after `afterBytes` bytes and destroy the connection. */
  | { readonly kind: 'truncate'; readonly afterBytes: number };

/** Decides a fault for a request when its headers arrive; undefined forwards it untouched. */
export type FaultHook = (request: RecordedRequest) => Fault | undefined | Promise<Fault | undefined>;

export interface StartProxyOptions {
  /** Where to forward, e.g. `http://127.0.0.1:4568`. */
  readonly target: string;
  /** Bytes of each request body to keep (default 1 MiB). */
  readonly maxRecordBytes?: number;
  readonly onRequest?: FaultHook;
}

export interface LoopbackProxy {
  /** `http://127.0.0.1:PORT` */
  readonly endpoint: string;
  readonly port: number;
  /** Every request so far, in arrival order. */
  readonly requests: RecordedRequest[];
  /** The fault hook; may be replaced at any time. */
  onRequest: FaultHook | undefined;
  /** Requests matching a method and a URL test. */
  find(method: string, url?: RegExp | string): RecordedRequest[];
  /** Forgets the recorded requests. */
  clear(): void;
  /** Closes the listening socket and every open connection: new requests get ECONNREFUSED. */
  stopAccepting(): Promise<void>;
  /** Listens again on the same port. */
  resumeAccepting(): Promise<void>;
  close(): Promise<void>;
}

/** An S3 error document, for `{ kind: 'status', body: s3ErrorXml('SlowDown', 'Please reduce your request rate.') }`. */
export function s3ErrorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>proxy</RequestId></Error>`;
}

/** Common faults. */
export const faults = {
  reset: { kind: 'reset' } as Fault,
  internalError: {
    kind: 'status',
    status: 500,
    body: s3ErrorXml('InternalError', 'We encountered an internal error. Please try again.'),
    headers: { 'content-type': 'application/xml' },
  } as Fault,
  slowDown: {
    kind: 'status',
    status: 503,
    body: s3ErrorXml('SlowDown', 'Please reduce your request rate.'),
    headers: { 'content-type': 'application/xml' },
  } as Fault,
  preconditionFailed: {
    kind: 'status',
    status: 412,
    body: s3ErrorXml('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold'),
    headers: { 'content-type': 'application/xml' },
  } as Fault,
  accessDenied: {
    kind: 'status',
    status: 403,
    body: s3ErrorXml('AccessDenied', 'Access Denied'),
    headers: { 'content-type': 'application/xml' },
  } as Fault,
};

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Starts the proxy on 127.0.0.1 (a free port).
 *
 * @throws {Error} when it cannot listen.
 * @example
 * const proxy = await startProxy({ target: s3.endpoint });
 * proxy.onRequest = (r) => (r.method === 'PUT' ? faults.preconditionFailed : undefined);
 */
export async function startProxy(options: StartProxyOptions): Promise<LoopbackProxy> {
  const target = new URL(options.target);
  const maxRecord = options.maxRecordBytes ?? 1024 * 1024;
  const agent = new Agent({ keepAlive: true });
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  let port = 0;

  function record(req: IncomingMessage): RecordedRequest {
    const r: RecordedRequest = {
      index: requests.length,
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      headers: req.headers,
      body: new Uint8Array(0),
      bodyBytes: 0,
      done: false,
      text() {
        return new TextDecoder().decode(r.body);
      },
    };
    requests.push(r);
    return r;
  }

  /** Starts recording the body; called in the same tick as whatever consumes it. */
  function tap(req: IncomingMessage, r: RecordedRequest): void {
    const parts: Uint8Array[] = [];
    let kept = 0;
    req.on('data', (chunk: Buffer) => {
      r.bodyBytes += chunk.length;
      if (kept < maxRecord) {
        const slice = chunk.subarray(0, maxRecord - kept);
        parts.push(new Uint8Array(slice));
        kept += slice.length;
      }
    });
    req.on('end', () => {
      r.body = new Uint8Array(Buffer.concat(parts));
      r.done = true;
    });
  }

  function forward(
    req: IncomingMessage,
    res: ServerResponse,
    rec: RecordedRequest,
    truncateAfter?: number,
  ): void {
    const upstream = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent,
      },
      (up) => {
        rec.status = up.statusCode;
        res.writeHead(up.statusCode ?? 502, up.headers);
        if (truncateAfter === undefined) {
          up.pipe(res);
          return;
        }
        let sent = 0;
        up.on('data', (chunk: Buffer) => {
          if (sent >= truncateAfter) return;
          const part = chunk.subarray(0, truncateAfter - sent);
          sent += part.length;
          res.write(part);
          if (sent >= truncateAfter) {
            up.destroy();
            // Let the written bytes reach the client, then cut the connection.
            setTimeout(() => res.socket?.destroy(), 20);
          }
        });
        up.on('end', () => {
          if (sent < truncateAfter) res.end();
        });
      },
    );
    upstream.on('error', (e) => {
      if (!res.headersSent) {
        rec.status = 502;
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`proxy: upstream failed: ${e.message}`);
      } else {
        res.socket?.destroy();
      }
    });
    tap(req, rec);
    req.pipe(upstream);
    req.on('aborted', () => upstream.destroy());
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rec = record(req);
    let fault = await proxy.onRequest?.(rec);
    while (fault?.kind === 'delay') {
      rec.fault = 'delay';
      await sleep(fault.ms);
      fault = fault.next;
    }
    if (fault) rec.fault = fault.kind;
    switch (fault?.kind) {
      case undefined:
        forward(req, res, rec);
        return;
      case 'truncate':
        forward(req, res, rec, fault.afterBytes);
        return;
      case 'reset':
        req.socket.destroy();
        return;
      case 'resetAfterRequestBytes': {
        const limit = fault.bytes;
        const check = () => {
          if (rec.bodyBytes >= limit) req.socket.destroy();
        };
        tap(req, rec);
        req.on('data', check);
        req.on('end', () => req.socket.destroy());
        req.resume();
        return;
      }
      case 'status': {
        const { status, body = '', headers = {} } = fault;
        tap(req, rec);
        req.resume();
        const answer = () => {
          rec.status = status;
          res.writeHead(status, { 'content-length': String(Buffer.byteLength(body)), ...headers });
          res.end(req.method === 'HEAD' ? undefined : body);
        };
        if (req.readableEnded) answer();
        else req.once('end', answer);
        return;
      }
    }
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`proxy: ${e instanceof Error ? e.message : String(e)}`);
      }
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        const addr = server.address();
        if (addr && typeof addr === 'object') port = addr.port;
        resolve();
      });
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      sockets.clear();
      if (!server.listening) resolve();
      else server.close(() => resolve());
    });

  await listen();

  const proxy: LoopbackProxy = {
    get endpoint() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    requests,
    onRequest: options.onRequest,
    find(method, url) {
      return requests.filter(
        (r) =>
          r.method === method &&
          (url === undefined || (typeof url === 'string' ? r.url.includes(url) : url.test(r.url))),
      );
    },
    clear() {
      requests.length = 0;
    },
    stopAccepting: stop,
    resumeAccepting: listen,
    async close() {
      await stop();
      agent.destroy();
    },
  };
  return proxy;
}
