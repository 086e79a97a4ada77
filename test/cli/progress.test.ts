/**
 * The progress line: what it says (counts, bytes, rate, elapsed time), that it is drawn only on a
 * terminal without `--json`, and that it erases itself when done.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { Output } from '../../src/cli/context.js';
import { formatBytes, formatProgressLine, Progress, wantProgress } from '../../src/cli/progress.js';

function fakeTerminal(isTTY: boolean): { out: Output; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.setEncoding('utf8').on('data', (d: string) => {
    text += d;
  });
  Object.assign(stream, { isTTY, columns: 80 });
  return { out: stream as Output, text: () => text };
}

describe('progress', () => {
  it('formats counts, bytes, rate and elapsed time', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.50 KiB');
    expect(formatBytes(50 * 1024 * 1024)).toBe('50.0 MiB');
    expect(
      formatProgressLine('push', { done: 2, total: 5, skipped: 1, failed: 0, bytes: 4 * 1024 * 1024 }, 2000),
    ).toBe('push 2/5 paths (1 skipped) | 4.00 MiB | 2.00 MiB/s | 00:02');
    expect(
      formatProgressLine('push', { done: 0, total: 1, skipped: 0, failed: 0, bytes: 0, active: 1 }, 500),
    ).toBe('push 0/1 paths (1 in progress) | 0 B | 0 B/s | 00:00');
    expect(formatProgressLine('verify', { done: 3, total: 3, skipped: 0, failed: 1, bytes: 0 }, 61_000)).toBe(
      'verify 3/3 paths (1 failed) | 0 B | 0 B/s | 01:01',
    );
  });

  it('is drawn only on a terminal, without --json, and erased when done', async () => {
    expect(wantProgress(fakeTerminal(true).out, false, {})).toBe(true);
    expect(wantProgress(fakeTerminal(false).out, false, {})).toBe(false);
    expect(wantProgress(fakeTerminal(true).out, true, {})).toBe(false);
    expect(wantProgress(fakeTerminal(true).out, false, { TERM: 'dumb' })).toBe(false);
    expect(wantProgress(fakeTerminal(true).out, false, { NIXCACHE_NO_PROGRESS: '1' })).toBe(false);

    const tty = fakeTerminal(true);
    const p = new Progress(tty.out, 'push', true);
    p.state.total = 3;
    p.state.done = 1;
    p.state.bytes = 2048;
    await new Promise((r) => setTimeout(r, 250));
    p.log('pushed /nix/store/x');
    p.finish();
    await new Promise((r) => setImmediate(r));
    expect(tty.text()).toMatch(/\r\x1b\[Kpush 1\/3 paths \| 2\.00 KiB \| /);
    expect(tty.text()).toContain('\r\x1b[Kpushed /nix/store/x\n');
    expect(tty.text().endsWith('\r\x1b[K')).toBe(true);

    const pipe = fakeTerminal(false);
    const quiet = new Progress(pipe.out, 'push', false);
    quiet.state.done = 1;
    await new Promise((r) => setTimeout(r, 150));
    quiet.finish();
    expect(pipe.text()).toBe('');
  });
});
