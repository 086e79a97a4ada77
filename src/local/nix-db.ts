/**
 * What the local Nix database knows about store paths (`/nix/var/nix/db/db.sqlite`, tables
 * ValidPaths and Refs): NarHash, NarSize, references, deriver, CA and signatures, read without the
 * `nix` binary through the lock-free SQLite reader in `sqlite.ts`. The database is only ever read:
 * no lock is taken (neither Nix's big-lock nor SQLite's), so a running nix-daemon is not disturbed;
 * a WAL restart during a read is detected and the read is done again.
 */
import { NixcacheError } from '../errors.js';
import { type NixHash, parseHash } from '../hash/hash.js';
import { SqliteFile, type SqlValue } from './sqlite.js';

/** Where Nix keeps its database. */
export const DEFAULT_NIX_DB = '/nix/var/nix/db/db.sqlite';

/** One registered store path, as the database records it. */
export interface LocalPathInfo {
  /** Full store path. */
  readonly path: string;
  readonly narHash: NixHash;
  readonly narSize?: number;
  /** Full store paths, sorted; includes the path itself when it refers to itself. */
  readonly references: readonly string[];
  /** Full store path of the derivation, when known. */
  readonly deriver?: string;
  readonly ca?: string;
  readonly sigs: readonly string[];
  /** Seconds since the epoch. */
  readonly registrationTime: number;
  /** Built locally (`ultimate` trust). */
  readonly ultimate: boolean;
}

const COLUMNS = ['id', 'path', 'hash', 'registrationTime', 'deriver', 'narSize', 'ultimate', 'sigs', 'ca'];
/**
 * How long a read keeps trying for a snapshot no checkpoint landed in. Each registration by a
 * running Nix checkpoints (when its connection closes), so while paths are being added a long read
 * is retried after a short pause until it fits between two of them.
 */
const RETRY_FOR_MS = 60_000;
const PAUSE_MS = [2, 5, 10, 20, 40];
const pauseCell = new Int32Array(new SharedArrayBuffer(4));

/** Sleeps without an event loop turn: the reads are synchronous. */
function pause(ms: number): void {
  Atomics.wait(pauseCell, 0, 0, ms);
}

interface Tables {
  readonly validPaths: number;
  readonly pathIndex: number;
  readonly refsIndex: number;
  /** True when `refsIndex` holds (referrer, reference, rowid); false for (referrer, rowid). */
  readonly refsIndexCovers: boolean;
  readonly refs: number;
}

/** A read-only view of a Nix database. */
export class LocalNixDb {
  readonly file: string;
  readonly #db: SqliteFile;
  #tables: Tables;

  private constructor(file: string, db: SqliteFile) {
    this.file = file;
    this.#db = db;
    this.#tables = this.#findTables();
  }

  /**
   * Opens the database read-only.
   *
   * @throws {NixcacheError} IO when it cannot be opened; BAD_DATABASE when it is not a Nix
   *   database this reader knows (ValidPaths and Refs as Nix 2.x writes them).
   * @example const db = LocalNixDb.open(); db.pathInfo('/nix/store/…-hello-2.12.1'); db.close();
   */
  static open(file: string = DEFAULT_NIX_DB): LocalNixDb {
    const sqlite = SqliteFile.open(file);
    try {
      return new LocalNixDb(file, sqlite);
    } catch (e) {
      sqlite.close();
      throw e;
    }
  }

