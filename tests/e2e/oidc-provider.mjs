// A small OpenID provider on 127.0.0.1 for the single sign-on test: discovery
// document, authorization endpoint (approves one configured person at once, as
// an issuer does after its own sign-in), token endpoint (checks the client
// secret, the one-use code, the redirect URI and the PKCE verifier) and a JWKS
// with the RSA key that signs RS256 ID tokens. Records what it refused.
import { createServer } from 'node:http';
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

export async function startProvider({ clientId, clientSecret, email }) {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = b64url(randomBytes(8));
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
  const codes = new Map();  // code -> { nonce, challenge, redirectUri }
  const refusals = [];
  let issuer = '';

  const idToken = (nonce) => {
    const now = Math.floor(Date.now() / 1000);
    const header = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid }));
    const payload = b64url(JSON.stringify({ iss: issuer, aud: clientId, sub: 'e2e-person-1', email,
      email_verified: true, nonce, iat: now, exp: now + 300 }));
    const sig = sign('sha256', Buffer.from(`${header}.${payload}`), privateKey);
    return `${header}.${payload}.${b64url(sig)}`;
  };

  const json = (res, status, body) => {
    res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
    res.end(JSON.stringify(body));
  };
  const refuse = (res, error) => { refusals.push(error); json(res, 400, { error }); };

  const server = createServer((req, res) => {
    const url = new URL(req.url, issuer);
    if (req.method === 'GET' && url.pathname === '/.well-known/openid-configuration') {
      return json(res, 200, { issuer, authorization_endpoint: `${issuer}/authorize`, token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`, response_types_supported: ['code'], id_token_signing_alg_values_supported: ['RS256'],
        code_challenge_methods_supported: ['S256'] });
    }
    if (req.method === 'GET' && url.pathname === '/jwks') return json(res, 200, { keys: [jwk] });
    if (req.method === 'GET' && url.pathname === '/authorize') {
      const q = url.searchParams;
      if (q.get('client_id') !== clientId) return refuse(res, 'unauthorized_client');
      if (q.get('response_type') !== 'code' || q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge')
          || !q.get('state') || !q.get('nonce') || !(q.get('scope') || '').split(' ').includes('openid')) {
        return refuse(res, 'invalid_request');
      }
      const code = b64url(randomBytes(24));
      codes.set(code, { nonce: q.get('nonce'), challenge: q.get('code_challenge'), redirectUri: q.get('redirect_uri') });
      const back = new URL(q.get('redirect_uri'));
      back.searchParams.set('code', code);
      back.searchParams.set('state', q.get('state'));
      res.writeHead(302, { Location: back.toString() });
      return res.end();
    }
    if (req.method === 'POST' && url.pathname === '/token') {
      let body = '';
      req.on('data', (c) => { body += c; });
      req.on('end', () => {
        const f = new URLSearchParams(body);
        if (f.get('client_id') !== clientId || f.get('client_secret') !== clientSecret) return refuse(res, 'invalid_client');
        const c = codes.get(f.get('code') || '');
        codes.delete(f.get('code') || '');  // one use, whatever happens next
        if (!c || f.get('grant_type') !== 'authorization_code' || f.get('redirect_uri') !== c.redirectUri) {
          return refuse(res, 'invalid_grant');
        }
        const verifier = f.get('code_verifier') || '';
        if (b64url(createHash('sha256').update(verifier).digest()) !== c.challenge) return refuse(res, 'invalid_grant');
        return json(res, 200, { access_token: b64url(randomBytes(16)), token_type: 'Bearer', expires_in: 300,
          id_token: idToken(c.nonce) });
      });
      return undefined;
    }
    return json(res, 404, { error: 'not_found' });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${server.address().port}`;
  return { issuer, refusals, close: () => new Promise((r) => server.close(r)) };
}
