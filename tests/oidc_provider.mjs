// A real OpenID provider on loopback for the SSO tests: the certified oidc-provider package
// (tests/node_modules, installed by .ci/run next to axe-core). Started by tests/test_sso.py:
//   node oidc_provider.mjs PORT REDIRECT_URI ACCOUNTS_JSON
// One confidential client ("privindex", secret "privindex-secret") with that redirect URI,
// PKCE (S256) required. The people are in ACCOUNTS_JSON, read again at every sign-in (a test
// changes someone's groups between two sign-ins): {"alice": {"email": ..., "email_verified":
// true, "groups": [...], "amr": ["pwd", "mfa"]}, ...}. The login page is a plain form (the
// test types a name; no password), consent is granted at once. Prints "listening" when ready.
import { readFileSync } from 'node:fs';
import http from 'node:http';

import Provider from 'oidc-provider';

const [port, redirectUri, accountsFile] = process.argv.slice(2);
const accounts = () => JSON.parse(readFileSync(accountsFile, 'utf8'));

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: 'privindex',
    client_secret: 'privindex-secret',
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  pkce: { methods: ['S256'], required: () => true },
  claims: {
    openid: ['sub', 'amr'], // amr in every ID token, as Keycloak and Entra ID send it
    email: ['email', 'email_verified'],
    profile: ['preferred_username', 'groups'],
  },
  conformIdTokenClaims: false, // the ID token carries the scopes' claims (groups, email)
  features: { devInteractions: { enabled: false } },
  cookies: { keys: ['a test key, not a secret'] },
  async findAccount(ctx, id) {
    const person = accounts()[id];
    if (!person) return undefined;
    return {
      accountId: id,
      async claims() {
        const { amr, ...claims } = person;
        return { sub: id, preferred_username: id, ...claims };
      },
    };
  },
});

const page = (uid) => `<!doctype html><title>Team ID</title>
<form method="post" action="/interaction/${uid}">
<label for="login">Name</label><input id="login" name="login" autofocus>
<button type="submit">Sign in to Team ID</button></form>`;

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt, params, session } = details;
  if (prompt.name === 'consent') {
    const grant = new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    grant.addOIDCScope(params.scope);
    await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } },
      { mergeWithLastSubmission: true });
  }
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'text/html' });
    return res.end(page(uid));
  }
  let body = '';
  for await (const chunk of req) body += chunk;
  const login = new URLSearchParams(body).get('login');
  const person = accounts()[login];
  if (!person) {
    return provider.interactionFinished(req, res, { error: 'access_denied' });
  }
  return provider.interactionFinished(req, res, { login: { accountId: login, amr: person.amr || ['pwd'] } },
    { mergeWithLastSubmission: false });
}

const callback = provider.callback();
http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      res.writeHead(500);
      res.end(String(err));
    });
    return;
  }
  callback(req, res);
}).listen(Number(port), '127.0.0.1', () => console.log('listening'));
