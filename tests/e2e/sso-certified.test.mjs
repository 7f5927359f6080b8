// Single sign-on in chromium against a certified OpenID provider
// (oidc-provider from npm, certified-provider.mjs) besides the small one of
// sso.test.mjs: a real `ads serve` configured for it, the person signs in on
// the provider's own pages (its sign-in form and consent page) and lands in
// ADS signed in; the address comes from the provider's userinfo endpoint, as
// a conformant provider gives it. A person whose address the provider has not
// verified is refused, and the sign-in page says why. Needs no containers.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { checkA11y, freePort, launchChromium, shot, startAds } from './lib.mjs';
import { startCertifiedProvider } from './certified-provider.mjs';

describe('single sign-on through a certified OpenID provider', { timeout: 300_000 }, () => {
  const clientSecret = randomBytes(16).toString('hex');
  let op, ads, browser, dir;

  before(async () => {
    const port = await freePort();
    op = await startCertifiedProvider({
      clientId: 'ads-e2e',
      clientSecret,
      redirectUri: `http://127.0.0.1:${port}/api/v1/oidc/callback`,
      accounts: {
        alice: { email: 'alice@example.org', email_verified: true },
        eve: { email: 'eve@example.org', email_verified: false },
      },
    });
    dir = mkdtempSync(path.join(tmpdir(), 'ads-e2e-sso-certified-'));
    const config = path.join(dir, 'ads.json');
    writeFileSync(config, JSON.stringify({ oidc: {
      issuer: op.issuer, client_id: 'ads-e2e', client_secret: clientSecret,
      redirect_uri: `http://127.0.0.1:${port}/api/v1/oidc/callback`,
      allow: { 'alice@example.org': 'deployer', '*@example.org': 'viewer' } } }), { mode: 0o600 });
    ads = await startAds({ listen: `127.0.0.1:${port}`, extraArgs: ['--config', config] });
    browser = await launchChromium();
  });

  after(async () => {
    try { if (browser) await browser.close(); } finally {
      if (ads) await ads.stop();
      if (op) await op.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });

  // Through the provider's own pages: its sign-in form, then its consent page.
  async function signInAt(page, login) {
    await page.goto(`${ads.base}/`);
    await page.getByRole('link', { name: 'Sign in with SSO' }).click();
    await page.locator('input[name="login"]').fill(login);
    await page.locator('input[name="password"]').fill('any password: the provider checks its own');
    await page.getByRole('button', { name: 'Sign-in' }).click();
    await page.getByRole('button', { name: 'Continue' }).click();
  }

  it('signs in through the provider\'s own pages', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(30_000);
    try {
      const errors = [];
      page.on('pageerror', (e) => errors.push(e.message));
      const hops = [];
      page.on('request', (r) => { if (r.isNavigationRequest()) hops.push(new URL(r.url()).origin); });
      await signInAt(page, 'alice');
      await page.getByRole('heading', { name: 'Deployments', level: 1 }).waitFor();
      assert.ok(hops.includes(op.issuer), `went through the provider: ${hops.join(' ')}`);
      assert.equal(new URL(page.url()).hash, '#/', 'the fragment with the token is gone');
      assert.match(await page.locator('#who-name').textContent(), /alice@example\.org \(deployer\)/);
      const token = await page.evaluate(() => sessionStorage.getItem('ads.token'));
      const who = await ads.api('GET', '/api/v1/whoami', undefined, token);
      assert.equal(who.status, 200);
      assert.equal(who.body.name, 'alice@example.org');
      assert.equal(who.body.oidc, true, 'the account is bound to the provider\'s subject');
      assert.equal(who.body.token.session, true);
      await checkA11y(page, 'signed in through the certified provider');
      await shot(page, '24-signed-in-with-certified-provider');
      assert.deepEqual(errors, [], 'no script errors');
      assert.deepEqual(op.errors, [], 'the provider had no server errors');
    } finally {
      await page.close();
    }
  });

  it('refuses a person whose address the provider has not verified', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(30_000);
    try {
      await signInAt(page, 'eve');
      const alert = page.locator('#login-error');
      await alert.waitFor();
      assert.match(await alert.textContent(), /email_verified/);
      assert.equal(await page.evaluate(() => sessionStorage.getItem('ads.token')), null, 'no token');
      const users = await ads.api('GET', '/api/v1/users');
      assert.ok(!users.body.users.some((u) => u.name === 'eve@example.org'), 'no account made');
      await shot(page, '25-certified-provider-unverified-refused');
    } finally {
      await page.close();
    }
  });
});
