/**
 * The progress line of push, verify and copy: path counts, bytes and rate, redrawn in place on
 * stderr at most ten times a second. Drawn only when stderr is a terminal and `--json` is off;
 * otherwise every method is a no-op, so scripts and logs see nothing.
 */
import type { Output } from './context.js';
import { safeMessage } from './safe-text.js';

/** What the progress line shows. */
export interface ProgressState {
  /** Paths finished (done, skipped or failed). */
  done: number;
  /** Paths known so far (grows while a closure is discovered or a listing streams). */
  total: number;
  skipped: number;
  failed: number;
  /** Bytes moved or checked so far. */
  bytes: number;
  /** Paths being worked on right now (shown when > 0). */
  active?: number;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** `1536` → `1.5 KiB`. */
export function formatBytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${UNITS[u]}`;
}

function formatElapsed(ms: number): string {
  const s = Math.floor(ms / 1000);
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

/**
 * The text of one progress line.
 *
 * @example formatProgressLine('push', { done: 2, total: 3, skipped: 0, failed: 0, bytes: 2048 }, 2000)
 * // 'push 2/3 paths | 2.00 KiB | 1.00 KiB/s | 00:02'
 */
export function formatProgressLine(label: string, s: ProgressState, elapsedMs: number): string {
  const parts = [`${label} ${s.done}/${s.total} paths`];
  const extra = [
    s.active ? `${s.active} in progress` : '',
    s.skipped ? `${s.skipped} skipped` : '',
    s.failed ? `${s.failed} failed` : '',
  ].filter(Boolean);
  if (extra.length) parts[0] += ` (${extra.join(', ')})`;
  parts.push(formatBytes(s.bytes));
  const seconds = elapsedMs / 1000;
  parts.push(`${formatBytes(seconds > 0 ? Math.round(s.bytes / seconds) : 0)}/s`);
  parts.push(formatElapsed(elapsedMs));
  return parts.join(' | ');
}

/** A live progress line; inert unless `enabled`. */
export class Progress {
  readonly state: ProgressState = { done: 0, total: 0, skipped: 0, failed: 0, bytes: 0, active: 0 };
  readonly #out: Output;
  readonly #label: string;
  readonly #enabled: boolean;
  readonly #start = Date.now();
  #timer: ReturnType<typeof setInterval> | undefined;
  #drawn = false;

  constructor(out: Output, label: string, enabled: boolean) {
    this.#out = out;
    this.#label = label;
    this.#enabled = enabled;
    if (enabled) {
      this.#timer = setInterval(() => this.#draw(), 100);
      this.#timer.unref?.();
    }
  }

  /** Whether a line is being drawn. */
  get enabled(): boolean {
    return this.#enabled;
  }

  #draw(): void {
    const width = Math.max(20, (this.#out.columns || 80) - 1);
    const line = formatProgressLine(this.#label, this.state, Date.now() - this.#start).slice(0, width);
    this.#out.write(`\r\x1b[K${line}`);
    this.#drawn = true;
  }

  /**
   * Prints a message above the progress line (or plainly when there is none), with secrets
   * redacted and control characters escaped: it may quote a server or a narinfo.
   */
  log(line: string): void {
    if (this.#drawn) this.#out.write('\r\x1b[K');
    this.#out.write(`${safeMessage(line)}\n`);
    if (this.#drawn) this.#draw();
  }

  /** Removes the line until the next redraw (before printing on another stream of the terminal). */
  clear(): void {
    if (this.#drawn) this.#out.write('\r\x1b[K');
    this.#drawn = false;
  }

  /** Removes the line and stops redrawing. */
  finish(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#drawn) this.#out.write('\r\x1b[K');
    this.#drawn = false;
  }
}

/** Whether progress should be drawn: stderr is a terminal, no `--json`, and NO_PROGRESS is unset. */
export function wantProgress(
  stderr: Output,
  json: boolean,
  env: Readonly<Record<string, string | undefined>>,
): boolean {
  return stderr.isTTY === true && !json && !env.NIXCACHE_NO_PROGRESS && env.TERM !== 'dumb';
}
