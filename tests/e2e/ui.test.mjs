// End-to-end test of the ADS web UI: a real `ads serve` (temp data dir, real
// LXD), Debian's chromium driven headless by playwright-core. Signs in,
// deploys examples/labs/static-site through the form, watches it reach
// `running`, opens the lab, stops it, destroys it; the users and tokens page;
// a token in a #token= link that no sign-in of the tab asked for is ignored;
// failure paths (wrong password, a refused source); accessibility basics on
// every page. A screenshot of every page goes to ADS_SCREENSHOT_DIR.
// Containers are removed even when a step fails.
//
// Environment: ADS_CLI_BIN, ADS_AGENT_BIN, ADS_SOURCE_DIR (set by ctest),
// ADS_SCREENSHOT_DIR (default: build/e2e-screenshots), CHROMIUM (default /usr/bin/chromium).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { SHOTS, SRC, checkA11y, freePort, launchChromium, shot as shotOf, startAds } from './lib.mjs';
import { schemaChecker } from './api-schema.mjs';

const LAB = path.join(SRC, 'examples/labs/static-site');
const SLOW = 300_000;  // a deployment on a 2-core machine shared with others

let ads, base, browser, page, labPort;
const user = { name: 'operator', password: randomBytes(12).toString('hex') };
// Every API answer of the test (the browser's and the test's own calls) is
// checked against the server's OpenAPI document (api-schema.mjs).
let checker;
const violations = [];
const pending = [];
async function apiCall(method, p, body, token) {
  const r = await ads.api(method, p, body, token);
  if (checker) {
    const e = checker.check(method, base + p, r.status, r.contentType, r.text);
    if (e) violations.push(e);
  }
  return r;
}
function watch(p) {
  p.on('response', (r) => {
    const u = new URL(r.url());
    if (!checker || u.origin !== new URL(base).origin || !u.pathname.startsWith('/api/v1/')) return;
    const ct = r.headers()['content-type'] || '';
    const method = r.request().method();
    if (ct.startsWith('text/event-stream')) {  // a live stream: its status only (its body never ends)
      const e = checker.check(method, r.url(), r.status(), ct, '');
      if (e) violations.push(e);
      return;
    }
    pending.push(r.text().then((t) => {
      const e = checker.check(method, r.url(), r.status(), ct, t);
      if (e) violations.push(e);
    }, () => { /* the page went away before its body was read */ }));
  });
  return p;
}
const shot = (name) => shotOf(page, name);

// Removes the containers of every deployment this server knows, then the server.
async function cleanUp() {
  if (!ads) return;
  try {
    const { body } = await apiCall('GET', '/api/v1/deployments?limit=1000');
    for (const d of body.deployments || []) {
      for (const name of [`ads-${d.id}`, `ads-${d.id}-r2`, `ads-${d.id}-r3`]) {
        try { execFileSync('lxc', ['delete', '--force', name], { stdio: 'ignore' }); } catch { /* already gone */ }
      }
    }
  } catch { /* the server may be down: fall through */ }
  await ads.stop();
}

