// The ADS operators' UI: a single page with hash routes
//   #/login  #/  (deployments)  #/d/{id}  (one deployment)  #/access (users, tokens)
// DOM is built with h() (textContent only, never innerHTML), so nothing a lab,
// a log or a user name contains can run as script.
import { api, ApiError, login, session, setUnauthorizedHandler, streamEvents } from './api.js';

const main = document.getElementById('main');
let me = null;          // whoami
let cleanup = [];       // what the current view must stop when it is left

// ---------- small helpers ----------
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function announce(text) {
  const a = document.getElementById('announce');
  a.textContent = '';
  setTimeout(() => { a.textContent = text; }, 50);
}

function age(iso) {
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.floor(s)} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

function duration(sec) {
  sec = Math.floor(sec);
  const d = Math.floor(sec / 86400), hh = Math.floor((sec % 86400) / 3600), m = Math.floor((sec % 3600) / 60);
  if (d) return `${d} d ${hh} h`;
  if (hh) return `${hh} h ${m} min`;
  if (m) return `${m} min ${sec % 60} s`;
  return `${sec} s`;
}

function kb(n) {
  if (n >= 1048576) return `${(n / 1048576).toFixed(1)} GiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(0)} MiB`;
  return `${n} KiB`;
}

function bytes(n) { return n >= 1024 ? kb(Math.round(n / 1024)) : `${n} B`; }

const BUSY = new Set(['accepted', 'fetching', 'validating', 'provisioning', 'starting_agent', 'uploading',
  'installing', 'starting', 'verifying', 'destroying']);

function badge(state) {
  const cls = state === 'running' ? 'ok' : state === 'failed' ? 'bad' : BUSY.has(state) ? 'busy' : 'idle';
  return h('span', { class: `badge ${cls}`, 'data-state': state }, state.replace('_', ' '));
}

function errorBox(id) {
  return h('div', { id, class: 'error', role: 'alert', hidden: true });
}

function showError(box, err) {
  box.textContent = err ? (err.message || String(err)) : '';
  box.hidden = !err;
}

// Marks the input named by an API error's field, and clears the others.
function markField(form, field, errId) {
  for (const el of form.querySelectorAll('input, select')) {
    const hit = field && el.name === field;
    el.toggleAttribute('aria-invalid', hit);
    if (hit) { el.setAttribute('aria-invalid', 'true'); el.setAttribute('aria-describedby', errId); el.focus(); }
    else el.removeAttribute('aria-describedby');
  }
}

