// End-to-end single sign-on in chromium: a real `ads serve` configured for
// OpenID Connect against a small OpenID provider on loopback (oidc-provider.mjs).
// The sign-in page shows "Sign in with SSO" because the server says OIDC is
// configured; the link goes through the provider and back to /#token=...,
// where the UI keeps the token and clears the fragment. Sign-in CSRF: a link
// carrying someone else's token, or someone else's callback (their code and
// state), signs nobody in. Needs no containers.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { checkA11y, freePort, launchChromium, shot, startAds } from './lib.mjs';
import { startProvider } from './oidc-provider.mjs';

describe('single sign-on in chromium', { timeout: 300_000 }, () => {
  const email = 'alice@example.org';
  const clientSecret = randomBytes(16).toString('hex');
  let op, ads, browser, page, dir;

  before(async () => {
    op = await startProvider({ clientId: 'ads-e2e', clientSecret, email });
    const port = await freePort();
    // the config file goes into a temp dir of its own, written before ads starts
    dir = mkdtempSync(path.join(tmpdir(), 'ads-e2e-sso-'));
    const config = path.join(dir, 'ads.json');
    writeFileSync(config, JSON.stringify({ oidc: {
      issuer: op.issuer, client_id: 'ads-e2e', client_secret: clientSecret,
      redirect_uri: `http://127.0.0.1:${port}/api/v1/oidc/callback`,
      allow: { [email]: 'deployer' } } }), { mode: 0o600 });
    ads = await startAds({ listen: `127.0.0.1:${port}`, extraArgs: ['--config', config] });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(30_000);
  });

  after(async () => {
    try { if (browser) await browser.close(); } finally {
      if (ads) await ads.stop();
      if (op) await op.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });

  it('offers SSO on the sign-in page and signs in through the provider', async () => {
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${ads.base}/`);
    const link = page.getByRole('link', { name: 'Sign in with SSO' });
    await link.waitFor();
    assert.equal(await link.getAttribute('href'), '/api/v1/oidc/login');
    await checkA11y(page, 'sign-in with SSO');
    await shot(page, '20-sign-in-with-sso');

    // follow the redirects: ADS -> provider -> ADS callback -> /#token=...
    const landed = [];
    const frames = [];
    page.on('request', (r) => { if (r.isNavigationRequest()) landed.push(r.url()); });
    page.on('framenavigated', (f) => { if (f === page.mainFrame()) frames.push(f.url()); });
    await link.click();
    await page.getByRole('heading', { name: 'Deployments', level: 1 }).waitFor();
    const went = landed.map((u) => new URL(u)).map((u) => `${u.origin}${u.pathname}`);
    assert.deepEqual(went, [`${ads.base}/api/v1/oidc/login`, `${op.issuer}/authorize`, `${ads.base}/api/v1/oidc/callback`,
      `${ads.base}/`], `the redirects: ${landed.join(' ')}`);
    assert.match(frames[0], /\/#token=ads_[0-9a-f]+&sso=[A-Za-z0-9_-]{20,}$/,
      'the callback hands the token over in the fragment, with the nonce of this tab');
    assert.equal(new URL(page.url()).hash, '#/', 'the fragment with the token is gone');
    assert.match(await page.locator('#who-name').textContent(), /alice@example\.org \(deployer\)/);
    const token = await page.evaluate(() => sessionStorage.getItem('ads.token'));
    assert.match(token, /^ads_/);
    // the token is a real ADS token of the person the provider vouched for
    const who = await ads.api('GET', '/api/v1/whoami', undefined, token);
    assert.equal(who.status, 200);
    assert.equal(who.body.name, email);
    assert.equal(who.body.role, 'deployer');
    assert.deepEqual(op.refusals, [], 'the provider refused nothing');
    assert.deepEqual(errors, [], 'no script errors');
    await shot(page, '21-signed-in-with-sso');

    // a callback the server refuses (a replayed or forged state) is not a sign-in
    const replay = await fetch(`${ads.base}/api/v1/oidc/callback?code=x&state=forged`, { redirect: 'manual' });
    assert.equal(replay.status, 400);
    assert.equal((await replay.json()).error.field, 'state');
  });

  it('shows a refused sign-in on the sign-in page, not as a raw JSON page', async () => {
    // a fresh tab (no session): the provider sent the browser back with an error
    const tab = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    try {
      const errors = [];
      tab.on('pageerror', (e) => errors.push(e.message));
      await tab.goto(`${ads.base}/api/v1/oidc/callback?error=access_denied&state=x`);
      const alert = tab.locator('#login-error');
      await alert.waitFor();
      assert.equal(await alert.textContent(), 'the OpenID provider refused the sign-in: access_denied');
      assert.equal(await alert.getAttribute('role'), 'alert');
      assert.equal(new URL(tab.url()).hash, '#/login', 'the reason is taken out of the address bar');
      assert.equal(await tab.evaluate(() => sessionStorage.getItem('ads.token')), null, 'no token');
      await checkA11y(tab, 'refused single sign-on');
      await shot(tab, '22-sso-refused');
      assert.deepEqual(errors, [], 'no script errors');
    } finally {
      await tab.close();
    }
  });
  // Someone's own token in a link, or someone's own callback URL (their code
  // and state, stopped before their browser used it), must not put this
  // browser into their account: the fragment needs this tab's nonce, and
  // the callback this browser's cookie.
  it('refuses sign-in links and callbacks that this browser did not start', async () => {
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const mine = await page.evaluate(() => sessionStorage.getItem('ads.token'));
    assert.match(mine, /^ads_/, 'signed in by the first test');
    const who = () => page.locator('#who-name').textContent();
    const made = await ads.api('POST', '/api/v1/users', { name: 'mallory', role: 'viewer' });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const theirs = (await ads.api('POST', '/api/v1/tokens', { name: 'bait', user: 'mallory', ttl_s: 600 })).body.secret;

    // 1. a crafted #token= link, in the signed-in tab (a hash change), with or without a guessed nonce
    for (const frag of [`#token=${theirs}`, `#token=${theirs}&sso=guessed-nonce-0123456789`]) {
      await page.evaluate((f) => { location.hash = f; }, frag);
      await page.waitForFunction(() => document.getElementById('announce').textContent.includes('not started in this tab'));
      await page.getByRole('heading', { name: 'Deployments', level: 1 }).waitFor();
      assert.ok(!page.url().includes(theirs), 'the token left the address bar');
      assert.equal(await page.evaluate(() => sessionStorage.getItem('ads.token')), mine, 'the session is the same');
      assert.match(await who(), /alice@example\.org/);
      await page.evaluate(() => { document.getElementById('announce').textContent = ''; });
    }
    // ...and in a fresh tab (a page load): not signed in at all
    const fresh = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    try {
      await fresh.goto(`${ads.base}/#token=${theirs}`);
      await fresh.getByLabel('User name').waitFor();
      assert.equal(await fresh.evaluate(() => sessionStorage.getItem('ads.token')), null);
      assert.ok(!fresh.url().includes(theirs));
    } finally {
      await fresh.close();
    }

    // 2. callbacks of sign-ins the attacker started (with their own client, so
    // the binding cookie stays with them), stopped before their callback was used
    const attackerCallback = async () => {
      const login = await fetch(`${ads.base}/api/v1/oidc/login`, { redirect: 'manual' });
      assert.equal(login.status, 302);
      assert.match(login.headers.get('set-cookie') || '', /^ads_oidc=[A-Za-z0-9_-]+;.*HttpOnly/);
      const authorize = await fetch(login.headers.get('location'), { redirect: 'manual' });
      assert.equal(authorize.status, 302);
      return authorize.headers.get('location');
    };
    const callbacks = [await attackerCallback(), await attackerCallback()];
    for (const cb of callbacks) assert.match(cb, /\/api\/v1\/oidc\/callback\?code=.+&state=/);
    // in the victim's signed-in tab: refused, the session unchanged
    await page.goto(callbacks[0]);
    await page.getByRole('heading', { name: 'Deployments', level: 1 }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('ads.token')), mine);
    assert.match(await who(), /alice@example\.org/);
    // in a fresh tab of the victim's browser: the sign-in page says why, no token
    const tab2 = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    try {
      await tab2.goto(callbacks[1]);
      const alert = tab2.locator('#login-error');
      await alert.waitFor();
      assert.match(await alert.textContent(), /not started in this browser/);
      assert.equal(await tab2.evaluate(() => sessionStorage.getItem('ads.token')), null, 'no token');
      await checkA11y(tab2, 'a callback of another browser refused');
      await shot(tab2, '23-sso-callback-of-another-browser');
    } finally {
      await tab2.close();
    }
    // neither attempt made a session for mallory (or anyone) on the server
    const tokens = await ads.api('GET', '/api/v1/tokens?user=mallory');
    assert.deepEqual(tokens.body.tokens.map((t) => t.name), ['bait']);
    assert.deepEqual(op.refusals, [], 'the provider refused nothing');
    assert.deepEqual(errors, [], 'no script errors');
  });
});
