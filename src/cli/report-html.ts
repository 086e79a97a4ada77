/**
 * The HTML page of `nixcache report`: one self-contained file (no network, no external script or
 * style, a Content-Security-Policy that forbids both), with every number in tables rendered here and
 * the pictures (horizontal SVG bar charts) drawn by the page's own script from the same data,
 * embedded as JSON. Everything that came from the cache (paths, key names) is escaped: a hostile
 * narinfo cannot inject markup or script.
 */
import { createHash } from 'node:crypto';
import type { CacheReport } from '../cache/report.js';
import { formatBytes } from './progress.js';

const HTML_ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes text for HTML content and attribute values; control characters become U+FFFD. */
export function escapeHtml(text: string): string {
  return text
    .replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!)
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/g, '\ufffd');
}

/** JSON that is safe inside a <script> element (no `</script>`, no `<!--`). */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

const n = (x: number) => x.toLocaleString('en-US');

function table(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  numeric: readonly boolean[],
) {
  const head = headers.map((h, i) => `<th${numeric[i] ? ' class="num"' : ''}>${escapeHtml(h)}</th>`).join('');
  const body = rows
    .map((r) => `<tr>${r.map((c, i) => `<td${numeric[i] ? ' class="num"' : ''}>${c}</td>`).join('')}</tr>`)
    .join('\n');
  return `<table><thead><tr>${head}</tr></thead><tbody>\n${body || `<tr><td colspan="${headers.length}">none</td></tr>`}\n</tbody></table>`;
}

/** The page's own script: draws each chart from the embedded data into its <figure>. */
const SCRIPT = `
(function () {
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var NS = 'http://www.w3.org/2000/svg';
  function bytes(x) {
    var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'], i = 0;
    while (x >= 1024 && i < u.length - 1) { x /= 1024; i++; }
    return (i ? x.toFixed(1) : String(x)) + ' ' + u[i];
  }
  function el(name, attrs, text) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function bars(id, items, label, value, format) {
    var host = document.getElementById(id);
    if (!host) return;
    var width = 640, row = 22, left = 230, right = 110;
    var max = 0;
    items.forEach(function (it) { max = Math.max(max, value(it)); });
    var svg = el('svg', { width: width, height: Math.max(row, items.length * row), role: 'img',
      viewBox: '0 0 ' + width + ' ' + Math.max(row, items.length * row) });
    items.forEach(function (it, i) {
      var v = value(it), w = max > 0 ? Math.max(1, (v / max) * (width - left - right)) : 0;
      var y = i * row;
      var name = label(it);
      var text = el('text', { x: left - 6, y: y + 15, 'text-anchor': 'end', class: 'label' },
        name.length > 34 ? name.slice(0, 33) + '\\u2026' : name);
      text.appendChild(el('title', {}, name));
      svg.appendChild(text);
      svg.appendChild(el('rect', { x: left, y: y + 3, width: w, height: row - 6, class: 'bar' }));
      svg.appendChild(el('text', { x: left + w + 6, y: y + 15, class: 'value' }, format(v)));
    });
    host.insertBefore(svg, host.firstChild);
    host.setAttribute('data-drawn', String(items.length));
  }
  bars('chart-compression', data.byCompression, function (c) { return c.method; },
    function (c) { return c.fileBytes; }, bytes);
  bars('chart-closures', data.largestClosures, function (c) { return c.path.replace(/^.*?\\/[0-9a-z]{32}-/, ''); },
    function (c) { return c.closureBytes; }, bytes);
  bars('chart-age', data.ageHistogram, function (a) { return a.bucket; },
    function (a) { return a.bytes; }, bytes);
  if (data.gc) bars('chart-gc', data.gc.deleted, function (d) { return d.kind; },
    function (d) { return d.bytes; }, bytes);
})();
`;