function field(label, input, hint) {
  const id = input.id || `f-${input.name}`;
  input.id = id;
  const hintEl = hint ? h('span', { class: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hintEl);
}

function setView(title, ...nodes) {
  document.title = `${title} · ADS`;
  main.replaceChildren(...nodes);
  main.focus({ preventScroll: true });  // screen readers start at the new view
}

function every(ms, f) {
  const t = setInterval(f, ms);
  cleanup.push(() => clearInterval(t));
}

// ---------- routing ----------
async function route() {
  for (const f of cleanup) f();
  cleanup = [];
  const hash = location.hash || '#/';
  if (!session.token) { if (hash !== '#/login') { location.hash = '#/login'; return; } return renderLogin(); }
  if (!me) {
    try { me = await api('GET', '/api/v1/whoami'); } catch { session.token = ''; location.hash = '#/login'; return; }
  }
  showChrome(true);
  const m = hash.match(/^#\/d\/([0-9a-z]{26})$/);
  for (const a of document.querySelectorAll('[data-nav]')) a.removeAttribute('aria-current');
  if (m) return renderDeployment(m[1]);
  if (hash === '#/access') { mark('access'); return renderAccess(); }
  if (hash === '#/login') { location.hash = '#/'; return; }
  mark('deployments');
  return renderDeployments();
}

function mark(nav) { document.querySelector(`[data-nav="${nav}"]`)?.setAttribute('aria-current', 'page'); }

function showChrome(on) {
  document.getElementById('nav').hidden = !on;
  document.getElementById('who').hidden = !on;
  if (on && me) {
    document.getElementById('who-name').textContent = `${me.name} (${me.role})`;
    document.querySelector('[data-nav="access"]').textContent = me.role === 'admin' ? 'Users & tokens' : 'Tokens';
  }
}

function signedOut(message) {
  session.token = '';
  me = null;
  showChrome(false);
  location.hash = '#/login';
  if (message) setTimeout(() => announce(message), 100);
}

setUnauthorizedHandler(() => signedOut('Your session has ended; please sign in again.'));

document.getElementById('signout').addEventListener('click', async () => {
  // end this session on the server (it revokes a sign-in's token, never an
  // API token such as the first-start admin's), then forget it here
  try { await api('POST', '/api/v1/logout'); } catch { /* gone anyway */ }
  signedOut('Signed out.');
});

// ---------- sign in ----------
function renderLogin() {
  showChrome(false);
  const err = errorBox('login-error');
  const name = h('input', { name: 'name', autocomplete: 'username', required: true });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const btn = h('button', { type: 'submit' }, 'Sign in');
  // filled in when the server says single sign-on is configured
  const sso = h('div', { class: 'sso', id: 'sso', hidden: true });
  const form = h('form', { class: 'card narrow', 'aria-labelledby': 'login-title', novalidate: true },
    h('h1', { id: 'login-title' }, 'Sign in to ADS'),
    err, field('User name', name), field('Password', pass), h('div', { class: 'row' }, btn), sso);
  api('GET', '/api/v1/login').then((m) => {
    if (!m || !Array.isArray(m.methods) || !m.methods.includes('oidc') || !m.oidc_login) return;
    const link = h('a', { class: 'button secondary', href: m.oidc_login, id: 'sso-link' }, 'Sign in with SSO');
    // the sign-in carries a nonce of this tab, which the server hands back
    // with the token: only a sign-in started here can sign this tab in
    link.addEventListener('click', (ev) => {
      ev.preventDefault();
      location.assign(`${m.oidc_login}?ui=${encodeURIComponent(startSso())}`);
    });
    sso.replaceChildren(h('p', { class: 'or' }, 'or'), link);
    sso.hidden = false;
  }).catch(() => { /* an older server: password only */ });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(err, null);
    btn.disabled = true;
    try {
      await login(name.value.trim(), pass.value);
      me = await api('GET', '/api/v1/whoami');
      announce(`Signed in as ${me.name}`);
      location.hash = '#/';
    } catch (e) {
      showError(err, e);
      pass.value = '';
      pass.focus();
    } finally {
      btn.disabled = false;
    }
  });
  setView('Sign in', form);
  name.focus();
  if (pendingLoginError) {
    showError(err, pendingLoginError);
    pendingLoginError = null;
  }
}

// ---------- deployments ----------
function deployForm() {
  const err = errorBox('deploy-error');
  const source = h('input', { name: 'source', required: true, spellcheck: 'false', autocomplete: 'off',
    placeholder: 'https://git.example.org/labs/lab.git' });
  const ref = h('input', { name: 'ref', spellcheck: 'false', autocomplete: 'off', placeholder: 'v1.0' });
  const name = h('input', { name: 'name', spellcheck: 'false', autocomplete: 'off' });
  const provider = h('input', { name: 'provider', spellcheck: 'false', autocomplete: 'off', placeholder: 'lxd' });
  const shared = h('input', { name: 'shared', type: 'checkbox', id: 'f-shared' });
  const btn = h('button', { type: 'submit' }, 'Deploy');
  const canDeploy = me.role !== 'viewer';
  const form = h('form', { class: 'card', 'aria-labelledby': 'deploy-title', novalidate: true },
    h('h2', { id: 'deploy-title' }, 'Deploy a lab'),
    err,
    h('div', { class: 'grid' },
      field('Git URL or server path', source, 'The lab\'s repository'),
      field('Ref', ref, 'Tag, branch or commit; empty: the default branch'),
      field('Name', name, 'Empty: taken from the URL'),
      field('Provider', provider, 'Empty: the server\'s default')),
    h('div', { class: 'row' },
      h('label', { class: 'check', for: 'f-shared' }, shared, ' Shared: any deployer may manage it'),
      btn));
  if (!canDeploy) {
    for (const el of form.querySelectorAll('input, button')) el.disabled = true;
    form.append(h('p', { class: 'hint' }, 'Viewers cannot deploy.'));
  }
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(err, null);
    markField(form, '', '');
    const body = { source: source.value.trim() };
    if (ref.value.trim()) body.ref = ref.value.trim();
    if (name.value.trim()) body.name = name.value.trim();
    if (provider.value.trim()) body.provider = provider.value.trim();
    if (shared.checked) body.shared = true;
    btn.disabled = true;
    try {
      const d = await api('POST', '/api/v1/deployments', body);
      announce(`Deployment ${d.name} accepted`);
      location.hash = `#/d/${d.id}`;
    } catch (e) {
      showError(err, e.field ? `${e.field}: ${e.message}` : e);
      markField(form, e.field, 'deploy-error');
    } finally {
      btn.disabled = false;
    }
  });
  return form;
}

