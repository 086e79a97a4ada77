/**
 * What the CLI prints is safe to print: control characters from untrusted data (a narinfo's
 * `Sig:` line, a NAR's file names, a server's error text) are escaped before they reach a
 * terminal, and secrets (secret keys, URL passwords, AWS secret keys) are redacted from every
 * message on stderr. Every output path of the CLI goes through `escapeTerminal` (stdout, in
 * `write`) or `safeMessage` (stderr: errors, warnings, progress log lines).
 */
import { redactUrlCredentials } from '../store/url.js';

/**
 * C0 controls but tab and newline, DEL, C1 controls (U+0080–U+009F: CSI and OSC on some
 * terminals), and the invisible or reordering format characters (bidi overrides and isolates,
 * zero-width spaces, line and paragraph separators, BOM) that can disguise text.
 */
const UNSAFE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

/**
 * Escapes the characters that could move the cursor, recolour or retitle the terminal, or hide
 * text, as `\uXXXX` (valid inside JSON strings too, so JSON output stays JSON). Newlines and
 * tabs are kept unless `singleLine`.
 *
 * @example escapeTerminal('sig\x1b]0;pwned\x07') // 'sig\\u001b]0;pwned\\u0007'
 */
export function escapeTerminal(text: string, singleLine = false): string {
  const escaped = text.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return singleLine ? escaped.replace(/[\t\n]/g, (c) => (c === '\n' ? '\\n' : '\\t')) : escaped;
}

/** Exact secret strings known to this process (keys it loaded, passwords it was given). */
const known = new Set<string>();

/**
 * Remembers a secret so that `redactSecrets` removes it wherever it appears. Short strings
 * (under 6 characters) are ignored: redacting them would garble ordinary words.
 */
export function registerSecret(secret: string | undefined): void {
  if (secret === undefined) return;
  const s = secret.trim();
  if (s.length >= 6) known.add(s);
}

/** A Nix key `<name>:<base64>` whose base64 is long enough to be a secret key (64 bytes). */
const SECRET_KEY_TEXT = /([^\s:'"`,;=()[\]{}<>]+):[A-Za-z0-9+/]{80,}={0,2}/g;

/** A long base64-looking run: key material, a seed, an AWS secret access key. */
const BASE64_RUN = /[A-Za-z0-9+/]{32,}={0,2}/g;

/**
 * Whether a base64-looking run is more likely a secret than a path or a hash: some stretch of it
 * between slashes is at least 32 characters of random-looking base64, with upper and lower case
 * letters mixed (each at least a fifth) and a digit or `+`. Store path hashes are lower-case
 * nix32, hex digests lower case, and path components CamelCase words at most.
 */
function looksSecret(run: string): boolean {
  return run.split('/').some((seg) => {
    if (seg.length < 32) return false;
    const upper = seg.replace(/[^A-Z]/g, '').length;
    const lower = seg.replace(/[^a-z]/g, '').length;
    return upper >= seg.length / 5 && lower >= seg.length / 5 && /[0-9+]/.test(seg);
  });
}

/**
 * Removes secrets from a message: every secret registered with `registerSecret`, the password
 * and user of `scheme://user:password@host` URLs, the material of anything shaped like a Nix
 * secret key (the name stays: it helps), and long base64 runs that look like key material. File
 * paths and store paths are kept.
 *
 * @example redactSecrets("bad key cache-1:AAAA…(88 chars)") // 'bad key cache-1:[redacted]'
 */
export function redactSecrets(text: string): string {
  let out = text;
  for (const s of known) if (out.includes(s)) out = out.split(s).join('[redacted]');
  out = redactUrlCredentials(out);
  out = out.replace(SECRET_KEY_TEXT, (_m, name: string) => `${name}:[redacted]`);
  return out.replace(BASE64_RUN, (m) => (looksSecret(m) ? '[redacted]' : m));
}

/** A message for stderr: secrets redacted, control characters escaped, on one line. */
export function safeMessage(text: string): string {
  return escapeTerminal(redactSecrets(text.replace(/\s*\n\s*/g, ' ').trim()), true);
}

/** A multi-line diagnostic (a `--debug` stack trace): secrets redacted, controls escaped. */
export function safeDiagnostic(text: string): string {
  return escapeTerminal(redactSecrets(text));
}

/** Secret key text `<name>:<base64 of ≥ 80 characters>` (also with `+` turned into spaces). */
export function looksLikeSecretKeyText(text: string): boolean {
  return /^[^\s:/]+:[A-Za-z0-9+/ ]{80,}={0,2}$/.test(text.trim());
}

/**
 * Registers the secrets a command line carries, before anything runs: secret keys given as
 * words (where a file name or a public key belongs), the credentials of URLs
 * (`https://user:password@host`, `endpoint=http://user:password@host`), and the AWS secrets of
 * the environment.
 */
export function registerCommandLineSecrets(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): void {
  for (const arg of argv) {
    for (const word of [arg, ...arg.split(/[?&=\s]/)]) {
      if (looksLikeSecretKeyText(word)) {
        registerSecret(word);
        registerSecret(word.slice(word.indexOf(':') + 1));
      }
    }
    for (const m of arg.matchAll(/\/\/([^/?#\s@]*)@/g)) {
      const userinfo = m[1]!;
      registerSecret(userinfo);
      const colon = userinfo.indexOf(':');
      if (colon >= 0) registerSecret(userinfo.slice(colon + 1));
      for (const part of [userinfo, userinfo.slice(colon + 1)]) {
        try {
          registerSecret(decodeURIComponent(part));
        } catch {
          // not %-encoded
        }
      }
    }
  }
  registerSecret(env.AWS_SECRET_ACCESS_KEY);
  registerSecret(env.AWS_SESSION_TOKEN);
}

/** A hint for errors whose usual cause is not what they say. */
export function errorHint(message: string): string {
  // OpenSSL's answer when https:// meets a plain-HTTP server (endpoint=host:port means https).
  if (/wrong version number|WRONG_VERSION_NUMBER|packet length too long/i.test(message))
    return ' (the server may speak plain HTTP: if so, give the endpoint as http://HOST:PORT)';
  return '';
}