  #findTables(): Tables {
    const db = this.#db;
    const validPaths = db.rootPage('ValidPaths', 'table');
    const refs = db.rootPage('Refs', 'table');
    const pathIndex = db.indexesOf('ValidPaths').find((i) => i.sql === '');
    const refsAuto = db.indexesOf('Refs').find((i) => i.sql === '');
    const referrer = db.indexesOf('Refs').find((i) => /\(\s*referrer\s*\)/i.test(i.sql));
    if (!pathIndex || !(refsAuto || referrer))
      throw new NixcacheError('BAD_DATABASE', `${this.file}: not a Nix database (indexes missing)`, {
        file: this.file,
      });
    return {
      validPaths,
      refs,
      pathIndex: db.rootPage(pathIndex.name, 'index'),
      refsIndex: db.rootPage((refsAuto ?? referrer)!.name, 'index'),
      refsIndexCovers: refsAuto !== undefined,
    };
  }

  /**
   * Runs `read` on a consistent snapshot, reading again (whether it returned or threw) when the
   * database changed under it: a checkpoint, or the WAL removed or restarted.
   */
  #consistent<T>(read: () => T): T {
    const deadline = performance.now() + RETRY_FOR_MS;
    for (let attempt = 1; ; attempt++) {
      let result: T | undefined;
      let failure: { error: unknown } | undefined;
      try {
        result = read();
      } catch (error) {
        failure = { error };
      }
      // A read torn by a change (a reference not found, a page that no longer fits) is read
      // again; an error on an unchanged snapshot is the answer.
      if (!this.#db.changed()) {
        if (failure) throw failure.error;
        return result as T;
      }
      if (performance.now() > deadline)
        throw new NixcacheError(
          'CONFLICT',
          `${this.file} kept changing while it was read (${attempt} attempts in ${RETRY_FOR_MS / 1000} s)`,
          { file: this.file },
        );
      pause(PAUSE_MS[Math.min(attempt - 1, PAUSE_MS.length - 1)]!);
      this.#db.refresh();
      this.#tables = this.#findTables();
    }
  }

  #row(id: number): SqlValue[] | undefined {
    const row = this.#db.get(this.#tables.validPaths, id);
    if (!row) return undefined;
    const values = [...row.values];
    values[0] = row.rowid;
    return values;
  }

  #idOf(path: string): number | undefined {
    for (const entry of this.#db.seek(this.#tables.pathIndex, path)) {
      const id = entry[entry.length - 1];
      if (typeof id === 'number') return id;
    }
    return undefined;
  }

  #referenceIds(id: number): number[] {
    const t = this.#tables;
    const ids: number[] = [];
    for (const entry of this.#db.seek(t.refsIndex, id)) {
      if (t.refsIndexCovers) ids.push(Number(entry[1]));
      else {
        const ref = this.#db.get(t.refs, Number(entry[entry.length - 1]));
        if (ref) ids.push(Number(ref.values[1]));
      }
    }
    return ids;
  }

  /**
   * A ValidPaths row as a record whose `references` are still empty, and the row ids of those
   * references (Refs), for the caller to resolve.
   */
  #decode(values: SqlValue[]): { info: LocalPathInfo & { references: string[] }; refIds: number[] } {
    const col = (name: string): SqlValue => values[COLUMNS.indexOf(name)] ?? null;
    const path = String(col('path'));
    let narHash: NixHash;
    try {
      narHash = parseHash(String(col('hash')));
    } catch (cause) {
      throw new NixcacheError(
        'BAD_DATABASE',
        `${this.file} (ValidPaths, ${path}): hash ${JSON.stringify(col('hash'))} does not parse`,
        {
          file: this.file,
          path,
          field: 'hash',
        },
        { cause },
      );
    }
    const text = (v: SqlValue) => (typeof v === 'string' && v !== '' ? v : undefined);
    const deriver = text(col('deriver'));
    const ca = text(col('ca'));
    const narSize = col('narSize');
    const info = {
      path,
      narHash,
      ...(typeof narSize === 'number' && narSize > 0 && { narSize }),
      references: [] as string[],
      ...(deriver !== undefined && { deriver }),
      ...(ca !== undefined && { ca }),
      sigs: (text(col('sigs')) ?? '').split(' ').filter((s) => s !== ''),
      registrationTime: Number(col('registrationTime') ?? 0),
      ultimate: col('ultimate') === 1,
    };
    return { info, refIds: this.#referenceIds(Number(col('id'))) };
  }

  /** The ValidPaths row `refId`, a reference of `from`: BAD_DATABASE when there is none. */
  #referenceRow(refId: number, from: string): SqlValue[] {
    const row = this.#row(refId);
    if (!row)
      throw new NixcacheError(
        'BAD_DATABASE',
        `${this.file} (ValidPaths, ${from}): reference #${refId} is not a valid path`,
        {
          file: this.file,
          path: from,
          field: 'Refs',
        },
      );
    return row;
  }

  /**
   * The database's record of one store path; undefined when it is not registered (valid).
   *
   * @throws {NixcacheError} BAD_DATABASE for a malformed database.
   * @example db.pathInfo('/nix/store/syd87l2rxw8cbsxmxl853h0r6pdwhwjr-curl-7.82.0-bin')?.narHash
   */
  pathInfo(path: string): LocalPathInfo | undefined {
    return this.#consistent(() => {
      const id = this.#idOf(path);
      if (id === undefined) return undefined;
      const values = this.#row(id);
      if (!values) return undefined;
      const { info, refIds } = this.#decode(values);
      for (const refId of refIds) info.references.push(String(this.#referenceRow(refId, info.path)[1]));
      info.references.sort();
      return info;
    });
  }

  /**
   * The closures of `paths` (every path they reference, transitively, and themselves), each
   * record once, references before the paths that refer to them where there is no cycle.
   * References are followed by row id: each row is read and decoded once, however many paths
   * refer to it (looking each reference up again by its path cost two b-tree descents and two
   * row decodes per edge).
   *
   * @throws {NixcacheError} NOT_FOUND naming the first path that is not registered;
   *   BAD_DATABASE for a malformed database.
   * @example db.closure(['/nix/store/…-hello-2.12.1']).map((i) => i.path)
   */
  closure(paths: readonly string[]): LocalPathInfo[] {
    return this.#consistent(() => {
      interface Node {
        readonly id: number;
        readonly info: LocalPathInfo & { references: string[] };
        readonly refIds: number[];
        /** Its references' nodes, in the order of their paths; set when it is entered. */
        refs?: Node[];
        entered: boolean;
      }
      const nodes = new Map<number, Node>();
      /** The node of row `id`, its row read (by `row`) and decoded the first time only. */
      const nodeOf = (id: number, row: () => SqlValue[]): Node => {
        let node = nodes.get(id);
        if (node === undefined) {
          node = { id, ...this.#decode(row()), entered: false };
          nodes.set(id, node);
        }
        return node;
      };
      const order: LocalPathInfo[] = [];
      // Iterative post-order walk: a closure can be deep.
      const stack: { node: Node; next: number }[] = [];
      const enter = (node: Node): void => {
        node.entered = true;
        const refs = node.refIds.map((refId) =>
          refId === node.id ? node : nodeOf(refId, () => this.#referenceRow(refId, node.info.path)),
        );
        refs.sort((a, b) => (a.info.path < b.info.path ? -1 : a.info.path > b.info.path ? 1 : 0));
        for (const ref of refs) node.info.references.push(ref.info.path);
        node.refs = refs;
        stack.push({ node, next: 0 });
      };
      for (const root of paths) {
        const notValid = () =>
          new NixcacheError('NOT_FOUND', `${root} is not a valid path in ${this.file}`, {
            path: root,
            file: this.file,
          });
        const id = this.#idOf(root);
        if (id === undefined) throw notValid();
        const node = nodeOf(id, () => {
          const values = this.#row(id);
          if (!values) throw notValid();
          return values;
        });
        if (node.entered) continue;
        enter(node);
        while (stack.length) {
          const top = stack[stack.length - 1]!;
          const refs = top.node.refs!;
          if (top.next < refs.length) {
            const ref = refs[top.next++]!;
            if (!ref.entered) enter(ref);
          } else {
            stack.pop();
            top.node.refs = undefined;
            order.push(top.node.info);
          }
        }
      }
      return order;
    });
  }

  close(): void {
    this.#db.close();
  }
}

/**
 * Reads the records of `paths` (and with `closure`, of everything they reference) from the local
 * Nix database, for tools that want Nix's exact metadata without the `nix` binary.
 *
 * @throws {NixcacheError} IO/BAD_DATABASE as `LocalNixDb.open`; NOT_FOUND for a path that is
 *   not registered.
 * @example const [hello] = readLocalPathInfo(['/nix/store/…-hello-2.12.1'])
 */
export function readLocalPathInfo(
  paths: readonly string[],
  options: { readonly db?: string; readonly closure?: boolean } = {},
): LocalPathInfo[] {
  const db = LocalNixDb.open(options.db);
  try {
    if (options.closure) return db.closure(paths);
    return paths.map((p) => {
      const info = db.pathInfo(p);
      if (!info)
        throw new NixcacheError('NOT_FOUND', `${p} is not a valid path in ${db.file}`, {
          path: p,
          file: db.file,
        });
      return info;
    });
  } finally {
    db.close();
  }
}