function renderDeployments() {
  const tbody = h('tbody');
  const err = errorBox('list-error');
  const empty = h('p', { class: 'empty', hidden: true }, 'No deployments yet.');
  const table = h('table', { class: 'list' },
    h('caption', { class: 'sr-only' }, 'Deployments, newest first'),
    h('thead', {}, h('tr', {}, ['Name', 'State', 'Stable URL', 'Address', 'Owner', 'Age'].map((t) => h('th', { scope: 'col' }, t)))),
    tbody);
  const showDestroyed = h('input', { type: 'checkbox', id: 'show-destroyed' });
  async function load() {
    try {
      const r = await api('GET', '/api/v1/deployments?limit=200');
      const list = r.deployments.filter((d) => showDestroyed.checked || d.state !== 'destroyed').reverse();
      tbody.replaceChildren(...list.map((d) => h('tr', { 'data-id': d.id },
        h('td', {}, h('a', { href: `#/d/${d.id}` }, d.name), h('div', { class: 'sub mono' }, d.id)),
        h('td', {}, badge(d.state)),
        h('td', { class: 'mono' }, d.stable_url ? h('a', { href: d.stable_url, rel: 'noreferrer' }, d.stable_url) : '—'),
        h('td', { class: 'mono' }, d.url ? h('a', { href: d.url, rel: 'noreferrer' }, d.address) : d.address || '—'),
        h('td', {}, d.owner),
        h('td', {}, h('time', { datetime: d.created_at, title: d.created_at }, age(d.created_at))))));
      empty.hidden = list.length > 0;
      table.hidden = list.length === 0;
      showError(err, null);
    } catch (e) { showError(err, e); }
  }
  showDestroyed.addEventListener('change', load);
  setView('Deployments',
    h('h1', {}, 'Deployments'),
    deployForm(),
    h('section', { class: 'card', 'aria-labelledby': 'list-title' },
      h('div', { class: 'row spread' }, h('h2', { id: 'list-title' }, 'All deployments'),
        h('label', { class: 'check', for: 'show-destroyed' }, showDestroyed, ' Show destroyed')),
      err, empty, table));
  load();
  every(4000, load);
}

