/**
 * `nixcache path-info --store URL PATH...`: what a cache's narinfos say about store paths, like
 * `nix path-info --store URL`. `--json` prints Nix 2.8's array form; a path the cache lacks is
 * `{"path": …, "valid": false}` and makes the exit code 1.
 */
import { closeAll, openCliStore } from '../common.js';
import { EXIT, writeJson, writeLine } from '../context.js';
import { narInfoJson, type PathInfoJson } from '../json.js';
import { resolveStorePaths } from '../paths.js';
import { formatBytes } from '../progress.js';
import type { Command } from '../run.js';

const pathInfo: Command = {
  spec: {
    name: 'path-info',
    summary: 'show what a binary cache knows about store paths',
    usage: ['--store URL [--json] [--sigs] PATH...'],
    details: [
      '--json prints an array like `nix path-info --json` (Nix 2.8): [{"path","valid":true,"narHash","narSize","references","deriver","signatures","ca","url","compression","downloadHash","downloadSize"}], with {"path","valid":false} for paths the cache does not have. Exit 1 when any path is missing.',
    ],
    options: {
      store: { type: 'string', value: 'URL', help: 'the cache to ask (required)' },
      sigs: { type: 'boolean', help: 'show signatures' },
      json: { type: 'boolean', help: 'print JSON' },
    },
    positionals: { min: 1, name: 'PATH' },
    examples: [
      'nixcache path-info --store https://cache.nixos.org /nix/store/…-hello-2.12',
      "nixcache path-info --store 's3://nix-cache?endpoint=s3.homelab.local' --json /nix/store/…-app | jq '.[0].references'",
    ],
  },
  async run(args, ctx) {
    const store = await openCliStore(args.required('store'), ctx, 'store', 'path-info');
    try {
      const paths = await resolveStorePaths(args.positionals, store.storeDir, 'path-info');
      const rows: (PathInfoJson | { path: string; valid: false })[] = [];
      for (const path of paths) {
        const info = await store.getNarInfo(path, { signal: ctx.signal });
        rows.push(info ? narInfoJson(info) : { path, valid: false });
      }
      if (args.flag('json')) await writeJson(ctx.stdout, rows);
      else {
        const width = Math.max(...rows.map((r) => r.path.length));
        const lines = rows.map((r) => {
          if (!r.valid) return `${r.path.padEnd(width)}  not in the cache`;
          const sigs = args.flag('sigs') ? `  ${r.signatures.join(' ')}` : '';
          return `${r.path.padEnd(width)}  ${formatBytes(r.narSize).padStart(10)}${sigs}`;
        });
        await writeLine(ctx.stdout, lines.join('\n'));
      }
      return rows.every((r) => r.valid) ? EXIT.ok : EXIT.problems;
    } finally {
      await closeAll(store);
    }
  },
};

export const commands: Readonly<Record<string, Command>> = { 'path-info': pathInfo };
