import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';

describe('configuration', () => {
  it('refuses production without an https PUBLIC_URL, naming the setting', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/PUBLIC_URL/);
    expect(() => loadConfig({ NODE_ENV: 'production', PUBLIC_URL: 'http://wallet.example' })).toThrow(
      /PUBLIC_URL.*https/,
    );
    const ok = loadConfig({ NODE_ENV: 'production', PUBLIC_URL: 'https://wallet.example' });
    expect(ok.publicUrl).toBe('https://wallet.example');
    expect(ok.production).toBe(true);
  });

  it('outside production an unset PUBLIC_URL falls back to the listening address', () => {
    expect(loadConfig({ NODE_ENV: 'development' }).publicUrl).toBeUndefined();
  });
});
