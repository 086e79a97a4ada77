/**
 * Store URLs and their parameters as Nix spells them (nix-formats.md §8):
 * `s3://bucket[/prefix]?region=&endpoint=&profile=…`, `file:///dir?…`, `http(s)://host/path?…`.
 * Unknown parameters produce warnings; bad values are errors that name the parameter.
 */
import { NixcacheError } from '../errors.js';
import { COMPRESSION_METHODS, type CompressionMethod } from '../narinfo/types.js';
import { STORE_DIR } from '../store-path/store-path.js';

export type StoreScheme = 's3' | 'file' | 'http' | 'https';

/** Everything a store URL says, parsed and validated. */
export interface StoreConfig {
  readonly scheme: StoreScheme;
  /** The URL as given, minus the query (never holds credentials). */
  readonly baseUrl: string;
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

function bad(param: string, value: string, expected: string): NixcacheError {
  return new NixcacheError(
    'BAD_STORE_URL',
    `invalid value ${JSON.stringify(value)} for store parameter '${param}': expected ${expected}`,
    { field: param, actual: value, expected },
  );
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

function parseCompression(param: string, value: string): CompressionMethod {
  if (!(COMPRESSION_METHODS as readonly string[]).includes(value))
    throw bad(param, value, COMPRESSION_METHODS.join('|'));
  return value as CompressionMethod;
}

/** `s3.homelab.local` + scheme → `https://s3.homelab.local`; full URLs are kept. */
function normaliseEndpoint(endpoint: string, scheme: string | undefined): string {
  const full = endpoint.includes('://') ? endpoint : `${scheme || 'https'}://${endpoint}`;
  let url: URL;
  try {
    url = new URL(full);
  } catch {
    throw bad('endpoint', endpoint, 'a host or URL such as https://minio.example.com');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw bad('endpoint', endpoint, 'an http(s) URL');
  return full.replace(/\/+$/, '');
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
  const params = new URLSearchParams(q < 0 ? '' : text.slice(q + 1));
  const m = /^([a-z0-9+.-]+):\/\/(.*)$/.exec(base);
  if (!m)
    throw new NixcacheError('BAD_STORE_URL', `not a store URL: ${JSON.stringify(base)}`, { actual: base });
  const scheme = m[1]!;
  const rest = m[2]!;
  if (scheme !== 's3' && scheme !== 'file' && scheme !== 'http' && scheme !== 'https') {
    throw new NixcacheError(
      'BAD_STORE_URL',
      `unsupported store URL scheme '${scheme}://' (supported: s3://, file://, http://, https://)`,
      { actual: scheme, expected: 's3|file|http|https' },
    );
  }
  const warnings: string[] = [];
  const config: Record<string, unknown> = {
    scheme,
    baseUrl: base.replace(/\/+$/, ''),
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
      throw new NixcacheError('BAD_STORE_URL', `invalid S3 bucket name ${JSON.stringify(bucket)}`, {
        actual: bucket,
      });
    }
    config.bucket = bucket;
    config.prefix = slash < 0 ? '' : rest.slice(slash + 1).replace(/^\/+|\/+$/g, '');
  } else if (scheme === 'file') {
    let path: string;
    try {
      path = decodeURIComponent(rest.replace(/\/+$/, '')) || '/';
    } catch {
      throw new NixcacheError(
        'BAD_STORE_URL',
        `file:// store path has a bad %-escape: ${JSON.stringify(rest)}`,
        {
          actual: rest,
        },
      );
    }
    if (!path.startsWith('/')) {
      throw new NixcacheError(
        'BAD_STORE_URL',
        `file:// store needs an absolute path, got ${JSON.stringify(rest)}`,
      );
    }
    config.path = path;
  } else {
    let url: URL;
    try {
      url = new URL(base);
    } catch {
      throw new NixcacheError('BAD_STORE_URL', `invalid URL ${JSON.stringify(base)}`);
    }
    if (!url.host)
      throw new NixcacheError('BAD_STORE_URL', `HTTP store URL has an empty host: ${JSON.stringify(base)}`);
  }

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
        config.compressionLevel = parseInteger(key, value, -1);
        if (config.compressionLevel === -1) delete config.compressionLevel;
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
  if (endpoint) config.endpoint = normaliseEndpoint(endpoint, schemeParam);
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
