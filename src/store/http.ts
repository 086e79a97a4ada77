/**
 * The `http(s)://` storage driver (nix-formats.md §7.3, §8): GET/HEAD to read, PUT to write, as Nix
 * does. 404 and 403 both mean absent. Plain HTTP caches cannot be listed.
 */
import { NixcacheError, StoreError } from '../errors.js';
import { type ByteSource, toAsyncIterable, toReadableStream } from '../internal/iter.js';
import type {
  ListOptions,
  ObjectBody,
  ObjectInfo,
  PutOptions,
  ReadOptions,
  StorageBackend,
} from './backend.js';
import { checkKey } from './layout.js';
import { DEFAULT_FIRST_BYTE_TIMEOUT_MS, type NetworkTimeouts, withFirstByteTimeout } from './timeouts.js';

export interface HttpBackendOptions extends NetworkTimeouts {
  /** A fetch implementation (default: the global one). */
  readonly fetch?: typeof fetch;
  /** Extra headers for every request, e.g. `Authorization`. Never printed. */
  readonly headers?: Record<string, string>;
}

function infoOf(res: Response): ObjectInfo {
  const length = res.headers.get('content-length');
  const etag = res.headers.get('etag');
  const type = res.headers.get('content-type');
  const encoding = res.headers.get('content-encoding');
  return {
    ...(length !== null && { size: Number(length) }),
    ...(etag !== null && { etag }),
    ...(type !== null && { contentType: type }),
    ...(encoding !== null && { contentEncoding: encoding }),
  };
}

async function* bodyOf(res: Response, url: string): AsyncGenerator<Uint8Array> {
  if (!res.body) return;
  try {
    for await (const chunk of toAsyncIterable(res.body)) yield chunk;
  } catch (e) {
    throw networkError(url, 'GET', e);
  }
}

function networkError(url: string, operation: string, e: unknown): NixcacheError {
  if (e instanceof NixcacheError) return e;
  const err = e as Error & { cause?: { code?: string; message?: string } };
  if (err?.name === 'AbortError' || err?.name === 'TimeoutError') {
    return new StoreError('ABORTED', `${url}: ${operation} aborted`, { url, operation }, { cause: e });
  }
  const detail = err?.cause?.message ?? err?.cause?.code ?? err?.message ?? String(e);
  return new StoreError(
    'NETWORK',
    `${url}: ${operation} failed: ${detail}`,
    { url, operation },
    { cause: e },
  );
}

function statusError(url: string, operation: string, res: Response): NixcacheError {
  const code = res.status === 412 ? 'CONFLICT' : 'NETWORK';
  return new StoreError(code, `${url}: ${operation} failed: HTTP ${res.status} ${res.statusText}`.trim(), {
    url,
    operation,
    status: res.status,
  });
}

/** Reads (and writes with PUT) a binary cache served over HTTP. */
export class HttpBackend implements StorageBackend {
  readonly location: string;
  readonly conditionalWrites = false;
  readonly #fetch: typeof fetch;
  readonly #headers: Record<string, string>;
  readonly #firstByteTimeoutMs: number;

  /**
   * Requests without a body (GET, HEAD, DELETE) fail with NETWORK naming the host when no response
   * starts within `firstByteTimeoutMs` (default 30 s, connecting included); a body that streams
   * is limited only by fetch's idle timeout (300 s). PUT keeps fetch's own limits.
   */
  constructor(baseUrl: string, options: HttpBackendOptions = {}) {
    this.location = baseUrl.replace(/\/+$/, '');
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#headers = options.headers ?? {};
    this.#firstByteTimeoutMs = options.firstByteTimeoutMs ?? DEFAULT_FIRST_BYTE_TIMEOUT_MS;
  }

  #url(key: string): string {
    return `${this.location}/${checkKey(key)}`;
  }

  async #request(
    method: string,
    key: string,
    init: RequestInit & { signal?: AbortSignal },
  ): Promise<Response> {
    const url = this.#url(key);
    const send = async (signal: AbortSignal | undefined): Promise<Response> => {
      try {
        return await this.#fetch(url, {
          ...init,
          method,
          headers: { ...this.#headers, ...(init.headers as object) },
          ...(signal && { signal }),
        });
      } catch (e) {
        throw networkError(url, method, e);
      }
    };
    if (init.body !== undefined) return send(init.signal);
    return withFirstByteTimeout(url, method, this.#firstByteTimeoutMs, init.signal, send);
  }

  async get(key: string, options: ReadOptions = {}): Promise<ObjectBody | undefined> {
    const res = await this.#request('GET', key, { signal: options.signal });
    if (res.status === 404 || res.status === 403) {
      await res.body?.cancel();
      return undefined;
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw statusError(this.#url(key), 'GET', res);
    }
    return { ...infoOf(res), body: bodyOf(res, this.#url(key)) };
  }

  async head(key: string, options: ReadOptions = {}): Promise<ObjectInfo | undefined> {
    const res = await this.#request('HEAD', key, { signal: options.signal });
    if (res.status === 404 || res.status === 403) return undefined;
    if (!res.ok) throw statusError(this.#url(key), 'HEAD', res);
    return infoOf(res);
  }

  async put(key: string, body: ByteSource, options: PutOptions): Promise<ObjectInfo> {
    const headers: Record<string, string> = { 'content-type': options.contentType };
    if (options.contentEncoding) headers['content-encoding'] = options.contentEncoding;
    if (options.size !== undefined) headers['content-length'] = String(options.size);
    if (options.ifMatch !== undefined) headers['if-match'] = options.ifMatch;
    if (options.ifNoneMatch) headers['if-none-match'] = '*';
    const stream = toReadableStream(toAsyncIterable(body));
    const init = { body: stream, headers, signal: options.signal, duplex: 'half' };
    const res = await this.#request('PUT', key, init as RequestInit & { signal?: AbortSignal });
    await res.body?.cancel();
    if (!res.ok) throw statusError(this.#url(key), 'PUT', res);
    return infoOf(res);
  }

  // biome-ignore lint/correctness/useYield: listing is refused before anything is yielded
  async *list(_prefix: string, _options: ListOptions = {}): AsyncGenerator<string> {
    throw new StoreError(
      'UNSUPPORTED',
      `${this.location}: an HTTP binary cache cannot be listed; name the paths, or use the s3:// or file:// URL of the same cache`,
      { url: this.location, operation: 'list' },
    );
  }

  async delete(key: string, options: ReadOptions = {}): Promise<void> {
    const res = await this.#request('DELETE', key, { signal: options.signal });
    await res.body?.cancel();
    if (!res.ok && res.status !== 404) throw statusError(this.#url(key), 'DELETE', res);
  }
}
