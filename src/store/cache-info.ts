/**
 * `nix-cache-info` (nix-formats.md §7.1): `Key: value` lines; values trimmed (CRLF tolerated),
 * unknown keys and lines without a colon ignored.
 */

export interface CacheInfo {
  readonly storeDir?: string;
  readonly wantMassQuery?: boolean;
  readonly priority?: number;
}

/**
 * Parses nix-cache-info the lenient way Nix does.
 *
 * @example parseCacheInfo('StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n')
 */
export function parseCacheInfo(text: string): CacheInfo {
  const info: { storeDir?: string; wantMassQuery?: boolean; priority?: number } = {};
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (key === 'StoreDir') info.storeDir = value;
    else if (key === 'WantMassQuery') info.wantMassQuery = value === '1';
    else if (key === 'Priority' && /^-?[0-9]+$/.test(value)) info.priority = Number(value);
  }
  return info;
}

/**
 * Writes nix-cache-info as Nix does (`StoreDir`, then `WantMassQuery`, then `Priority`).
 *
 * @example formatCacheInfo({ storeDir: '/nix/store', wantMassQuery: true, priority: 40 })
 */
export function formatCacheInfo(info: CacheInfo): string {
  let out = '';
  if (info.storeDir !== undefined) out += `StoreDir: ${info.storeDir}\n`;
  if (info.wantMassQuery !== undefined) out += `WantMassQuery: ${info.wantMassQuery ? 1 : 0}\n`;
  if (info.priority !== undefined) out += `Priority: ${info.priority}\n`;
  return out;
}