// ---------- one deployment ----------
function renderDeployment(id) {
  const abort = new AbortController();
  cleanup.push(() => abort.abort());
  let d = null;
  let jobs = [];
  let backups = [];
  let releases = [];
  const err = errorBox('op-error');
  const title = h('h1', {}, 'Deployment');
  const stateSlot = h('span', { id: 'state' });
  const facts = h('dl', { class: 'facts' });
  const progress = h('progress', { id: 'progress', max: 9, value: 0, 'aria-labelledby': 'progress-label' });
  const progressLabel = h('span', { id: 'progress-label' }, '');
  const progressBox = h('div', { class: 'progress', hidden: true }, progressLabel, progress);
  const failure = h('div', { class: 'error', hidden: true });
  const healthBox = h('dl', { class: 'facts health', id: 'health' });
  const healthNote = h('p', { class: 'hint', id: 'health-note' }, '');
  const jobsBody = h('tbody');
  const logPre = h('pre', { id: 'log', class: 'log', role: 'log', 'aria-live': 'off', 'aria-label': 'Deployment log', tabindex: '0' });
  const backupSel = h('select', { name: 'backup', id: 'f-backup' });
  const releaseRef = h('input', { name: 'ref', id: 'f-release-ref', placeholder: 'tag, branch or commit', autocomplete: 'off' });
  const releasesBody = h('tbody', { id: 'releases' });
  const buttons = {};
  const opButton = (op, label, cls = '') => {
    const b = h('button', { type: 'button', class: cls, 'data-op': op }, label);
    b.addEventListener('click', () => runOp(op));
    buttons[op] = b;
    return b;
  };
  const dialogTitle = h('h2', { id: 'confirm-title' }, 'Destroy?');
  const dialog = h('dialog', { id: 'confirm-destroy', 'aria-labelledby': 'confirm-title' }, dialogTitle);

  async function runOp(op) {
    if (op === 'destroy') { openDestroy(); return; }
    if (op === 'delete-backup') { openDeleteBackup(); return; }
    if (op === 'releases') { openRelease(); return; }
    showError(err, null);
    const body = op === 'restore' ? { backup: backupSel.value } : undefined;
    buttons[op].disabled = true;
    try {
      const j = await api('POST', `/api/v1/deployments/${id}/${op}`, body);
      announce(`${op} requested (job ${j.id})`);
      await refresh();
    } catch (e) { showError(err, e); await refresh(); }
  }

  // A confirmation whose safe choice (Cancel) has the focus; `path` is DELETEd on OK.
  function confirmDelete(titleText, text, okLabel, path, done) {
    const cancel = h('button', { type: 'button', class: 'ghost', value: 'cancel' }, 'Cancel');
    const ok = h('button', { type: 'button', class: 'danger', value: 'ok' }, okLabel);
    dialogTitle.textContent = titleText;
    dialog.replaceChildren(dialogTitle, h('p', {}, text), h('div', { class: 'row end' }, cancel, ok));
    cancel.addEventListener('click', () => dialog.close());
    ok.addEventListener('click', async () => {
      dialog.close();
      showError(err, null);
      try {
        await api('DELETE', path);
        announce(done);
      } catch (e) { showError(err, e); }
      await refresh();
    });
    dialog.showModal();
    cancel.focus();
  }

  function openDestroy() {
    confirmDelete(`Destroy ${d ? d.name : id}?`,
      'The machine and everything on it are removed. Backups are kept and can be restored into a new machine.',
      'Destroy', `/api/v1/deployments/${id}`, 'destroy requested');
  }

  // A confirmation for a POST of `body` to `path`; Cancel has the focus.
  function confirmPost(titleText, text, okLabel, path, body, done) {
    const cancel = h('button', { type: 'button', class: 'ghost', value: 'cancel' }, 'Cancel');
    const ok = h('button', { type: 'button', value: 'ok' }, okLabel);
    dialogTitle.textContent = titleText;
    dialog.replaceChildren(dialogTitle, h('p', {}, text), h('div', { class: 'row end' }, cancel, ok));
    cancel.addEventListener('click', () => dialog.close());
    ok.addEventListener('click', async () => {
      dialog.close();
      showError(err, null);
      try {
        const j = await api('POST', path, body);
        announce(`${done} (job ${j.id})`);
      } catch (e) { showError(err, e); }
      await refresh();
    });
    dialog.showModal();
    cancel.focus();
  }

  function openRelease() {
    const ref = releaseRef.value.trim();
    confirmPost(`Release ${ref || (d && d.ref) || 'the default branch'}?`,
      'A new machine is built and tested beside the one serving now; the lab switches to it only if everything passes. ' +
      'The serving version is kept for a rollback.',
      'Release', `/api/v1/deployments/${id}/releases`, ref ? { ref } : {}, 'release requested');
  }

  function openRollback(r) {
    confirmPost(`Roll back to release #${r.seq}?`,
      `Release #${r.seq} (${r.ref || 'default branch'} @ ${(r.commit || '').slice(0, 12)}) serves again, with the data served now.`,
      'Roll back', `/api/v1/deployments/${id}/rollback`, { release: r.id }, 'rollback requested');
  }

  function openDeleteBackup() {
    const b = backups.find((x) => x.id === backupSel.value);
    if (!b) return;
    confirmDelete(`Delete the backup of ${b.created_at.replace('T', ' ').slice(0, 19)}?`,
      'Its data archive and its machine snapshot are removed for good; it can no longer be restored.',
      'Delete backup', `/api/v1/deployments/${id}/backups/${b.id}`, 'backup deletion requested');
  }

  // Deploy on git push: the branch a deployment follows, how, and a commit
  // waiting for the release under way (docs/operators/git-push.md).
  function trackText(t) {
    if (!t) return 'no branch (releases by hand)';
    const how = t.poll_s > 0 ? `webhook ${t.hook_path}, and polled every ${t.poll_s} s` : `webhook ${t.hook_path}`;
    return `${t.branch} · ${how}` + (t.pending_commit ? ` · next: ${t.pending_commit.slice(0, 12)}` : '');
  }

  function paint() {
    if (!d) return;
    document.title = `${d.name} · ADS`;
    title.textContent = d.name;
    const prev = stateSlot.dataset.state;
    stateSlot.replaceChildren(badge(d.state));
    if (prev && prev !== d.state) announce(`${d.name} is now ${d.state.replace('_', ' ')}`);
    stateSlot.dataset.state = d.state;
    const row = (k, v) => [h('dt', {}, k), h('dd', {}, v)];
    facts.replaceChildren(
      ...row('Id', h('span', { class: 'mono' }, d.id)),
      ...row('Source', h('span', { class: 'mono' }, d.source + (d.ref ? ` @ ${d.ref}` : ''))),
      ...row('Commit', h('span', { class: 'mono' }, d.commit ? d.commit.slice(0, 12) : '—')),
      ...row('Provider', d.provider),
      ...row('Machine', h('span', { class: 'mono' }, d.machine || '—')),
      ...row('Stable URL', d.stable_url
        ? h('a', { href: d.stable_url, id: 'stable-url', class: 'mono', rel: 'noreferrer' }, d.stable_url) : '—'),
      ...row('Address', h('span', { class: 'mono', id: 'address' }, d.address || '—')),
      ...row('Lab URL', d.url ? h('a', { href: d.url, id: 'lab-url', rel: 'noreferrer' }, d.url) : '—'),
      ...row('Tracks', h('span', { id: 'track' }, trackText(d.track))),
      ...row('Owner', d.owner + (d.shared ? ' (shared)' : '')),
      ...row('Created', h('time', { datetime: d.created_at, title: d.created_at }, age(d.created_at))));
    const inPipeline = d.step && d.state !== 'running';
    progressBox.hidden = !inPipeline;
    if (d.step) {
      progress.max = d.step.of;
      progress.value = d.step.index;
      progressLabel.textContent = `Step ${d.step.index} of ${d.step.of}: ${d.step.name.replace('_', ' ')}`;
    }
    failure.hidden = d.state !== 'failed';
    failure.textContent = d.state === 'failed' ? `Failed at ${d.failed_step}: ${d.error}` : '';
    const active = jobs.find((j) => j.state === 'queued' || j.state === 'running');
    const s = d.state;
    const canManage = me.role === 'admin' || (me.role === 'deployer' && (d.owner === me.name || d.shared));
    const allow = {
      start: s === 'stopped',
      stop: s === 'running',
      restart: s === 'running' || s === 'stopped',
      test: s === 'running',
      backup: s === 'running',
      restore: backups.length > 0 && ['running', 'stopped', 'destroyed'].includes(s),
      'delete-backup': backups.length > 0 && ['running', 'stopped', 'failed', 'destroyed'].includes(s),
      releases: s === 'running',
      destroy: ['running', 'stopped', 'failed'].includes(s),
    };
    for (const [op, b] of Object.entries(buttons)) b.disabled = !canManage || !!active || !allow[op];
    backupSel.disabled = backups.length === 0;
    releaseRef.disabled = !canManage || !!active || s !== 'running';
    releasesBody.replaceChildren(...releases.slice().reverse().map((r) => {
      const back = h('button', { type: 'button', class: 'ghost', 'data-rollback': r.id }, `Roll back to #${r.seq}…`);
      back.disabled = !canManage || !!active || s !== 'running' || r.state !== 'kept';
      back.addEventListener('click', () => openRollback(r));
      return h('tr', { 'data-seq': String(r.seq) },
        h('td', {}, `#${r.seq}`),
        h('td', {}, h('span', { class: `badge ${r.state === 'serving' ? 'ok' : r.state === 'failed' ? 'bad' : r.state === 'building' ? 'busy' : ''}` }, r.state)),
        h('td', { class: 'mono' }, (r.ref || '—') + (r.commit ? ` @ ${r.commit.slice(0, 12)}` : '')),
        h('td', {}, r.by || '—'),
        h('td', {}, h('time', { datetime: r.created_at, title: r.created_at }, age(r.created_at))),
        h('td', { class: 'wrap' }, r.error || ''),
        h('td', {}, r.state === 'kept' ? back : ''));
    }));
    jobsBody.replaceChildren(...jobs.slice().reverse().slice(0, 10).map((j) => h('tr', {},
      h('td', {}, j.kind), h('td', {}, h('span', { class: `badge ${j.state === 'succeeded' ? 'ok' : j.state === 'failed' ? 'bad' : 'busy'}` }, j.state)),
      h('td', {}, j.step || '—'),
      h('td', {}, h('time', { datetime: j.created_at, title: j.created_at }, age(j.created_at))),
      h('td', { class: 'wrap' }, j.error || (j.result && j.result.passed !== undefined ? (j.result.passed ? 'passed' : 'did not pass') : '')))));
  }

  async function refresh() {
    try {
      [d, { jobs }, { backups }, { releases }] = await Promise.all([
        api('GET', `/api/v1/deployments/${id}`),
        api('GET', `/api/v1/deployments/${id}/jobs`),
        api('GET', `/api/v1/deployments/${id}/backups`),
        api('GET', `/api/v1/deployments/${id}/releases`)]);
      const keep = backupSel.value;
      backupSel.replaceChildren(...(backups.length ? backups.slice().reverse().map((b) =>
        h('option', { value: b.id }, `${b.created_at.replace('T', ' ').slice(0, 19)} · ${bytes(b.size_bytes)}`))
        : [h('option', { value: '' }, 'no backups yet')]));
      if (keep) backupSel.value = keep;
      paint();
    } catch (e) { if (e instanceof ApiError && e.status === 404) { main.replaceChildren(h('h1', {}, 'Not found'), h('p', {}, e.message)); abort.abort(); } else showError(err, e); }
  }

  async function loadHealth() {
    if (!d || d.state !== 'running') {
      healthBox.replaceChildren();
      healthNote.textContent = d ? `Health figures are reported while the lab is running (it is ${d.state.replace('_', ' ')}).` : '';
      return;
    }
    try {
      const x = await api('GET', `/api/v1/deployments/${id}/health`);
      const row = (k, v, idv) => [h('dt', {}, k), h('dd', { id: idv }, v)];
      const memUsed = x.memory.total_kb - x.memory.available_kb;
      const diskUsed = x.disk ? x.disk.total_kb - x.disk.free_kb : 0;
      healthBox.replaceChildren(
        ...row('Uptime', duration(x.uptime_s), 'health-uptime'),
        ...row('Memory', h('span', {}, `${kb(memUsed)} of ${kb(x.memory.total_kb)} used `, meter(memUsed, x.memory.total_kb, 'memory')), 'health-memory'),
        ...row('Disk', x.disk ? h('span', {}, `${kb(diskUsed)} of ${kb(x.disk.total_kb)} used `, meter(diskUsed, x.disk.total_kb, 'disk')) : '—', 'health-disk'),
        ...row('Load', x.load.map((l) => l.toFixed(2)).join(' · '), 'health-load'),
        ...row('Processes', String(x.processes), 'health-procs'));
      healthNote.textContent = `Checked ${new Date(x.checked_at).toLocaleTimeString()}`;
    } catch (e) {
      healthBox.replaceChildren();
      healthNote.textContent = `No health figures: ${e.message}`;
    }
  }

  function meter(v, max, what) { return h('meter', { min: 0, max, value: v, high: max * 0.9, 'aria-label': `${what} used` }); }

  let logLines = 0;
  function appendLog(l) {
    const atBottom = logPre.scrollTop + logPre.clientHeight >= logPre.scrollHeight - 8;
    const line = h('span', { class: `ln ${l.stream}` },
      h('span', { class: 'ts' }, l.time.slice(11, 19)), ' ', h('span', { class: 'st' }, l.step), ' ', l.text, '\n');
    logPre.append(line);
    if (++logLines > 5000) { logPre.firstChild.remove(); logLines--; }
    if (atBottom) logPre.scrollTop = logPre.scrollHeight;
  }

  const manage = h('section', { class: 'card', 'aria-labelledby': 'ops-title' },
    h('h2', { id: 'ops-title' }, 'Operations'), err,
    h('div', { class: 'row wrap-row' },
      opButton('start', 'Start'), opButton('stop', 'Stop'), opButton('restart', 'Restart'),
      opButton('test', 'Test'), opButton('backup', 'Back up'),
      h('span', { class: 'restore' }, h('label', { for: 'f-backup' }, 'Backup'), backupSel, opButton('restore', 'Restore'),
        opButton('delete-backup', 'Delete backup…', 'ghost')),
      opButton('destroy', 'Destroy…', 'danger')));
  setView('Deployment',
    h('p', { class: 'crumbs' }, h('a', { href: '#/' }, '← Deployments')),
    h('div', { class: 'row spread' }, title, stateSlot),
    progressBox, failure,
    h('div', { class: 'cols' },
      h('section', { class: 'card', 'aria-labelledby': 'facts-title' }, h('h2', { id: 'facts-title' }, 'Details'), facts),
      h('section', { class: 'card', 'aria-labelledby': 'health-title' },
        h('div', { class: 'row spread' }, h('h2', { id: 'health-title' }, 'Health'),
          h('button', { type: 'button', class: 'ghost', 'aria-label': 'Refresh health', onclick: loadHealth }, 'Refresh')),
        healthBox, healthNote)),
    manage,
    h('section', { class: 'card', 'aria-labelledby': 'releases-title' }, h('h2', { id: 'releases-title' }, 'Releases'),
      h('div', { class: 'row wrap-row' }, h('label', { for: 'f-release-ref' }, 'New version'), releaseRef,
        opButton('releases', 'Release…')),
      h('table', { class: 'list' }, h('thead', {}, h('tr', {}, ['Release', 'State', 'Version', 'By', 'Age', 'Note', ''].map((t) => h('th', { scope: 'col' }, t)))), releasesBody)),
    h('section', { class: 'card', 'aria-labelledby': 'jobs-title' }, h('h2', { id: 'jobs-title' }, 'Recent jobs'),
      h('table', { class: 'list' }, h('thead', {}, h('tr', {}, ['Job', 'State', 'Step', 'Age', 'Result'].map((t) => h('th', { scope: 'col' }, t)))), jobsBody)),
    h('section', { class: 'card', 'aria-labelledby': 'log-title' }, h('h2', { id: 'log-title' }, 'Log'), logPre),
    dialog);

  refresh().then(loadHealth);
  every(3000, refresh);
  every(15000, loadHealth);
  let lastState = '';
  streamEvents(`/api/v1/deployments/${id}/events`, {
    signal: abort.signal,
    onEvent: (type, data) => {
      if (type === 'log') appendLog(data);
      else if (type === 'state') {
        d = data;
        paint();
        if (data.state !== lastState) { lastState = data.state; refresh().then(loadHealth); }
      }
    },
  });
}

