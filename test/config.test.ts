import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';

/** A valid WEBHOOK_SECRET_KEY (32 bytes, base64), which production requires. */
const WEBHOOK_KEY = Buffer.alloc(32, 7).toString('base64');

describe('configuration', () => {
  it('refuses production without an https PUBLIC_URL, naming the setting', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/PUBLIC_URL/);
    expect(() => loadConfig({ NODE_ENV: 'production', PUBLIC_URL: 'http://wallet.example' })).toThrow(
      /PUBLIC_URL.*https/,
    );
    const ok = loadConfig({
      NODE_ENV: 'production',
      PUBLIC_URL: 'https://wallet.example',
      WEBHOOK_SECRET_KEY: WEBHOOK_KEY,
    });
    expect(ok.publicUrl).toBe('https://wallet.example');
    expect(ok.production).toBe(true);
  });

  it('outside production an unset PUBLIC_URL falls back to the listening address', () => {
    expect(loadConfig({ NODE_ENV: 'development' }).publicUrl).toBeUndefined();
  });

  it('refuses production without a WEBHOOK_SECRET_KEY, naming the setting, and a key that is not 32 bytes', () => {
    const prod = { NODE_ENV: 'production', PUBLIC_URL: 'https://wallet.example' };
    expect(() => loadConfig(prod)).toThrow(/WEBHOOK_SECRET_KEY: production .* 32-byte base64 key/);
    expect(() => loadConfig({ ...prod, WEBHOOK_SECRET_KEY: 'c2hvcnQ=' })).toThrow(
      /WEBHOOK_SECRET_KEY: must be/,
    );
    expect(loadConfig({ ...prod, WEBHOOK_SECRET_KEY: WEBHOOK_KEY }).webhooks.secretKey).toEqual(
      Buffer.alloc(32, 7),
    );
  });

  it('outside production webhooks use a fixed development key and may go to loopback over http', () => {
    const dev = loadConfig({ NODE_ENV: 'development' });
    expect(dev.webhooks.secretKey).toHaveLength(32);
    expect(loadConfig({ NODE_ENV: 'test' }).webhooks.secretKey).toEqual(dev.webhooks.secretKey);
    expect(dev.webhooks).toMatchObject({
      allowHttpLocalhost: true,
      timeoutMs: 15_000,
      deliveredWaitMs: 2_000,
    });
  });

  it('production never lets webhooks go to loopback over http', () => {
    const prod = {
      NODE_ENV: 'production',
      PUBLIC_URL: 'https://wallet.example',
      WEBHOOK_SECRET_KEY: WEBHOOK_KEY,
    };
    expect(loadConfig(prod).webhooks.allowHttpLocalhost).toBe(false);
    expect(() => loadConfig({ ...prod, WEBHOOK_ALLOW_HTTP_LOCALHOST: 'true' })).toThrow(
      /WEBHOOK_ALLOW_HTTP_LOCALHOST: cannot be true in production/,
    );
  });
});
