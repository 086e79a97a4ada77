/**
 * Durations on the command line (`gc --grace 1d`, `repair --grace 12h`): one or more groups of a
 * whole number and a unit, `s`, `m`, `h`, `d` or `w` (`1d12h`, `30m`, `3600s`); `0` means none.
 */
import { UsageError } from './context.js';

const UNIT_MS: Readonly<Record<string, number>> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/**
 * Parses a duration into milliseconds.
 *
 * @throws {UsageError} naming the option when the text is not a duration.
 * @example parseDuration('1d12h', 'grace', 'gc') // 129600000
 */
export function parseDuration(text: string, option: string, command: string): number {
  if (text === '0') return 0;
  if (!/^(\d+[smhdw])+$/.test(text)) {
    throw new UsageError(
      `--${option} expects a duration such as 1d, 12h, 30m, 3600s or 1d12h, got ${JSON.stringify(text)}`,
      command,
    );
  }
  let ms = 0;
  for (const [, n, unit] of text.matchAll(/(\d+)([smhdw])/g)) ms += Number(n) * UNIT_MS[unit!]!;
  if (!Number.isSafeInteger(ms)) throw new UsageError(`--${option}: ${text} is too long`, command);
  return ms;
}

/**
 * A short human form of a duration (`1d`, `12h`, `90s`).
 *
 * @example formatDuration(86_400_000) // '1d'
 */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0';
  for (const unit of ['w', 'd', 'h', 'm', 's']) {
    const size = UNIT_MS[unit]!;
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