// ---------- users and tokens ----------
function renderAccess() {
  const isAdmin = me.role === 'admin';
  const sections = [h('h1', {}, isAdmin ? 'Users & tokens' : 'Tokens')];
  if (isAdmin) {
    const err = errorBox('user-error');
    const tbody = h('tbody');
    const name = h('input', { name: 'name', id: 'u-name', autocomplete: 'off', required: true });
    const role = h('select', { name: 'role', id: 'u-role' }, ['viewer', 'deployer', 'admin'].map((r) => h('option', { value: r }, r)));
    const pass = h('input', { name: 'password', id: 'u-password', type: 'password', autocomplete: 'new-password' });
    const form = h('form', { 'aria-labelledby': 'newuser-title', novalidate: true },
      h('h3', { id: 'newuser-title' }, 'New user'), err,
      h('div', { class: 'grid' }, field('Name', name), field('Role', role),
        field('Password', pass, '12 characters or more; empty: token access only')),
      h('div', { class: 'row' }, h('button', { type: 'submit' }, 'Create user')));
    async function load() {
      const r = await api('GET', '/api/v1/users');
      tbody.replaceChildren(...r.users.map((u) => h('tr', {},
        h('td', {}, u.name), h('td', {}, u.disabled ? `${u.role} (disabled)` : u.role), h('td', {}, u.password ? 'yes' : 'no'),
        h('td', {}, h('time', { datetime: u.created_at, title: u.created_at }, age(u.created_at))))));
    }
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      showError(err, null);
      markField(form, '', '');
      const body = { name: name.value.trim(), role: role.value };
      if (pass.value) body.password = pass.value;
      try {
        const u = await api('POST', '/api/v1/users', body);
        announce(`User ${u.name} created`);
        form.reset();
        await load();
      } catch (e) { showError(err, e.field ? `${e.field}: ${e.message}` : e); markField(form, e.field, 'user-error'); }
    });
    sections.push(h('section', { class: 'card', 'aria-labelledby': 'users-title' },
      h('h2', { id: 'users-title' }, 'Users'),
      h('table', { class: 'list' }, h('thead', {}, h('tr', {}, ['Name', 'Role', 'Password', 'Created'].map((t) => h('th', { scope: 'col' }, t)))), tbody),
      form));
    load().catch((e) => showError(err, e));
  }

  const terr = errorBox('token-error');
  const tbody = h('tbody');
  const forUser = h('input', { name: 'user', id: 't-user', autocomplete: 'off', value: me.name });
  const tname = h('input', { name: 'name', id: 't-name', autocomplete: 'off', required: true });
  const ttl = h('input', { name: 'ttl_s', id: 't-ttl', type: 'number', min: 0, step: 1, value: 86400 });
  const secretBox = h('div', { class: 'secret', role: 'status', hidden: true });
  const show = h('button', { type: 'button', class: 'ghost' }, 'Show');
  async function load() {
    showError(terr, null);
    const who = forUser.value.trim() || me.name;
    try {
      const r = await api('GET', `/api/v1/tokens?user=${encodeURIComponent(who)}`);
      tbody.replaceChildren(...r.tokens.slice().reverse().map((t) => {
        const revoke = h('button', { type: 'button', class: 'ghost small', disabled: !!t.revoked_at }, 'Revoke');
        revoke.setAttribute('aria-label', `Revoke token ${t.name}`);
        revoke.addEventListener('click', async () => {
          try { await api('DELETE', `/api/v1/tokens/${t.id}`); announce(`Token ${t.name} revoked`); await load(); } catch (e) { showError(terr, e); }
        });
        const status = t.revoked_at ? 'revoked' : (t.expires_at && Date.parse(t.expires_at) < Date.now()) ? 'expired' : 'active';
        return h('tr', {}, h('td', {}, t.name, t.id === me.token.id ? h('span', { class: 'sub' }, ' (this session)') : null),
          h('td', {}, status), h('td', {}, t.expires_at ? t.expires_at.replace('T', ' ').slice(0, 16) : 'never'),
          h('td', {}, h('time', { datetime: t.created_at, title: t.created_at }, age(t.created_at))), h('td', {}, revoke));
      }));
    } catch (e) { showError(terr, e); }
  }
  show.addEventListener('click', load);
  const form = h('form', { 'aria-labelledby': 'newtoken-title', novalidate: true },
    h('h3', { id: 'newtoken-title' }, 'New token'),
    h('div', { class: 'grid' }, field('Token name', tname), field('Lifetime (seconds)', ttl, '0: never expires (not for a token made from a browser sign-in, which lasts 30 days at most by default)')),
    h('div', { class: 'row' }, h('button', { type: 'submit' }, 'Create token')), secretBox);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(terr, null);
    markField(form, '', '');
    const body = { name: tname.value.trim(), ttl_s: Number(ttl.value || 0) };
    const who = forUser.value.trim();
    if (who && who !== me.name) body.user = who;
    try {
      const t = await api('POST', '/api/v1/tokens', body);
      secretBox.replaceChildren(h('p', {}, `Token ${t.name} for ${who || me.name}; copy it now, it is not shown again:`),
        h('code', { class: 'mono', id: 'token-secret' }, t.secret));
      secretBox.hidden = false;
      await load();
    } catch (e) { showError(terr, e.field ? `${e.field}: ${e.message}` : e); markField(form, e.field, 'token-error'); }
  });
  sections.push(h('section', { class: 'card', 'aria-labelledby': 'tokens-title' },
    h('h2', { id: 'tokens-title' }, 'API tokens'), terr,
    isAdmin ? h('div', { class: 'row bottom' }, field('Tokens of user', forUser), show) : null,
    h('table', { class: 'list' }, h('thead', {}, h('tr', {}, ['Name', 'Status', 'Expires', 'Created', h('span', { class: 'sr-only' }, 'Actions')].map((t) => h('th', { scope: 'col' }, t)))), tbody),
    form));
  setView(isAdmin ? 'Users & tokens' : 'Tokens', ...sections);
  load();
}