describe('ADS web UI in chromium', { timeout: 900_000 }, () => {
  let deploymentId = '';

  before(async () => {
    // stable URLs through the reverse proxy: a port of its own for the lab, on loopback
    labPort = await freePort();
    const cfg = path.join(mkdtempSync(path.join(tmpdir(), 'ads-e2e-cfg-')), 'ads.json');
    writeFileSync(cfg, JSON.stringify({ proxy: { listen: '127.0.0.1:80', ports: `${labPort}-${labPort}`, public_host: '127.0.0.1' } }));
    ads = await startAds({ extraArgs: ['--config', cfg] });
    base = ads.base;
    checker = await schemaChecker(base);
    // the first-start admin has a token only: make a user who signs in with a password
    const r = await apiCall('POST', '/api/v1/users', { name: user.name, role: 'admin', password: user.password });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    browser = await launchChromium();
    page = watch(await browser.newPage({ viewport: { width: 1280, height: 900 } }));
    page.setDefaultTimeout(30_000);
  });

  after(async () => {
    try { if (browser) await browser.close(); } finally {
      await cleanUp();
      console.log(`# screenshots: ${SHOTS}`);
    }
  });

  it('serves the UI with a CSP and no inline script', async () => {
    const res = await fetch(base + '/');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/html/);
    assert.match(res.headers.get('content-security-policy'), /script-src 'self'/);
    assert.doesNotMatch(res.headers.get('content-security-policy'), /unsafe-inline/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const traversal = await fetch(base + '/ui/..%2f..%2f..%2fetc%2fpasswd');
    assert.equal(traversal.status, 404);
  });

  it('refuses a wrong password with a visible error', async () => {
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const methods = page.waitForResponse((r) => r.url() === `${base}/api/v1/login` && r.request().method() === 'GET');
    await page.goto(base + '/');
    await page.getByLabel('User name').waitFor();
    assert.deepEqual((await (await methods).json()).methods, ['password']);
    assert.equal(await page.locator('#sso-link').count(), 0, 'no SSO link when OIDC is not configured');
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('name')), 'name', 'focus starts in User name');
    await checkA11y(page, 'sign-in');
    await shot('01-sign-in');
    await page.getByLabel('User name').fill(user.name);
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const alert = page.locator('#login-error');
    await alert.waitFor({ state: 'visible' });
    const expected = await apiCall('POST', '/api/v1/login', { name: user.name, password: 'not-the-password' });
    assert.equal(expected.status, 401);
    assert.equal(await alert.textContent(), expected.body.error.message);
    assert.equal(await alert.getAttribute('role'), 'alert');
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('name')), 'password', 'focus back in Password');
    await shot('02-sign-in-wrong-password');
    assert.deepEqual(errors, [], 'no script errors');
  });

  it('signs in and shows the deployments page', async () => {
    // by keyboard: Tab moves from the user name to the password, Enter submits
    await page.getByLabel('User name').fill(user.name);
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('name')), 'password');
    await page.keyboard.type(user.password);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Deployments', level: 1 }).waitFor();
    assert.equal(await page.locator('#announce').getAttribute('aria-live'), 'polite');
    assert.match(await page.locator('#who-name').textContent(), /operator \(admin\)/);
    await page.getByText('No deployments yet.').waitFor();
    await checkA11y(page, 'deployments');
    await shot('03-deployments-empty');
  });

  it('shows the API\'s message for a refused source in the form', async () => {
    const bad = 'https://example.invalid/lab.git;touch /tmp/pwned';
    await page.getByLabel('Git URL or server path').fill(bad);
    await page.getByRole('button', { name: 'Deploy' }).click();
    const alert = page.locator('#deploy-error');
    await alert.waitFor({ state: 'visible' });
    const expected = await apiCall('POST', '/api/v1/deployments', { source: bad });
    assert.equal(expected.status, 400);
    assert.equal(await alert.textContent(), `${expected.body.error.field}: ${expected.body.error.message}`);
    assert.equal(await page.getByLabel('Git URL or server path').getAttribute('aria-invalid'), 'true');
    await shot('04-deploy-refused-source');
  });

  it('deploys the example lab and watches it reach running', { timeout: SLOW + 60_000 }, async () => {
    await page.getByLabel('Git URL or server path').fill(LAB);
    await page.getByLabel('Name', { exact: true }).fill('e2e-static');
    await page.getByRole('button', { name: 'Deploy' }).click();
    await page.waitForURL(/#\/d\/[0-9a-z]{26}$/);
    deploymentId = page.url().split('/').pop();
    await page.getByRole('heading', { name: 'e2e-static', level: 1 }).waitFor();
    // the live log (SSE read with fetch) shows the pipeline as it happens
    await page.locator('#log').getByText('accepted: deploy').waitFor();
    // progress: a labelled <progress> while the pipeline runs, state changes spoken politely
    const progress = page.locator('#progress');
    if (await progress.isVisible()) {
      assert.match(await page.locator('#progress-label').textContent(), /^Step \d+ of \d+/);
    }
    await checkA11y(page, 'deployment in progress');
    await shot('05-deployment-in-progress');
    await page.locator('#state [data-state="running"]').waitFor({ timeout: SLOW });
    await page.locator('#log').getByText('agent answers on').waitFor();
    assert.match(await page.locator('#address').textContent(), /^\d+\.\d+\.\d+\.\d+$/);
    // health figures from the agent
    await page.locator('#health-uptime').waitFor({ timeout: 30_000 });
    assert.match(await page.locator('#health-memory').textContent(), /used/);
    assert.match(await page.locator('#health-disk').textContent(), /used/);
    await page.locator('#announce').getByText('e2e-static is now running').waitFor({ timeout: 30_000 })
      .catch(async () => { assert.match(await page.locator('#announce').textContent(), /running|e2e-static/); });
    await checkA11y(page, 'deployment running');
    await shot('06-deployment-running');
  });

  it('opens the lab\'s page', async () => {
    const url = await page.locator('#lab-url').getAttribute('href');
    assert.match(url, /^http:\/\/\d+\.\d+\.\d+\.\d+/);
    const lab = watch(await browser.newPage({ viewport: { width: 1280, height: 900 } }));
    try {
      const res = await lab.goto(url);
      assert.equal(res.status(), 200);
      assert.match(await lab.content(), /ADS example lab/);
      await lab.screenshot({ path: path.join(SHOTS, '07-lab-page.png'), fullPage: true });
      // the stable URL, next to the address, through the reverse proxy
      const stable = await page.locator('#stable-url').getAttribute('href');
      assert.equal(stable, `http://127.0.0.1:${labPort}/`);
      const viaProxy = await lab.goto(stable);
      assert.equal(viaProxy.status(), 200);
      assert.match(await lab.content(), /ADS example lab/);
    } finally {
      await lab.close();
    }
  });

  it('lists the deployment with its state and address', async () => {
    await page.getByRole('link', { name: 'Deployments' }).first().click();
    const row = page.locator(`tr[data-id="${deploymentId}"]`);
    await row.waitFor();
    await row.locator('[data-state="running"]').waitFor();
    await row.getByRole('link', { name: `http://127.0.0.1:${labPort}/` }).waitFor();
    await shot('08-deployments-list');
    await row.getByRole('link', { name: 'e2e-static' }).click();
    await page.locator('#state [data-state="running"]').waitFor();
  });

  it('tests the lab, backs it up and restores the backup picked in the list', { timeout: SLOW }, async () => {
    const jobRow = (kind) => page.locator('tr', { has: page.getByRole('cell', { name: kind, exact: true }) }).first();
    await page.getByRole('button', { name: 'Test', exact: true }).click();
    await jobRow('test').getByText('succeeded').waitFor({ timeout: SLOW / 3 });
    assert.equal(await jobRow('test').getByRole('cell', { name: 'passed', exact: true }).count(), 1);

    await page.getByRole('button', { name: 'Back up', exact: true }).click();
    await jobRow('backup').getByText('succeeded').waitFor({ timeout: SLOW / 3 });
    const { body } = await apiCall('GET', `/api/v1/deployments/${deploymentId}/backups`);
    assert.equal(body.backups.length, 1, JSON.stringify(body));
    const picker = page.getByLabel('Backup', { exact: true });
    await picker.locator(`option[value="${body.backups[0].id}"]`).waitFor({ state: 'attached' });
    await picker.selectOption(body.backups[0].id);
    await page.getByRole('button', { name: 'Restore', exact: true }).click();
    await jobRow('restore').getByText('succeeded').waitFor({ timeout: SLOW / 3 });
    await page.locator('#state [data-state="running"]').waitFor();
    const restore = (await apiCall('GET', `/api/v1/deployments/${deploymentId}/jobs`)).body.jobs.find((j) => j.kind === 'restore');
    assert.equal(restore.state, 'succeeded', JSON.stringify(restore));
    await checkA11y(page, 'after backup and restore');
    await shot('08b-backup-and-restore');

    // delete that backup, after a confirmation
    await page.getByRole('button', { name: 'Delete backup…' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Cancel');
    await checkA11y(page, 'delete backup confirmation');
    await shot('08c-delete-backup-confirmation');
    await dialog.getByRole('button', { name: 'Delete backup' }).click();
    await jobRow('delete-backup').getByText('succeeded').waitFor({ timeout: SLOW / 3 });
    await picker.locator('option', { hasText: 'no backups yet' }).waitFor({ state: 'attached' });
    assert.equal(await page.getByRole('button', { name: 'Delete backup…' }).isDisabled(), true);
    assert.equal(await page.getByRole('button', { name: 'Restore', exact: true }).isDisabled(), true);
    const left = await apiCall('GET', `/api/v1/deployments/${deploymentId}/backups`);
    assert.equal(left.body.backups.length, 0, JSON.stringify(left.body));
  });

  it('releases the lab again and rolls back, each after a confirmation', { timeout: SLOW }, async () => {
    const release = (seq) => page.locator(`#releases tr[data-seq="${seq}"]`);
    const jobRow = (kind) => page.locator('tr', { has: page.getByRole('cell', { name: kind, exact: true }) }).first();
    await release(1).getByText('serving').waitFor();
    await page.getByRole('button', { name: 'Release…' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Cancel');
    await checkA11y(page, 'release confirmation');
    await shot('08d-release-confirmation');
    await dialog.getByRole('button', { name: 'Release', exact: true }).click();
    await jobRow('release').getByText('succeeded').waitFor({ timeout: SLOW / 2 });
    await release(2).getByText('serving').waitFor();
    await release(1).getByText('kept').waitFor();
    let d = (await apiCall('GET', `/api/v1/deployments/${deploymentId}`)).body;
    assert.equal(d.machine, `ads-${deploymentId}-r2`, JSON.stringify(d));
    await page.locator('#state [data-state="running"]').waitFor();
    await checkA11y(page, 'after a release');
    await shot('08e-released');

    await page.getByRole('button', { name: 'Roll back to #1…' }).click();
    await dialog.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Cancel');
    await dialog.getByRole('button', { name: 'Roll back', exact: true }).click();
    await jobRow('rollback').getByText('succeeded').waitFor({ timeout: SLOW / 2 });
    await release(1).getByText('serving').waitFor();
    await release(2).getByText('kept').waitFor();
    d = (await apiCall('GET', `/api/v1/deployments/${deploymentId}`)).body;
    assert.equal(d.machine, `ads-${deploymentId}`, JSON.stringify(d));
    await page.locator('#state [data-state="running"]').waitFor();
    // the button of the release that serves is gone; the kept one can be rolled back to
    assert.equal(await page.getByRole('button', { name: 'Roll back to #1…' }).count(), 0);
    assert.equal(await page.getByRole('button', { name: 'Roll back to #2…' }).isEnabled(), true);
  });

  it('shows the branch the lab tracks, and that it tracks none after untrack', async () => {
    const track = page.locator('#track');
    assert.equal(await track.textContent(), 'no branch (releases by hand)');
    const t = await apiCall('PUT', `/api/v1/deployments/${deploymentId}/track`, { branch: 'main' });
    assert.equal(t.status, 200, JSON.stringify(t.body));
    await page.reload();
    await track.getByText(`main · webhook /api/v1/hooks/git/${deploymentId}`).waitFor();
    // the hook's secret is shown once, to whoever set the track, never on the page
    assert.equal((await page.content()).includes(t.body.secret), false);
    await shot('08f-tracking');
    const u = await apiCall('DELETE', `/api/v1/deployments/${deploymentId}/track`);
    assert.equal(u.status, 200, JSON.stringify(u.body));
    await page.reload();
    await track.getByText('no branch (releases by hand)').waitFor();
  });

  it('stops the lab', { timeout: SLOW }, async () => {
    await page.getByRole('button', { name: 'Stop', exact: true }).click();
    await page.locator('#state [data-state="stopped"]').waitFor({ timeout: SLOW - 10_000 });
    await page.getByRole('button', { name: 'Start', exact: true }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Start', exact: true }).isEnabled(), true);
    await page.locator('#health-note').getByText('reported while the lab is running').waitFor();
    await shot('09-deployment-stopped');
  });

  it('shows users and tokens to an admin', async () => {
    await page.getByRole('link', { name: 'Users & tokens' }).click();
    await page.getByRole('heading', { name: 'Users', exact: true }).waitFor();
    const users = page.locator('section').filter({ has: page.getByRole('heading', { name: 'Users', exact: true }) });
    await users.getByRole('cell', { name: 'operator' }).waitFor();
    await page.getByLabel('Name', { exact: true }).fill('viewer1');
    await page.getByRole('button', { name: 'Create user' }).click();
    await users.getByRole('cell', { name: 'viewer1' }).waitFor();
    await page.getByLabel('Token name').fill('ci');
    await page.getByRole('button', { name: 'Create token' }).click();
    assert.match(await page.locator('#token-secret').textContent(), /^ads_/);
    await checkA11y(page, 'users and tokens');
    await shot('10-users-and-tokens');
    await page.goBack();
    await page.waitForURL(/#\/d\//);
  });

  it('destroys the lab after a confirmation', { timeout: SLOW }, async () => {
    await page.locator('#state [data-state="stopped"]').waitFor();
    await page.getByRole('button', { name: 'Destroy…' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    // the safe choice has the focus; Escape closes the dialog without destroying
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Cancel');
    await checkA11y(page, 'destroy confirmation');
    await shot('11-destroy-confirmation');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    await page.getByRole('button', { name: 'Destroy…' }).click();
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    assert.equal((await apiCall('GET', `/api/v1/deployments/${deploymentId}`)).body.state, 'stopped');
    await page.getByRole('button', { name: 'Destroy…' }).click();
    await dialog.getByRole('button', { name: 'Destroy' }).click();
    await page.locator('#state [data-state="destroyed"]').waitFor({ timeout: SLOW - 10_000 });
    await shot('12-deployment-destroyed');
    let gone = false;
    try { execFileSync('lxc', ['info', `ads-${deploymentId}`], { stdio: 'ignore' }); } catch { gone = true; }
    assert.ok(gone, 'the container is gone');
  });

  it('signs out and revokes the session token', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('User name').waitFor();
    const res = await apiCall('GET', '/api/v1/deployments?limit=1000');
    assert.equal(res.status, 200);
    const tokens = await apiCall('GET', `/api/v1/tokens?user=${user.name}`);
    const sessionTokens = tokens.body.tokens.filter((t) => t.name !== 'ci');
    assert.ok(sessionTokens.length >= 1);
    assert.ok(sessionTokens.every((t) => t.revoked_at), JSON.stringify(sessionTokens));
  });

  it('ignores a token in the #token= fragment that no sign-in of this tab asked for', async () => {
    // someone else's token, in a link meant to sign this browser into their account
    const other = await apiCall('POST', '/api/v1/users', { name: 'mallory', role: 'viewer' });
    assert.equal(other.status, 201, JSON.stringify(other.body));
    const made = await apiCall('POST', '/api/v1/tokens', { name: 'fragment', user: 'mallory', ttl_s: 600 });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const secret = made.body.secret;
    const tab = watch(await browser.newPage({ viewport: { width: 1280, height: 900 } }));
    const ignored = () => tab.waitForFunction(
      () => document.getElementById('announce').textContent.includes('not started in this tab'));
    try {
      // a fresh tab (a page load), then the same tab again (a hash change), with and without a guessed nonce
      for (const frag of [`#token=${secret}`, `#token=${secret}&sso=a-guessed-nonce-0123456789`]) {
        await tab.goto(`${base}/${frag}`);
        await tab.getByLabel('User name').waitFor();
        await ignored();
        assert.ok(!tab.url().includes(secret), 'the token left the address bar');
        assert.equal(await tab.evaluate(() => sessionStorage.getItem('ads.token')), null, 'not signed in');
      }
      await checkA11y(tab, 'a #token= link ignored');
      await shot('13-fragment-token-ignored');
      // the fragment left no history entry: Back leaves the UI (the blank tab) without the token
      await tab.goBack();
      assert.ok(!tab.url().includes(secret), `back went to ${tab.url()}`);
      // (no goForward: Chromium may have dropped that entry, "No entry with
      // passed id", seen once in CI; the goto below loads the UI again)
      // signed in by password, a #token= in the open tab does not replace the session
      await tab.goto(`${base}/#/login`);
      await tab.getByLabel('User name').fill(user.name);
      await tab.getByLabel('Password').fill(user.password);
      await tab.getByRole('button', { name: 'Sign in' }).click();
      await tab.getByRole('heading', { name: 'Deployments', level: 1 }).waitFor();
      const mine = await tab.evaluate(() => sessionStorage.getItem('ads.token'));
      await tab.evaluate((t) => { location.hash = `#token=${t}`; }, secret);
      await ignored();
      await tab.getByRole('heading', { name: 'Deployments', level: 1 }).waitFor();
      assert.ok(!tab.url().includes(secret));
      assert.equal(await tab.evaluate(() => sessionStorage.getItem('ads.token')), mine, 'the session is the same');
      assert.match(await tab.locator('#who-name').textContent(), /operator \(admin\)/);
    } finally {
      await tab.close();
    }
  });

  it('answers as its OpenAPI document says (every API answer of this test)', async () => {
    await Promise.all(pending);
    assert.deepEqual(violations, []);
    assert.ok(checker.count() >= 30, `only ${checker.count()} answers checked`);
    console.log(`# ${checker.count()} API answers checked against the OpenAPI document, ${checker.checked.size} kinds: ${[...checker.checked].sort().join('; ')}`);
  });
});
