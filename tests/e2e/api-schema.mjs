// Checks real answers of a running `ads serve` against its OpenAPI document
// (GET /api/v1/openapi.json, docs/openapi.json) with ajv (JSON Schema 2020-12,
// which OpenAPI 3.1 uses): the status must be one the operation describes,
// and a JSON body must match that response's schema.
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

export async function schemaChecker(base) {
  const res = await fetch(base + '/api/v1/openapi.json');
  if (res.status !== 200) throw new Error(`GET /api/v1/openapi.json: ${res.status}`);
  // local references point into a schema of their own named "api"
  const doc = JSON.parse((await res.text()).replaceAll('"#/components/', '"api#/components/'));
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema({ $id: 'api', components: doc.components });
  const ops = [];  // { method, re, params, responses }
  for (const [p, methods] of Object.entries(doc.paths)) {
    const params = (p.match(/\{[^}]+\}/g) || []).length;
    const re = new RegExp('^' + p.replace(/\{[^}]+\}/g, '[^/]+') + '$');
    for (const [method, op] of Object.entries(methods)) ops.push({ method: method.toUpperCase(), path: p, re, params, responses: op.responses });
  }
  const validators = new Map();
  const checked = new Set();  // "METHOD path status" seen
  let count = 0;
  // null when the answer is what the document says; else what differs
  function check(method, url, status, contentType, text) {
    const u = new URL(url, base);
    const found = ops.filter((o) => o.method === method && o.re.test(u.pathname)).sort((a, b) => a.params - b.params)[0];
    if (!found) return `${method} ${u.pathname}: no operation in the document`;
    const r = found.responses[String(status)];
    if (!r) return `${method} ${found.path}: status ${status} is not described (${Object.keys(found.responses).join(', ')})`;
    count += 1;
    checked.add(`${method} ${found.path} ${status}`);
    const schema = r.content && r.content['application/json'] && r.content['application/json'].schema;
    if (!schema) return null;
    if (!/^application\/json/.test(contentType || '')) return `${method} ${found.path} ${status}: content type ${contentType}, not JSON`;
    const key = `${method} ${found.path} ${status}`;
    if (!validators.has(key)) validators.set(key, ajv.compile(schema));
    const v = validators.get(key);
    let body;
    try { body = JSON.parse(text); } catch { return `${key}: the body is not JSON`; }
    if (!v(body)) return `${key}: ${ajv.errorsText(v.errors)} in ${text.slice(0, 300)}`;
    return null;
  }
  return { check, count: () => count, checked };
}
