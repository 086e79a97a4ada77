/** The 978 real cache.nixos.org narinfos of the corpus (fixtures/corpus), split into files. */
import { readFileSync } from 'node:fs';
import { corpusPath } from './env.js';

export const CACHE_NIXOS_ORG_KEY = 'cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=';

export function corpusNarInfos(): string[] {
  const text = readFileSync(corpusPath('cache-nixos-org.narinfos'), 'utf8');
  return text
    .split('\n\n')
    .filter((part) => part.trim() !== '')
    .map((part) => `${part.replace(/\n+$/, '')}\n`);
}