// After single sign-on the server sends the browser to
// /#token=<secret>&sso=<nonce>: the token is taken only when the nonce is the
// one this tab made when its SSO link was clicked (kept in sessionStorage,
// one use). Anything else in #token= (a link someone sent, meant to sign this
// browser into their account) is dropped and leaves the session as it was.
// Either way the fragment leaves the address bar and the history at once
// (replaceState adds no entry).
const SSO_KEY = 'ads.sso';
function startSso() {
  const b = crypto.getRandomValues(new Uint8Array(24));
  const nonce = btoa(String.fromCharCode(...b)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  sessionStorage.setItem(SSO_KEY, nonce);
  return nonce;
}
let pendingFragmentNotice = null;
function takeTokenFromFragment() {
  if (!location.hash.startsWith('#token=')) return false;
  const m = location.hash.match(/^#token=([^&]+)&sso=([A-Za-z0-9_-]+)$/);
  history.replaceState(null, '', `${location.pathname}${location.search}#/`);
  const expected = sessionStorage.getItem(SSO_KEY);
  sessionStorage.removeItem(SSO_KEY);
  if (!m || !expected || m[2] !== expected) {
    pendingFragmentNotice = 'A sign-in link that was not started in this tab was ignored.';
    return false;
  }
  session.token = decodeURIComponent(m[1]);
  me = null;
  return true;
}

// A refused single sign-on sends the browser to /#error=<reason>: shown on
// the sign-in page, and taken out of the address bar like a token.
let pendingLoginError = null;
function takeErrorFromFragment() {
  const m = location.hash.match(/^#error=([^&]*)$/);
  if (!m) return false;
  history.replaceState(null, '', `${location.pathname}${location.search}#/`);
  pendingLoginError = decodeURIComponent(m[1]) || 'single sign-on failed';
  return true;
}

function noticeIgnoredFragment() {
  if (!pendingFragmentNotice) return;
  const text = pendingFragmentNotice;
  pendingFragmentNotice = null;
  setTimeout(() => announce(text), 100);
}
window.addEventListener('hashchange', () => {
  takeErrorFromFragment();
  takeTokenFromFragment();
  route().then(noticeIgnoredFragment);
});
takeErrorFromFragment();
if (takeTokenFromFragment()) {
  route().then(() => { if (me) announce(`Signed in as ${me.name}`); });
} else {
  route().then(noticeIgnoredFragment);
}
