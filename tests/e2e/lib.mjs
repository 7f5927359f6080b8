// Shared by the e2e tests: paths, a real `ads serve` in a temp data dir,
// chromium, screenshots and an accessibility check of the page's basics.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const here = path.dirname(new URL(import.meta.url).pathname);
export const SRC = process.env.ADS_SOURCE_DIR || path.resolve(here, '../..');
export const CLI = process.env.ADS_CLI_BIN || path.join(SRC, 'build/ads');
export const AGENT = process.env.ADS_AGENT_BIN || path.join(SRC, 'build/ads-agent');
export const SHOTS = process.env.ADS_SCREENSHOT_DIR || path.join(SRC, 'build/e2e-screenshots');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

let announced = false;
export async function shot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  if (!announced) { console.log(`# screenshots: ${SHOTS}`); announced = true; }
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

// A free TCP port on loopback (for a server whose own URL goes into its config).
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// Starts `ads serve` on loopback with a fresh data dir; resolves when it listens.
// stop() ends it (SIGTERM, then SIGKILL) and removes the data dir.
export async function startAds({ listen = '127.0.0.1:0', extraArgs = [] } = {}) {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'ads-e2e-'));
  const proc = spawn(CLI, ['serve', '--listen', listen, '--data-dir', dataDir, '--agent-binary', AGENT,
    '--workers', '2', ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr.on('data', (b) => { err += b; if (err.length > 65536) err = err.slice(-32768); });
  const base = await new Promise((resolve, reject) => {
    let out = '';
    let found = false;
    proc.stdout.on('data', (b) => {
      out += b;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m && !found) { found = true; resolve(m[1]); }
    });
    proc.on('exit', (code) => { if (!found) reject(new Error(`ads serve exited (${code}): ${err}`)); });
  });
  const adminToken = readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim();
  async function api(method, p, body, token = adminToken) {
    const res = await fetch(base + p, {
      method,
      headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: JSON.parse(text), contentType: res.headers.get('content-type'), text };
  }
  async function stop() {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      await new Promise((r) => {
        const t = setTimeout(() => { proc.kill('SIGKILL'); r(); }, 10000);
        proc.on('exit', () => { clearTimeout(t); r(); });
      });
    }
    await stopProxy(dataDir);
    rmSync(dataDir, { recursive: true, force: true });
  }
  return { base, dataDir, adminToken, api, stop, stderr: () => err };
}

// Stops the reverse proxy (caddy) an `ads serve` with --proxy on started in
// `dataDir` (it outlives ads serve by design).
export async function stopProxy(dataDir) {
  let pid = 0;
  try { pid = Number(readFileSync(path.join(dataDir, 'proxy', 'caddy.pid'), 'utf8').trim()); } catch { return; }
  if (!pid) return;
  const alive = () => { try { process.kill(pid, 0); return true; } catch { return false; } };
  try { process.kill(pid, 'SIGTERM'); } catch { return; }
  for (let i = 0; i < 100 && alive(); i++) await new Promise((r) => setTimeout(r, 100));
  if (alive()) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
}

export function launchChromium() {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--no-proxy-server'] });
}

// Accessibility basics of what is on screen: every form control has a label,
// every button and link a name, images an alt, one h1, ids unique and every
// aria reference pointing at an element; a polite live region for progress.
export async function checkA11y(page, where) {
  const problems = await page.evaluate(() => {
    const out = [];
    const visible = (el) => !el.closest('[hidden]') && el.getClientRects().length > 0;
    const name = (el) => (el.getAttribute('aria-label') || '').trim()
      || (el.getAttribute('aria-labelledby') || '').split(/\s+/).map((id) => document.getElementById(id)?.textContent || '').join('').trim()
      || (el.labels ? [...el.labels].map((l) => l.textContent).join('').trim() : '');
    for (const el of document.querySelectorAll('input, select, textarea')) {
      if (el.type === 'hidden' || !visible(el)) continue;
      if (!name(el)) out.push(`${el.tagName.toLowerCase()}[name=${el.name}] has no label`);
    }
    for (const el of document.querySelectorAll('button, a[href]')) {
      if (!visible(el)) continue;
      if (!(el.textContent.trim() || name(el))) out.push(`${el.tagName.toLowerCase()} ${el.outerHTML.slice(0, 60)} has no name`);
    }
    for (const el of document.querySelectorAll('img')) if (!el.hasAttribute('alt')) out.push(`img ${el.src} has no alt`);
    const h1 = [...document.querySelectorAll('h1')].filter(visible);
    if (h1.length !== 1) out.push(`${h1.length} visible h1 elements`);
    const ids = new Map();
    for (const el of document.querySelectorAll('[id]')) ids.set(el.id, (ids.get(el.id) || 0) + 1);
    for (const [id, n] of ids) if (n > 1) out.push(`id ${id} used ${n} times`);
    for (const attr of ['aria-labelledby', 'aria-describedby', 'for']) {
      for (const el of document.querySelectorAll(`[${attr}]`)) {
        for (const id of el.getAttribute(attr).split(/\s+/)) if (id && !document.getElementById(id)) out.push(`${attr}="${id}" points nowhere`);
      }
    }
    const live = document.getElementById('announce');
    if (!live || live.getAttribute('aria-live') !== 'polite') out.push('no polite live region #announce');
    if (document.documentElement.lang !== 'en') out.push('html has no lang');
    return out;
  });
  assert.deepEqual(problems, [], `accessibility basics on ${where}`);
}
