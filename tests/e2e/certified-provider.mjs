// A certified OpenID provider on 127.0.0.1 for the single sign-on tests:
// panva's oidc-provider from npm (an OpenID Certified implementation), pinned
// in package.json to 8.8.1, the last line that runs on Debian 12's Node 18.
// Left in its default, conformant settings where they matter to ADS: PKCE,
// RS256 ID tokens, and the claims asked for by scope (email) given at the
// userinfo endpoint, not in the ID token (OpenID Connect Core 5.4). Its
// development interactions stand in for the provider's own sign-in: a form
// that takes any login name (one of `accounts`) and a consent page.
// `accounts`: { login: { email, email_verified } }.
import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

export async function startCertifiedProvider({ clientId, clientSecret, redirectUri, accounts }) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('base64url'), alg: 'RS256', use: 'sig' };
  const server = createServer();
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve); });
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_post',
    }],
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    async findAccount(ctx, sub) {
      if (!Object.hasOwn(accounts, sub)) return undefined;
      return { accountId: sub, async claims() { return { sub, ...accounts[sub] }; } };
    },
  });
  const errors = [];
  provider.on('server_error', (ctx, err) => errors.push(err.message));
  server.on('request', provider.callback());
  return {
    issuer,
    errors,
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
  };
}
