/**
 * Reads one ListObjectsV2 answer (`<ListBucketResult>`) for a direct listing (`s3-direct.ts`):
 * the object keys (and when asked, each one's Size and LastModified), whether more pages follow,
 * and the token for the next one. Only what S3 sends is understood: elements, text and the five
 * named entities plus character references. Anything else (CDATA, comments, a doctype, an
 * unknown entity, a page without `IsTruncated`, a truncated page without a token, a size that is
 * not a decimal count or a date that is not RFC 3339) gives undefined, and the caller sends the
 * request again through the SDK, whose parser decides. Text never holds a raw `<` in well-formed
 * XML, so an element's text ends at the next `<`.
 */

/** An object of a listing page with its details. */
export interface ListPageObject {
  readonly key: string;
  readonly size: number;
  /** Milliseconds since the epoch. */
  readonly lastModified: number;
}

/** One page of a listing. */
export interface ListPage {
  /** The keys of `<Contents>`, in the server's order. */
  readonly keys: string[];
  /** The same objects with their Size and LastModified, when asked for (`details`). */
  readonly objects?: ListPageObject[];
  readonly truncated: boolean;
  /** `<NextContinuationToken>`, present when truncated. */
  readonly nextToken?: string;
}

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** Text with its entities replaced; undefined for an entity XML does not define. */
export function decodeXmlText(text: string): string | undefined {
  if (!text.includes('&')) return text;
  let bad = false;
  const out = text.replace(/&([^;&]*);?/g, (whole, name: string) => {
    if (!whole.endsWith(';')) bad = true;
    else if (name in NAMED) return NAMED[name]!;
    else {
      const m = /^#(?:x([0-9a-fA-F]{1,6})|([0-9]{1,7}))$/.exec(name);
      const cp = m ? (m[1] !== undefined ? Number.parseInt(m[1], 16) : Number(m[2])) : Number.NaN;
      if (cp > 0 && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff)) return String.fromCodePoint(cp);
      bad = true;
    }
    return '';
  });
  return bad ? undefined : out;
}

/** The text of the first `<name>` element in `xml`, decoded; undefined when none or undecodable. */
function firstText(xml: string, name: string): string | undefined {
  const open = `<${name}>`;
  const start = xml.indexOf(open);
  if (start < 0) return undefined;
  const from = start + open.length;
  const end = xml.indexOf('<', from);
  if (end < 0 || !xml.startsWith(`</${name}>`, end)) return undefined;
  return decodeXmlText(xml.slice(from, end));
}

/** RFC 3339 as S3 writes LastModified (`2026-12-03T10:00:00.000Z`), any offset, up to 9 fraction digits. */
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

/** Milliseconds since the epoch of an RFC 3339 date-time; undefined for anything else (a 31 February too). */
export function parseRfc3339(text: string): number | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, sec] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  // Digits past the millisecond are dropped, as the SDK's date parser drops them (S3 writes three).
  const ms = Number((m[7] ?? '').padEnd(3, '0').slice(0, 3));
  // Not Date.UTC, which reads a year below 100 as 19xx.
  const check = new Date(0);
  check.setUTCFullYear(y, mo - 1, d);
  check.setUTCHours(h, mi, sec, ms);
  const local = check.getTime();
  if (
    check.getUTCFullYear() !== y ||
    check.getUTCMonth() !== mo - 1 ||
    check.getUTCDate() !== d ||
    h > 23 ||
    mi > 59 ||
    sec > 59
  )
    return undefined;
  const zone = m[8]!;
  if (zone === 'Z') return local;
  const oh = Number(zone.slice(1, 3));
  const om = Number(zone.slice(4, 6));
  if (oh > 23 || om > 59) return undefined;
  return local - (zone[0] === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
}

/**
 * The page in `xml`, or undefined when it is not a ListObjectsV2 answer this reader is sure of.
 * With `details`, every object must also have a Size (a decimal count) and a LastModified (RFC 3339).
 *
 * @example parseListPage('<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>')
 */
export function parseListPage(xml: string, details = false): ListPage | undefined {
  if (!/<ListBucketResult[\s>]/.test(xml) || !xml.includes('</ListBucketResult>')) return undefined;
  if (/<!|&(?!(?:amp|lt|gt|quot|apos|#x?[0-9a-fA-F]+);)/.test(xml)) return undefined;
  const truncatedText = firstText(xml, 'IsTruncated');
  if (truncatedText !== 'true' && truncatedText !== 'false') return undefined;
  const truncated = truncatedText === 'true';
  const keys: string[] = [];
  const objects: ListPageObject[] | undefined = details ? [] : undefined;
  let at = 0;
  for (;;) {
    const start = xml.indexOf('<Contents>', at);
    if (start < 0) break;
    const end = xml.indexOf('</Contents>', start);
    if (end < 0) return undefined;
    const item = xml.slice(start, end);
    const key = firstText(item, 'Key');
    if (key === undefined) return undefined;
    keys.push(key);
    if (objects) {
      const size = firstText(item, 'Size');
      const modified = firstText(item, 'LastModified');
      const lastModified = modified === undefined ? undefined : parseRfc3339(modified);
      if (size === undefined || !/^\d{1,15}$/.test(size) || lastModified === undefined) return undefined;
      objects.push({ key, size: Number(size), lastModified });
    }
    at = end + '</Contents>'.length;
  }
  const nextToken = truncated ? firstText(xml, 'NextContinuationToken') : undefined;
  if (truncated && !nextToken) return undefined;
  return { keys, ...(objects && { objects }), truncated, ...(nextToken && { nextToken }) };
}
