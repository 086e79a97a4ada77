/**
 * `nixcache narinfo show|fingerprint|verify FILE...`: parse `.narinfo` files (`-` for stdin),
 * print them canonically or as JSON, print the fingerprint their signatures cover, and check
 * their signatures against trusted public keys (exit 1 when any file is not trusted).
 */
import { narInfoFingerprint } from '../../narinfo/fingerprint.js';
import { formatNarInfo } from '../../narinfo/format.js';
import { parseNarInfo } from '../../narinfo/parse.js';
import type { NarInfo } from '../../narinfo/types.js';
import { verifyNarInfo } from '../../signing/verify.js';
import { parseTrustedKeys, readInputText } from '../common.js';
import { type CliContext, EXIT, UsageError, write, writeJson, writeLine } from '../context.js';
import { narInfoJson } from '../json.js';
import type { Command } from '../run.js';

async function load(file: string, ctx: CliContext): Promise<NarInfo> {
  const text = await readInputText(file, ctx);
  return parseNarInfo(text, { source: file === '-' ? 'stdin' : file });
}

const JSON_OPTION = { json: { type: 'boolean', help: 'print JSON (shape in README.md)' } } as const;

const show: Command = {
  spec: {
    name: 'narinfo show',
    summary: 'parse narinfo files and print them',
    usage: ['[--json] FILE...'],
    details: [
      'Prints each narinfo as Nix writes it (files that parse are printed unchanged); with --json, an array in the form of `nix path-info --json`.',
    ],
    options: JSON_OPTION,
    positionals: { min: 1, name: 'FILE' },
    examples: [
      'nixcache narinfo show 1abc….narinfo',
      'curl -s https://cache.nixos.org/1abc….narinfo | nixcache narinfo show --json -',
    ],
  },
  async run(args, ctx) {
    const infos: NarInfo[] = [];
    for (const f of args.positionals) infos.push(await load(f, ctx));
    if (args.flag('json')) await writeJson(ctx.stdout, infos.map(narInfoJson));
    else await write(ctx.stdout, infos.map(formatNarInfo).join('\n'));
    return EXIT.ok;
  },
};

const fingerprint: Command = {
  spec: {
    name: 'narinfo fingerprint',
    summary: 'print the fingerprint that narinfo signatures sign',
    usage: ['[--json] FILE...'],
    details: ['`1;<store path>;<NarHash in nix32>;<NarSize>;<references>`, one line per file.'],
    options: JSON_OPTION,
    positionals: { min: 1, name: 'FILE' },
    examples: ['nixcache narinfo fingerprint 1abc….narinfo'],
  },
  async run(args, ctx) {
    const rows: { file: string; path: string; fingerprint: string }[] = [];
    for (const f of args.positionals) {
      const info = await load(f, ctx);
      rows.push({ file: f, path: info.storePath, fingerprint: narInfoFingerprint(info) });
    }
    if (args.flag('json')) await writeJson(ctx.stdout, rows);
    else await writeLine(ctx.stdout, rows.map((r) => r.fingerprint).join('\n'));
    return EXIT.ok;
  },
};

const verify: Command = {
  spec: {
    name: 'narinfo verify',
    summary: 'check narinfo signatures against trusted public keys',
    usage: ['--trusted-public-key KEY... [--json] FILE...'],
    details: [
      'A narinfo is trusted when a trusted key signed it validly, or when its CA field recomputes to its store path (as Nix decides). Exit 1 when any file is not trusted.',
    ],
    options: {
      'trusted-public-key': {
        type: 'string',
        short: 'k',
        multiple: true,
        value: 'KEY',
        help: 'a trusted public key NAME:BASE64 (required; several may be separated by spaces)',
        aliases: ['trusted-public-keys'],
      },
      ...JSON_OPTION,
    },
    positionals: { min: 1, name: 'FILE' },
    examples: [
      'nixcache narinfo verify -k cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY= 1abc….narinfo',
    ],
  },
  async run(args, ctx) {
    const keys = parseTrustedKeys(args.strings('trusted-public-key'), 'narinfo verify');
    if (keys.length === 0) throw new UsageError('give at least one --trusted-public-key', 'narinfo verify');
    const rows = [];
    for (const f of args.positionals) {
      const info = await load(f, ctx);
      const v = verifyNarInfo(info, keys);
      rows.push({
        file: f,
        path: info.storePath,
        trusted: v.trusted,
        signedBy: v.signedBy,
        invalidSignatures: v.invalidSignatures.map((s) => ({ keyName: s.keyName, reason: s.reason })),
        unknownSignatures: v.unknownSignatures.map((s) => s.slice(0, s.indexOf(':'))),
        contentAddressed: v.contentAddressed,
        ...(v.contentAddressNeedsContents && { contentAddressNeedsContents: true }),
        ...(v.contentAddressProblem !== undefined && { contentAddressProblem: v.contentAddressProblem }),
      });
    }
    if (args.flag('json')) await writeJson(ctx.stdout, rows);
    else {
      for (const r of rows) {
        const why = r.trusted
          ? r.signedBy.length
            ? `signed by ${r.signedBy.join(', ')}`
            : 'content-addressed'
          : [
              ...r.invalidSignatures.map((s) => `invalid signature by ${s.keyName}: ${s.reason}`),
              ...(r.unknownSignatures.length
                ? [`signed only by untrusted keys ${r.unknownSignatures.join(', ')}`]
                : []),
              ...(r.contentAddressNeedsContents
                ? ['its CA claim can only be checked against the NAR (use verify with contents)']
                : r.contentAddressProblem !== undefined && r.contentAddressProblem !== 'no CA claim'
                  ? [`CA claim: ${r.contentAddressProblem}`]
                  : []),
            ].join('; ') || 'no signature';
        await writeLine(ctx.stdout, `${r.file}: ${r.trusted ? 'trusted' : 'untrusted'} (${why})`);
      }
    }
    return rows.every((r) => r.trusted) ? EXIT.ok : EXIT.problems;
  },
};

export const commands: Readonly<Record<string, Command>> = {
  'narinfo show': show,
  'narinfo fingerprint': fingerprint,
  'narinfo verify': verify,
};
