/**
 * `--resume FILE` for whole-cache runs: the file is the run's own log of finished reports, one
 * JSON object per line (NDJSON), each written with a single append as soon as its path is done.
 * A run that was killed and started again with the same file skips every path the log already
 * holds and appends the rest, so across the runs every path is checked exactly once. A last line
 * cut short by the kill is dropped from the file (that path was not finished). Memory: the done
 * set is a HashPartSet (30-60 bytes a path), never the records themselves.
 */
import { closeSync, createReadStream, existsSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { NixcacheError } from '../errors.js';
import { isHashPart } from '../store-path/store-path.js';
import { HashPartSet } from './hash-part-set.js';

/** What every logged record has. */
export interface ResumeRecord {
  readonly hashPart: string;
}

export interface ResumeOpenOptions<R extends ResumeRecord> {
  /** Called for each record already in the log (e.g. to count it in the summary). */
  readonly onPrevious?: (record: R) => void;
}

/** An open resume log. */
export class ResumeLog<R extends ResumeRecord> {
  readonly file: string;
  readonly #done: HashPartSet;
  #fd: number | undefined;

  private constructor(file: string, done: HashPartSet, fd: number) {
    this.file = file;
    this.#done = done;
    this.#fd = fd;
  }

  /**
   * Opens (or creates) a log, reading what an earlier run finished.
   *
   * @throws {NixcacheError} IO when the file cannot be read or written; BAD_ARGUMENT naming the
   *   file and line when a complete line is not a record of this kind.
   * @example const log = await ResumeLog.open('verify.ndjson', { onPrevious: (r) => count(r) })
   */
  static async open<R extends ResumeRecord>(
    file: string,
    options: ResumeOpenOptions<R> = {},
  ): Promise<ResumeLog<R>> {
    const done = new HashPartSet();
    let complete = 0;
    if (existsSync(file)) {
      let line = 0;
      let pending = '';
      try {
        for await (const chunk of createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 16 })) {
          pending += chunk as string;
          let nl = pending.indexOf('\n');
          while (nl >= 0) {
            const text = pending.slice(0, nl);
            line++;
            complete += Buffer.byteLength(text) + 1;
            pending = pending.slice(nl + 1);
            if (text.trim() !== '') {
              const record = parseRecord<R>(text, file, line);
              if (done.add(record.hashPart)) options.onPrevious?.(record);
            }
            nl = pending.indexOf('\n');
          }
        }
      } catch (e) {
        if (e instanceof NixcacheError) throw e;
        throw ioError(file, 'read', e);
      }
    }
    let fd: number;
    try {
      fd = openSync(file, 'a+');
      // Drop a line the previous run did not finish writing.
      ftruncateSync(fd, complete);
    } catch (e) {
      throw ioError(file, 'open', e);
    }
    return new ResumeLog<R>(file, done, fd);
  }

  /** Paths the log holds (from earlier runs and this one). */
  get size(): number {
    return this.#done.size;
  }

  /** True when an earlier run (or this one) finished `hashPart`. */
  has(hashPart: string): boolean {
    return this.#done.has(hashPart);
  }

  /**
   * Logs a finished path with one write of one line.
   *
   * @throws {NixcacheError} IO when the write fails; CONFLICT when the log is closed.
   */
  append(record: R): void {
    if (this.#fd === undefined) throw new NixcacheError('CONFLICT', `resume log ${this.file} is closed`);
    this.#done.add(record.hashPart);
    try {
      writeSync(this.#fd, `${JSON.stringify(record)}\n`);
    } catch (e) {
      throw ioError(this.file, 'write', e);
    }
  }

  close(): void {
    if (this.#fd === undefined) return;
    closeSync(this.#fd);
    this.#fd = undefined;
  }
}

function parseRecord<R extends ResumeRecord>(text: string, file: string, line: number): R {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  const hashPart = (value as { hashPart?: unknown } | undefined)?.hashPart;
  if (typeof hashPart !== 'string' || !isHashPart(hashPart)) {
    throw new NixcacheError(
      'BAD_ARGUMENT',
      `${file} line ${line}: not a report of an earlier run (expected a JSON object with a hashPart)`,
      { file, line },
    );
  }
  return value as R;
}

function ioError(file: string, op: string, e: unknown): NixcacheError {
  const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  return new NixcacheError('IO', `cannot ${op} resume log ${file}: ${code}`, { file }, { cause: e });
}
