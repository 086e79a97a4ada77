/**
 * Store URLs and their parameters as Nix spells them (nix-formats.md §8):
 * `s3://bucket[/prefix]?region=&endpoint=&profile=…`, `file:///dir?…`, `http(s)://host/path?…`.
 * Unknown parameters produce warnings; bad values are errors that name the parameter.
 */
import {
  COMPRESSION_LEVELS,
  isSupportedCompressionMethod,
  SUPPORTED_COMPRESSION_METHODS,
} from '../compression/registry.js';
import { NixcacheError } from '../errors.js';
import type { CompressionMethod } from '../narinfo/types.js';
import { STORE_DIR } from '../store-path/store-path.js';

export type StoreScheme = 's3' | 'file' | 'http' | 'https';

/** Everything a store URL says, parsed and validated. */
export interface StoreConfig {
  readonly scheme: StoreScheme;
  /** The URL as given, minus the query and minus any `user:password@` (never holds credentials). */
  readonly baseUrl: string;
  /**
   * http(s): the `Authorization` header value for a URL that carried `user:password@`. A function,
   * so that JSON, `util.inspect` and logs of the config never show the credentials.
   */
  readonly httpAuthorization?: () => string;
  /** s3: bucket name. */
  readonly bucket?: string;
  /** s3: key prefix inside the bucket (no leading or trailing `/`), '' for none. */
  readonly prefix: string;
  /** file: absolute directory. */
  readonly path?: string;
  readonly storeDir: string;
  readonly priority?: number;
  readonly wantMassQuery?: boolean;
  readonly trusted: boolean;
  readonly compression: CompressionMethod;
  readonly compressionLevel?: number;
  readonly parallelCompression: boolean;
  readonly writeNarListing: boolean;
  readonly secretKeyFiles: readonly string[];
  readonly narinfoCompression?: CompressionMethod;
  readonly lsCompression?: CompressionMethod;
  readonly logCompression?: CompressionMethod;
  // S3
  readonly region: string;
  /** Full endpoint URL (`http://127.0.0.1:9000`); undefined means AWS. */
  readonly endpoint?: string;
  readonly profile?: string;
  readonly addressingStyle: 'auto' | 'path' | 'virtual';
  readonly multipartUpload: boolean;
  readonly multipartChunkSize: number;
  readonly multipartThreshold: number;
  readonly storageClass?: string;
  /** Warnings about unknown or ignored parameters. */
  readonly warnings: readonly string[];
}

const MiB = 1024 * 1024;

/** Parameters Nix knows that change nothing for nixcache; accepted with a note. */
const IGNORED = new Set([
  'path-info-cache-size',
  'system-features',
  'index-debug-info',
  'local-nar-cache',
  'tls-certificate',
  'tls-private-key',
  'retry-delay',
  'retry-delay-rate-limited',
  'retry-max-delay',
  'retry-attempts',
  'versionId',
  'upload-timeout',
  'want-mass-query-ttl',
  'real',
  'state',
  'log',
]);

/**
 * `scheme://user:password@host` → `scheme://[redacted]@host`, anywhere in `text`: for messages that
 * echo a URL. The host, path and query stay, so the message still says which cache is meant.
 *
 * @example redactUrlCredentials('https://ci:hunter2@cache.example.org/x') // 'https://[redacted]@cache.example.org/x'
 */