const STYLE = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 980px; color: #1d2127; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: 0.2rem; } h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #d7dce2; }
.meta { color: #5b6470; } .cards { display: flex; flex-wrap: wrap; gap: 0.8rem; margin: 1rem 0; }
.card { border: 1px solid #d7dce2; border-radius: 6px; padding: 0.6rem 0.9rem; min-width: 9rem; }
.card b { display: block; font-size: 1.3rem; } table { border-collapse: collapse; margin: 0.6rem 0; }
th, td { padding: 0.2rem 0.7rem; border-bottom: 1px solid #eceff2; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; } code { font-size: 12px; word-break: break-all; }
figure { margin: 0.5rem 0; } .bar { fill: #4a78b5; } .label, .value { font-size: 12px; fill: #1d2127; }
.bad { color: #a4271c; } .ok { color: #2b7a3d; }
`;

/**
 * Renders a cache report as one self-contained HTML page.
 *
 * @example await writeFile('report.html', renderReportHtml(await cacheReport(store, options)))
 */
export function renderReportHtml(report: CacheReport): string {
  const t = report.totals;
  const cards = [
    ['narinfos', n(t.narinfos)],
    ['NAR files', n(t.narFiles)],
    ['stored NAR bytes', formatBytes(t.fileBytes)],
    ['unpacked NAR bytes', formatBytes(t.narBytes)],
    ['closure holes', n(report.closureHoles.count)],
    ...(report.unsigned ? [[`not signed by ${report.unsigned.key}`, n(report.unsigned.count)]] : []),
    ...(report.gc
      ? [['gc would delete', formatBytes(report.gc.deleted.reduce((s, d) => s + d.bytes, 0))]]
      : []),
  ]
    .map(
      ([k, v]) =>
        `<div class="card" data-total="${escapeHtml(k!)}"><b>${escapeHtml(v!)}</b>${escapeHtml(k!)}</div>`,
    )
    .join('');
  const compression = table(
    ['compression', 'narinfos', 'stored bytes', 'unpacked bytes'],
    report.byCompression.map((c) => [
      escapeHtml(c.method),
      n(c.narinfos),
      escapeHtml(formatBytes(c.fileBytes)),
      escapeHtml(formatBytes(c.narBytes)),
    ]),
    [false, true, true, true],
  );
  const closures = table(
    ['store path', 'paths in closure', 'closure size (NarSize)'],
    report.largestClosures.map((c) => [
      `<code>${escapeHtml(c.path)}</code>`,
      n(c.closurePaths),
      escapeHtml(formatBytes(c.closureBytes)),
    ]),
    [false, true, true],
  );
  const ages = table(
    ['uploaded', 'objects', 'bytes'],
    report.ageHistogram.map((a) => [escapeHtml(a.bucket), n(a.objects), escapeHtml(formatBytes(a.bytes))]),
    [false, true, true],
  );
  const holes = table(
    ['narinfo', 'missing reference'],
    report.closureHoles.examples.map((h) => [
      `<code>${escapeHtml(h.path)}</code>`,
      `<code>${escapeHtml(h.missing)}</code>`,
    ]),
    [false, false],
  );
  const unsigned = report.unsigned
    ? `<h2>Not signed by ${escapeHtml(report.unsigned.key)}</h2>
<p>${n(report.unsigned.count)} of ${n(t.narinfos)} narinfos carry no valid signature by this key${
        report.unsigned.count > report.unsigned.examples.length
          ? ` (the first ${report.unsigned.examples.length} are listed)`
          : ''
      }.</p>
${table(
  ['store path'],
  report.unsigned.examples.map((p) => [`<code>${escapeHtml(p)}</code>`]),
  [false],
)}`
    : '';
  const gc = report.gc
    ? `<h2>What <code>gc --dry-run</code> would delete</h2>
<p class="meta">With ${escapeHtml(report.gc.options)}.</p>
<figure id="chart-gc"></figure>
${table(
  ['kind', 'objects deleted', 'bytes deleted', 'objects kept', 'bytes kept'],
  report.gc.deleted.map((d) => {
    const kept = report.gc!.kept.find((k) => k.kind === d.kind);
    return [
      escapeHtml(d.kind),
      n(d.objects),
      escapeHtml(formatBytes(d.bytes)),
      n(kept?.objects ?? 0),
      escapeHtml(formatBytes(kept?.bytes ?? 0)),
    ];
  }),
  [false, true, true, true, true],
)}`
    : '';
  const script = SCRIPT;
  const scriptHash = createHash('sha256').update(script).digest('base64');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-${scriptHash}'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>nixcache report: ${escapeHtml(report.store)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>Binary cache report</h1>
<p class="meta"><code>${escapeHtml(report.store)}</code> · made ${escapeHtml(report.generatedAt)} by nixcache</p>
<div class="cards">${cards}</div>
<h2>Size by compression</h2>
<figure id="chart-compression"></figure>
${compression}
<h2>Largest closures</h2>
<p class="meta">Top-level paths (no narinfo in the cache refers to them), by the NarSize of their closure in the cache.</p>
<figure id="chart-closures"></figure>
${closures}
<h2>Upload age</h2>
<figure id="chart-age"></figure>
${ages}
<h2>Closure holes</h2>
<p class="${report.closureHoles.count ? 'bad' : 'ok'}">${
    report.closureHoles.count
      ? `${n(report.closureHoles.count)} ${report.closureHoles.count === 1 ? 'reference names a path' : 'references name paths'} the cache does not have: Nix cannot substitute the closures that contain ${report.closureHoles.count === 1 ? 'it' : 'them'}.`
      : 'Every reference of every narinfo is in the cache.'
  }</p>
${report.closureHoles.count ? holes : ''}
${unsigned}
${gc}
<script type="application/json" id="report-data">${scriptJson(report)}</script>
<script>${script}</script>
</body>
</html>
`;
}
