/**
 * AWS Signature Version 4 for one S3 request whose payload is in memory (the small-object PUT of
 * `s3.ts`): canonical request, string to sign, and the day's signing key, cached per secret, day
 * and region. The payload is signed by its SHA-256 (`x-amz-content-sha256`), so a server that
 * checks signatures (AWS, MinIO, Garage, R2) refuses a body that changed on the way. Checked
 * against the SDK's own signer in test/store/s3-sigv4.test.ts.
 */
import { createHash, createHmac } from 'node:crypto';

/** What a request is signed with (the SDK's resolved credentials). */
export interface SigV4Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** One request to sign; `headers` keys are lower case and must include `host`. */
export interface SigV4Request {
  readonly method: string;
  /** The path as sent, already URI-encoded (S3 does not encode it a second time). */
  readonly path: string;
  /** The canonical query string ({@link canonicalQuery}), '' or absent for none. */
  readonly query?: string;
  readonly headers: Record<string, string>;
  /** Lower-case hex SHA-256 of the payload. */
  readonly payloadHash: string;
}

/** RFC 3986 encoding of one path segment, as S3 expects (`A-Za-z0-9-._~` kept). */
function encodeSegment(segment: string): string {
  return encodeURIComponent(segment).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/**
 * Query parameters as SigV4 wants them and as the request sends them: names and values
 * RFC 3986-encoded, sorted by name, `name=value` joined by `&`.
 */
export function canonicalQuery(params: Record<string, string>): string {
  return Object.keys(params)
    .map((name) => [encodeSegment(name), encodeSegment(params[name]!)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
}

/** A key (or `bucket/key`) as an S3 request path: every segment encoded, `/` kept. */
export function s3Path(parts: string): string {
  return `/${parts.split('/').map(encodeSegment).join('/')}`;
}

let lastDate: { second: number; value: { dateTime: string; date: string } } | undefined;

/** `20260102T030405Z` and `20260102` for a time (the same second reuses the last answer). */
export function amzDate(time: number): { dateTime: string; date: string } {
  const second = Math.floor(time / 1000);
  if (lastDate?.second !== second) {
    const iso = new Date(second * 1000).toISOString(); // 2026-01-02T03:04:05.000Z
    const dateTime = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
    lastDate = { second, value: { dateTime, date: dateTime.slice(0, 8) } };
  }
  return lastDate.value;
}

/** Signing keys by secret, day, region and service (a push signs thousands of requests a day). */
const keyCache = new Map<string, Buffer>();

function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  const id = `${date}\n${region}\n${service}\n${secret}`;
  let key = keyCache.get(id);
  if (key === undefined) {
    const kDate = createHmac('sha256', `AWS4${secret}`).update(date).digest();
    const kRegion = createHmac('sha256', kDate).update(region).digest();
    const kService = createHmac('sha256', kRegion).update(service).digest();
    key = createHmac('sha256', kService).update('aws4_request').digest();
    if (keyCache.size >= 16) keyCache.clear();
    keyCache.set(id, key);
  }
  return key;
}

/**
 * Adds `x-amz-date`, `x-amz-content-sha256`, `x-amz-security-token` (with a session token) and
 * `authorization` to `request.headers`, signing every header it has.
 *
 * @example signV4(req, creds, 'us-east-1', 's3', Date.now())
 */
export function signV4(
  request: SigV4Request,
  credentials: SigV4Credentials,
  region: string,
  service: string,
  time: number,
): void {
  const { dateTime, date } = amzDate(time);
  const headers = request.headers;
  headers['x-amz-date'] = dateTime;
  headers['x-amz-content-sha256'] = request.payloadHash;
  if (credentials.sessionToken) headers['x-amz-security-token'] = credentials.sessionToken;
  const names = Object.keys(headers)
    .map((n) => n.toLowerCase())
    .filter((n) => n !== 'authorization')
    .sort();
  const canonicalHeaders = names
    .map((n) => `${n}:${String(headers[n]).trim().replace(/\s+/g, ' ')}\n`)
    .join('');
  const signedHeaders = names.join(';');
  const canonicalRequest = [
    request.method,
    request.path,
    request.query ?? '',
    canonicalHeaders,
    signedHeaders,
    request.payloadHash,
  ].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    dateTime,
    scope,
    createHash('sha256').update(canonicalRequest).digest('hex'),
  ].join('\n');
  const signature = createHmac('sha256', signingKey(credentials.secretAccessKey, date, region, service))
    .update(stringToSign)
    .digest('hex');
  headers.authorization =
    `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, ` +
    `SignedHeaders=${signedHeaders}, Signature=${signature}`;
}