export function redactUrlCredentials(text: string): string {
  return text.replace(/(\/\/)[^/?#\s@]*@/g, '$1[redacted]@');
}

function bad(param: string, value: string, expected: string): NixcacheError {
  const shown = redactUrlCredentials(value);
  return new NixcacheError(
    'BAD_STORE_URL',
    `invalid value ${JSON.stringify(shown)} for store parameter '${param}': expected ${expected}`,
    { field: param, actual: shown, expected },
  );
}

/** A name that can be echoed in a warning (not, say, a key pasted without `secret-key=`). */
function printableName(name: string): boolean {
  return /^[A-Za-z][A-Za-z0-9_-]{0,39}$/.test(name);
}

/**
 * Percent-decodes a query component as Nix does (`percentDecode`): `%XX` becomes that byte and
 * `+` stays a `+` (it is not a space: base64 keys and file names keep it).
 */
function percentDecode(text: string, what: string): string {
  if (!text.includes('%')) return text;
  const bytes: number[] = [];
  const enc = new TextEncoder();
  for (let i = 0; i < text.length; ) {
    if (text[i] === '%') {
      const hex = text.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) {
        // The value is not echoed: it may be a key or a password.
        throw new NixcacheError('BAD_STORE_URL', `${what} has a bad %-escape at character ${i + 1}`, {
          field: what,
          offset: i,
        });
      }
      bytes.push(Number.parseInt(hex, 16));
      i += 3;
    } else {
      const cp = text.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      bytes.push(...enc.encode(ch));
      i += ch.length;
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/**
 * Splits a query as Nix's `decodeQuery` does: `&`-separated `name=value` pairs, percent-decoded,
 * the first value of a repeated name kept (later ones are ignored, with a warning), and parts
 * without `=` ignored (with a warning).
 */
function decodeQuery(query: string, warnings: string[]): Map<string, string> {
  const params = new Map<string, string>();
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq < 0) {
      warnings.push(
        printableName(part)
          ? `store parameter '${part}' has no '=value' (ignored)`
          : `a store URL query part without '=' was ignored`,
      );
      continue;
    }
    const name = percentDecode(part.slice(0, eq), 'a store parameter name');
    const value = percentDecode(part.slice(eq + 1), `store parameter '${printableName(name) ? name : '?'}'`);
    if (params.has(name)) {
      warnings.push(
        `store parameter '${printableName(name) ? name : '?'}' is given more than once; the first value is used (as in Nix)`,
      );
      continue;
    }
    params.set(name, value);
  }
  return params;
}

function parseBool(param: string, value: string): boolean {
  if (['true', 'yes', '1'].includes(value)) return true;
  if (['false', 'no', '0'].includes(value)) return false;
  throw bad(param, value, 'true|false|yes|no|1|0');
}

function parseInteger(param: string, value: string, min = Number.MIN_SAFE_INTEGER): number {
  if (!/^-?[0-9]+$/.test(value)) throw bad(param, value, 'an integer');
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw bad(param, value, `an integer >= ${min}`);
  return n;
}

/** A method nixcache can write: the others (lz4, lzip, …) Nix knows but nixcache cannot produce. */
function parseCompression(param: string, value: string): CompressionMethod {
  if (!isSupportedCompressionMethod(value))
    throw bad(param, value, `a compression nixcache can write: ${SUPPORTED_COMPRESSION_METHODS.join('|')}`);
  return value;
}

/**
 * `s3.homelab.local` + scheme → `https://s3.homelab.local`; full URLs are kept. A bare
 * `host:port` still works as in Nix (https unless `scheme=http`), with a warning, because a plain
 * HTTP server (MinIO, s3rver on a port) then fails with an obscure TLS error.
 */
function normaliseEndpoint(endpoint: string, scheme: string | undefined, warnings: string[]): string {
  const hasScheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(endpoint);
  const full = hasScheme ? endpoint : `${scheme || 'https'}://${endpoint}`;
  let url: URL;
  try {
    url = new URL(full);
  } catch {
    throw bad('endpoint', endpoint, 'a host or URL such as https://minio.example.com');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw bad('endpoint', endpoint, 'an http(s) URL');
  if (url.username || url.password) {
    throw new NixcacheError(
      'BAD_STORE_URL',
      `store parameter 'endpoint' must not hold a user name or password (${redactUrlCredentials(full)}); S3 credentials come from the AWS environment variables, a profile or an instance role`,
      { field: 'endpoint', actual: redactUrlCredentials(full) },
    );
  }
  if (!hasScheme && !scheme) {
    warnings.push(
      `store parameter 'endpoint' has no scheme, so https://${endpoint} is used; if the server speaks plain HTTP (MinIO or s3rver on a port, say), write endpoint=http://${endpoint}`,
    );
  }
  return full.replace(/\/+$/, '');
}

/** AWS: "Bucket names must not be formatted as an IP address"; Nix refuses them too. */
function isIpAddress(text: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(text);
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * Parses a store URL.
 *
 * @throws {NixcacheError} BAD_STORE_URL naming the parameter or the part of the URL that is wrong.
 * @example parseStoreUrl('s3://nix-cache?profile=nixbuilder&endpoint=s3.homelab.local')
 */
export function parseStoreUrl(text: string): StoreConfig {
  const q = text.indexOf('?');
  const base = q < 0 ? text : text.slice(0, q);
  const shownBase = redactUrlCredentials(base);
  const warnings: string[] = [];
  const params = decodeQuery(q < 0 ? '' : text.slice(q + 1), warnings);
  const m = /^([a-z0-9+.-]+):\/\/(.*)$/.exec(base);
  if (!m)
    throw new NixcacheError('BAD_STORE_URL', `not a store URL: ${JSON.stringify(shownBase)}`, {
      actual: shownBase,
    });
  const scheme = m[1]!;
  const rest = m[2]!;
  if (scheme !== 's3' && scheme !== 'file' && scheme !== 'http' && scheme !== 'https') {
    throw new NixcacheError(
      'BAD_STORE_URL',
      `unsupported store URL scheme '${scheme}://' (supported: s3://, file://, http://, https://)`,
      { actual: scheme, expected: 's3|file|http|https' },
    );
  }
  const config: Record<string, unknown> = {
    scheme,
    baseUrl: shownBase.replace(/\/+$/, ''),
    prefix: '',
    storeDir: STORE_DIR,
    trusted: false,
    compression: 'xz',
    parallelCompression: false,
    writeNarListing: false,
    secretKeyFiles: [],
    region: 'us-east-1',
    addressingStyle: 'auto',
    multipartUpload: false,
    multipartChunkSize: 5 * MiB,
    multipartThreshold: 100 * MiB,
    warnings,
  };
  if (scheme === 's3') {
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
      const shown = redactUrlCredentials(`//${bucket}`).slice(2);
      throw new NixcacheError('BAD_STORE_URL', `invalid S3 bucket name ${JSON.stringify(shown)}`, {
        actual: shown,
      });
    }
    if (isIpAddress(bucket)) {
      throw new NixcacheError(
        'BAD_STORE_URL',
        `invalid S3 bucket name ${JSON.stringify(bucket)}: a bucket name cannot be an IP address (for a server at ${bucket}, write s3://BUCKET?endpoint=http://${bucket}:PORT)`,
        { actual: bucket },
      );
    }
    config.bucket = bucket;
    config.prefix = slash < 0 ? '' : rest.slice(slash + 1).replace(/^\/+|\/+$/g, '');
  } else if (scheme === 'file') {
    let path: string;
    try {
      path = decodeURIComponent(rest.replace(/\/+$/, '')) || '/';
    } catch {
      const shown = redactUrlCredentials(`//${rest}`).slice(2);
      throw new NixcacheError(
        'BAD_STORE_URL',
        `file:// store path has a bad %-escape: ${JSON.stringify(shown)}`,
        { actual: shown },
      );
    }
    if (!path.startsWith('/')) {
      throw new NixcacheError(
        'BAD_STORE_URL',
        `file:// store needs an absolute path, got ${JSON.stringify(redactUrlCredentials(`//${rest}`).slice(2))}`,
      );
    }
    config.path = path;
  } else {
    let url: URL;
    try {
      url = new URL(base);
    } catch {
      throw new NixcacheError('BAD_STORE_URL', `invalid URL ${JSON.stringify(shownBase)}`);
    }
    if (!url.host)
      throw new NixcacheError(
        'BAD_STORE_URL',
        `HTTP store URL has an empty host: ${JSON.stringify(shownBase)}`,
      );
    if (url.username || url.password) {
      const user = decodeURIComponentSafe(url.username);
      const password = decodeURIComponentSafe(url.password);
      const header = `Basic ${btoa(String.fromCharCode(...new TextEncoder().encode(`${user}:${password}`)))}`;
      config.httpAuthorization = () => header;
      url.username = '';
      url.password = '';
      config.baseUrl = url.href.replace(/\/+$/, '');
    }
  }

  let level: { value: string } | undefined;
  let schemeParam: string | undefined;
  let endpoint: string | undefined;
  for (const [key, value] of params) {
    switch (key) {
      case 'store':
        if (!value.startsWith('/')) throw bad(key, value, 'an absolute directory');
        config.storeDir = value.replace(/\/+$/, '');
        break;
      case 'priority':
        config.priority = parseInteger(key, value);
        break;
      case 'want-mass-query':
        config.wantMassQuery = parseBool(key, value);
        break;
      case 'trusted':
        config.trusted = parseBool(key, value);
        break;
      case 'compression':
        config.compression = parseCompression(key, value);
        break;
      case 'compression-level':
        level = { value }; // checked below, against the method
        break;
      case 'parallel-compression':
        config.parallelCompression = parseBool(key, value);
        break;
      case 'write-nar-listing':
        config.writeNarListing = parseBool(key, value);
        break;
      case 'secret-key':
        if (value) config.secretKeyFiles = [...(config.secretKeyFiles as string[]), value];
        break;
      case 'secret-keys':
        config.secretKeyFiles = [...(config.secretKeyFiles as string[]), ...value.split(',').filter(Boolean)];
        break;
      case 'narinfo-compression':
        if (value) config.narinfoCompression = parseCompression(key, value);
        break;
      case 'ls-compression':
        if (value) config.lsCompression = parseCompression(key, value);
        break;
      case 'log-compression':
        if (value) config.logCompression = parseCompression(key, value);
        break;
      case 'region':
        if (!/^[a-z0-9-]+$/.test(value)) throw bad(key, value, 'a region name such as eu-west-2');
        config.region = value;
        break;
      case 'endpoint':
        endpoint = value;
        break;
      case 'scheme':
        if (value !== 'http' && value !== 'https' && value !== '') throw bad(key, value, 'http|https');
        schemeParam = value;
        break;
      case 'profile':
        config.profile = value || undefined;
        break;
      case 'addressing-style':
        if (value !== 'auto' && value !== 'path' && value !== 'virtual')
          throw bad(key, value, 'auto|path|virtual');
        config.addressingStyle = value;
        break;
      case 'multipart-upload':
        config.multipartUpload = parseBool(key, value);
        break;
      case 'multipart-chunk-size':
      case 'buffer-size':
        config.multipartChunkSize = parseInteger(key, value, 5 * MiB);
        break;
      case 'multipart-threshold':
        config.multipartThreshold = parseInteger(key, value, 5 * MiB);
        break;
      case 'storage-class':
        config.storageClass = value || undefined;
        break;
      default:
        if (IGNORED.has(key))
          warnings.push(`store parameter '${key}' is accepted but has no effect in nixcache`);
        else warnings.push(`unknown store parameter '${key}' (ignored)`);
    }
  }
  if (level !== undefined) {
    const n = parseInteger('compression-level', level.value, -1);
    const method = config.compression as keyof typeof COMPRESSION_LEVELS;
    const range = COMPRESSION_LEVELS[method];
    if (n !== -1 && method !== 'none' && (n < range.min || n > range.max))
      throw bad(
        'compression-level',
        level.value,
        `-1 or ${range.min}..${range.max} for ${method} compression`,
      );
    if (n !== -1) config.compressionLevel = n;
  }
  if (endpoint) config.endpoint = normaliseEndpoint(endpoint, schemeParam, warnings);
  if (scheme !== 's3') {
    for (const k of [
      'region',
      'endpoint',
      'profile',
      'scheme',
      'addressing-style',
      'multipart-upload',
      'storage-class',
    ]) {
      if (params.has(k)) warnings.push(`store parameter '${k}' only applies to s3:// stores (ignored)`);
    }
  }
  if (config.addressingStyle === 'virtual' && (config.bucket as string | undefined)?.includes('.')) {
    throw bad(
      'addressing-style',
      'virtual',
      'path or auto: a bucket name with a dot needs path-style addressing',
    );
  }
  return config as unknown as StoreConfig;
}
