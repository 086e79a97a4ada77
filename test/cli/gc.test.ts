/**
 * The gc, pin and repair commands as a user runs them (issue 12): `push --pin`, `pin add|list|rm`,
 * `gc --dry-run --json` listing exactly what `gc` then deletes, `repair` followed by a clean
 * `verify --all --closure`, the `init --expire-days` warning, and usage errors.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatPublicKey, formatSecretKey, generateSecretKey } from '../../src/signing/keys.js';
import { narInfoKey } from '../../src/store/layout.js';
import { parseStorePath } from '../../src/store-path/store-path.js';
import { addPath, ageFiles, DAY } from '../cache/gc-helpers.js';
import { s3ConfigFor, startS3rver } from '../helpers/s3rver.js';
import { fileStore } from '../reliability/helpers.js';
import { runCli } from './helpers.js';

let tmp: string;
let storeDir: string;
let keyFile: string;
let pub: string;
let lib: string;
let app1: string;
let app2: string;
let junk: string;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixcache-cli-gc-'));
  storeDir = join(tmp, 'store');
  mkdirSync(storeDir);
  const key = generateSecretKey('cli-gc-1');
  keyFile = join(tmp, 'key.secret');
  await writeFile(keyFile, formatSecretKey(key), { mode: 0o600 });
  pub = formatPublicKey(key.publicKey);
  lib = await addPath(storeDir, { name: 'cli-gc-lib' });
  app1 = await addPath(storeDir, { name: 'cli-gc-app-1', refs: [lib] });
  app2 = await addPath(storeDir, { name: 'cli-gc-app-2', refs: [lib] });
  junk = await addPath(storeDir, { name: 'cli-gc-junk' });
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const ok = (r: { code: number | null; stderr: string }) =>
  expect(r.stderr === '' ? r.code : r.stderr).toBe(0);

describe('nixcache pin, gc, repair', () => {
  it('push --pin, pin list/add/rm, gc --dry-run and gc', async () => {
    const dir = join(tmp, 'cache');
    const url = `file://${dir}?compression=zstd`;
    const pushed = await runCli([
      'push',
      '--to',
      url,
      '--store-dir',
      storeDir,
      '--secret-key-file',
      keyFile,
      '--pin',
      'app',
      '--keep-revisions',
      '2',
      '--json',
      app1,
    ]);
    ok(pushed);
    expect(JSON.parse(pushed.stdout).pin).toMatchObject({
      name: 'app',
      keepRevisions: 2,
      revisions: [{ paths: [app1] }],
    });
    ok(
      await runCli(['push', '--to', url, '--store-dir', storeDir, '--secret-key-file', keyFile, app2, junk]),
    );
    ok(await runCli(['pin', 'add', '--store', url, 'app', app2]));
    const listed = await runCli(['pin', 'list', '--store', url, '--json']);
    ok(listed);
    expect(JSON.parse(listed.stdout)).toMatchObject([
      { name: 'app', revisions: [{ paths: [app2] }, { paths: [app1] }] },
    ]);
    const human = await runCli(['pin', 'list', '--store', url]);
    expect(human.stdout).toContain('app (keeps 2 revisions)');
    ageFiles(dir, 3 * DAY);

    const dry = await runCli(['gc', '--store', url, '--dry-run', '--json']);
    ok(dry);
    const plan = JSON.parse(dry.stdout);
    expect(plan.dryRun).toBe(true);
    const junkHash = parseStorePath(junk).hash;
    expect(plan.objects.map((o: { key: string }) => o.key)).toContain(narInfoKey(junkHash));
    expect(plan.deleted.narinfo.objects).toBe(1);
    const real = await runCli(['gc', '--store', url, '--json']);
    ok(real);
    const done = JSON.parse(real.stdout);
    expect(done.deleted).toEqual(plan.deleted);
    expect(done.roots).toMatchObject({ pins: 1, pinRevisions: 2 });
    const again = await runCli(['gc', '--store', url]);
    ok(again);
    expect(again.stdout).toMatch(/^deleted 0 narinfos, 0 listings, 0 NARs/m);

    ok(await runCli(['pin', 'rm', '--store', url, 'app']));
    const gone = await runCli(['pin', 'rm', '--store', url, 'app']);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('no pin named app');
    const after = await runCli(['gc', '--store', url, '--json']);
    expect(JSON.parse(after.stdout).deleted.narinfo.objects).toBe(3);
  });

  it('repair, then verify --all --closure is clean', async () => {
    const dir = join(tmp, 'repair');
    const url = `file://${dir}?compression=zstd`;
    ok(await runCli(['push', '--to', url, '--store-dir', storeDir, '--secret-key-file', keyFile, app1]));
    const store = fileStore(dir);
    await store.backend.delete(narInfoKey(parseStorePath(lib).hash));
    const holes = await runCli([
      'verify',
      '--store',
      url,
      '-k',
      pub,
      '--all',
      '--no-contents',
      '--closure',
      '--json',
    ]);
    expect(holes.code).toBe(1);
    // NDJSON: the holes are on the summary line, the last one.
    expect(JSON.parse(holes.stdout.trimEnd().split('\n').at(-1)!).holes).toEqual([
      { path: app1, problem: 'missing-reference', detail: lib },
    ]);
    const dry = await runCli(['repair', '--store', url, '--store-dir', storeDir, '--dry-run']);
    ok(dry);
    expect(dry.stdout).toContain(`missing-reference  ${app1}: would be reuploaded`);
    const fixed = await runCli([
      'repair',
      '--store',
      url,
      '--store-dir',
      storeDir,
      '--secret-key-file',
      keyFile,
      '--json',
    ]);
    ok(fixed);
    expect(JSON.parse(fixed.stdout).reports).toEqual([
      { problem: 'missing-reference', action: 'reuploaded', path: app1, detail: `${lib} from ${storeDir}` },
    ]);
    const clean = await runCli(['verify', '--store', url, '-k', pub, '--all', '--closure']);
    ok(clean);
    expect(clean.stdout).toContain('closure holes: 0');
    await store.close();
  });

  it('on s3rver: push --pin, gc --dry-run, gc, repair', async () => {
    const s3 = await startS3rver({ buckets: ['cli-gc'] });
    try {
      const { url, env } = s3ConfigFor(s3.endpoint, 'cli-gc', 'cache');
      ok(
        await runCli(
          ['push', '--to', url, '--store-dir', storeDir, '--secret-key-file', keyFile, '--pin', 'app', app1],
          { env },
        ),
      );
      ok(
        await runCli(['push', '--to', url, '--store-dir', storeDir, '--secret-key-file', keyFile, junk], {
          env,
        }),
      );
      ageFiles(s3.dir, 3 * DAY);
      const dry = await runCli(['gc', '--store', url, '--dry-run'], { env });
      ok(dry);
      expect(dry.stdout).toContain(`would delete narinfo ${narInfoKey(parseStorePath(junk).hash)}`);
      const real = await runCli(['gc', '--store', url, '--json'], { env });
      ok(real);
      expect(JSON.parse(real.stdout).deleted.narinfo.objects).toBe(1);
      const repair = await runCli(['repair', '--store', url, '--no-store-dir'], { env });
      ok(repair);
      expect(repair.stdout).toContain('cannot list incomplete uploads');
      const clean = await runCli(['verify', '--store', url, '-k', pub, '--all', '--closure'], { env });
      ok(clean);
    } finally {
      await s3.stop();
    }
  });

  it('init --expire-days warns that expiry breaks closures and names gc', async () => {
    const r = await runCli(['init', '--store', `file://${join(tmp, 'init')}`, '--expire-days', '30']);
    expect(r.stderr).toMatch(/warning: --expire-days .*closure.*nixcache gc/);
  });

  it('has --help with usage, options and examples, and is listed in the main help', async () => {
    for (const c of ['gc', 'repair', 'pin add', 'pin list', 'pin rm']) {
      const r = await runCli([...c.split(' '), '--help']);
      expect(r.code, c).toBe(0);
      expect(r.stdout, c).toContain(`nixcache ${c} `);
      expect(r.stdout, c).toContain('Options:');
      expect(r.stdout, c).toMatch(/Examples:\n {2}\$ nixcache /);
    }
    const help = await runCli(['--help']);
    for (const c of ['pin add|list|rm', '\n  gc ', '\n  repair ']) expect(help.stdout).toContain(c);
  });

  it('usage errors and read-only stores', async () => {
    const bad = await runCli(['gc', '--store', `file://${tmp}/x`, '--grace', '3 days']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--grace expects a duration');
    const pinName = await runCli(['push', '--to', `file://${tmp}/x`, '--pin', '../etc', app1]);
    expect(pinName.code).toBe(2);
    const http = await runCli(['gc', '--store', 'http://127.0.0.1:9/cache']);
    expect(http.code).toBe(1);
    expect(http.stderr).toContain('gc needs to list and delete objects');
  });
});
