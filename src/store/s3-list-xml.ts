/**
 * Reads one ListObjectsV2 answer (`<ListBucketResult>`) for a direct listing (`s3-direct.ts`):
 * the object keys, whether more pages follow, and the token for the next one. Only what S3
 * sends is understood: elements, text and the five named entities plus character references.
 * Anything else (CDATA, comments, a doctype, an unknown entity, a page without `IsTruncated`, a
 * truncated page without a token) gives undefined, and the caller sends the request again
 * through the SDK, whose parser decides. Text never holds a raw `<` in well-formed XML, so an
 * element's text ends at the next `<`.
 */

/** One page of a listing. */
export interface ListPage {
  /** The keys of `<Contents>`, in the server's order. */
  readonly keys: string[];
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

/**
 * The page in `xml`, or undefined when it is not a ListObjectsV2 answer this reader is sure of.
 *
 * @example parseListPage('<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>')
 */
export function parseListPage(xml: string): ListPage | undefined {
  if (!/<ListBucketResult[\s>]/.test(xml) || !xml.includes('</ListBucketResult>')) return undefined;
  if (/<!|&(?!(?:amp|lt|gt|quot|apos|#x?[0-9a-fA-F]+);)/.test(xml)) return undefined;
  const truncatedText = firstText(xml, 'IsTruncated');
  if (truncatedText !== 'true' && truncatedText !== 'false') return undefined;
  const truncated = truncatedText === 'true';
  const keys: string[] = [];
  let at = 0;
  for (;;) {
    const start = xml.indexOf('<Contents>', at);
    if (start < 0) break;
    const end = xml.indexOf('</Contents>', start);
    if (end < 0) return undefined;
    const key = firstText(xml.slice(start, end), 'Key');
    if (key === undefined) return undefined;
    keys.push(key);
    at = end + '</Contents>'.length;
  }
  if (!truncated) return { keys, truncated };
  const nextToken = firstText(xml, 'NextContinuationToken');
  if (!nextToken) return undefined;
  return { keys, truncated, nextToken };
}
