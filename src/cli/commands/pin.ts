/**
 * `nixcache pin add|list|rm --store URL`: named gc roots stored in the cache itself
 * (`pins/<name>.json`), so every machine that pushes sees them. `pin add NAME PATH...` makes the
 * paths the pin's newest revision; a pin keeps its last `--keep-revisions` revisions (default 5,
 * or the pin's current setting). `push --pin NAME` does the same for the pushed paths.
 */
import { addPinRevision, listPins, removePin } from '../../cache/pins.js';
import { closeAll, openCliStore } from '../common.js';
import { EXIT, writeJson, writeLine } from '../context.js';
import { resolveStorePaths } from '../paths.js';
import type { Command } from '../run.js';

const storeOption = { type: 'string', value: 'URL', help: 'the cache (required)' } as const;

const add: Command = {
  spec: {
    name: 'pin add',
    summary: 'make store paths the newest revision of a pin (gc keeps their closures)',
    usage: ['--store URL [--keep-revisions K] [--json] NAME PATH...'],
    details: [
      'The paths must already be in the cache. Two machines pinning the same name at once both keep their revision (conditional writes, retried). --json prints the pin: {"name","keepRevisions","revisions":[{"time","paths"}]} (newest first).',
    ],
    options: {
      store: storeOption,
      'keep-revisions': {
        type: 'string',
        value: 'K',
        help: 'revisions the pin keeps (default 5, or its current setting)',
      },
      json: { type: 'boolean', help: 'print the pin as JSON' },
    },
    positionals: { min: 2, name: 'NAME PATH...' },
    examples: [
      "nixcache pin add --store 's3://nix-cache?endpoint=s3.homelab.local' web-prod ./result",
      'nixcache pin add --store file:///srv/cache --keep-revisions 3 desktop /nix/store/…-nixos-system',
    ],
  },
  async run(args, ctx) {
    const url = args.required('store');
    const keepRevisions = args.integer('keep-revisions', 1, 10_000);
    const [name, ...rest] = args.positionals;
    const store = await openCliStore(url, ctx, 'store', 'pin add');
    try {
      const paths = await resolveStorePaths(rest, store.storeDir, 'pin add');
      const pin = await addPinRevision(store, name!, paths, {
        ...(keepRevisions !== undefined && { keepRevisions }),
        signal: ctx.signal,
      });
      if (args.flag('json')) await writeJson(ctx.stdout, pin);
      else
        await writeLine(
          ctx.stdout,
          `pinned ${paths.length} paths as ${pin.name} in ${store.location} (${pin.revisions.length} of at most ${pin.keepRevisions} revisions kept)`,
        );
      return EXIT.ok;
    } finally {
      await closeAll(store);
    }
  },
};

const list: Command = {
  spec: {
    name: 'pin list',
    summary: 'list the pins of a cache and their revisions',
    usage: ['--store URL [--json]'],
    details: [
      '--json prints [{"name","keepRevisions","revisions":[{"time","paths"}]}] (revisions newest first).',
    ],
    options: { store: storeOption, json: { type: 'boolean', help: 'print the pins as JSON' } },
    positionals: { max: 0 },
    examples: ['nixcache pin list --store file:///srv/cache'],
  },
  async run(args, ctx) {
    const store = await openCliStore(args.required('store'), ctx, 'store', 'pin list');
    try {
      const pins = await listPins(store, { signal: ctx.signal });
      if (args.flag('json')) {
        await writeJson(ctx.stdout, pins);
        return EXIT.ok;
      }
      const lines: string[] = [];
      for (const pin of pins) {
        lines.push(`${pin.name} (keeps ${pin.keepRevisions} revisions)`);
        for (const rev of pin.revisions) lines.push(`  ${rev.time}  ${rev.paths.join(' ')}`);
      }
      if (pins.length === 0) lines.push(`no pins in ${store.location}`);
      await writeLine(ctx.stdout, lines.join('\n'));
      return EXIT.ok;
    } finally {
      await closeAll(store);
    }
  },
};

const rm: Command = {
  spec: {
    name: 'pin rm',
    summary: 'remove pins (the next gc may delete what only they kept)',
    usage: ['--store URL NAME...'],
    details: ['Exit 1 when a pin does not exist.'],
    options: { store: storeOption },
    positionals: { min: 1, name: 'NAME' },
    examples: ['nixcache pin rm --store file:///srv/cache old-branch'],
  },
  async run(args, ctx) {
    const store = await openCliStore(args.required('store'), ctx, 'store', 'pin rm');
    try {
      let missing = 0;
      for (const name of args.positionals) {
        if (await removePin(store, name, { signal: ctx.signal }))
          await writeLine(ctx.stdout, `removed pin ${name}`);
        else {
          missing++;
          ctx.stderr.write(`nixcache: pin rm: no pin named ${name} in ${store.location}\n`);
        }
      }
      return missing ? EXIT.problems : EXIT.ok;
    } finally {
      await closeAll(store);
    }
  },
};

export const commands: Readonly<Record<string, Command>> = { 'pin add': add, 'pin list': list, 'pin rm': rm };
