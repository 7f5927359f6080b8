// The ADS REST API from the browser: a bearer token kept in sessionStorage
// (gone when the tab closes), JSON in and out, errors as ApiError.
const KEY = 'ads.token';

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || 'error';
    this.field = e.field || '';
  }
}

export const session = {
  get token() { return sessionStorage.getItem(KEY) || ''; },
  set token(t) { if (t) sessionStorage.setItem(KEY, t); else sessionStorage.removeItem(KEY); },
};

// Called when the server answers 401 (token expired or revoked).
let onUnauthorized = () => {};
export function setUnauthorizedHandler(f) { onUnauthorized = f; }

export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  const init = { method, headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, { error: { code: 'unavailable', message: 'the ADS server cannot be reached' } });
  }
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  if (!res.ok) {
    if (res.status === 401 && path !== '/api/v1/login') onUnauthorized();
    throw new ApiError(res.status, data);
  }
  return data;
}

export async function login(name, password) {
  const t = await api('POST', '/api/v1/login', { name, password });
  session.token = t.secret;
  return t;
}

// Server-Sent Events read with fetch(), so the Authorization header goes
// along (EventSource cannot send one). Calls onEvent(type, data, id) for each
// event; resumes after `lastId` when the stream breaks, until signal aborts.
export async function streamEvents(path, { signal, onEvent, lastId = '' }) {
  while (!signal.aborted) {
    try {
      const headers = { Authorization: `Bearer ${session.token}`, Accept: 'text/event-stream' };
      if (lastId) headers['Last-Event-ID'] = lastId;
      const res = await fetch(path, { headers, signal });
      if (res.status === 401) { onUnauthorized(); return; }
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let end;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          let type = 'message', id = '', data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const c = line.indexOf(':');
            const k = c < 0 ? line : line.slice(0, c);
            const v = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
            if (k === 'event') type = v;
            else if (k === 'id') id = v;
            else if (k === 'data') data += (data ? '\n' : '') + v;
          }
          if (id) lastId = id;
          if (data) {
            let parsed = data;
            try { parsed = JSON.parse(data); } catch { /* keep text */ }
            onEvent(type, parsed, id);
          }
        }
      }
    } catch (e) {
      if (signal.aborted) return;
    }
    // the server ends a stream after an hour, or it broke: wait, then resume
    await new Promise((r) => setTimeout(r, 2000));
  }
}
