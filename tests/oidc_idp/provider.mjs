// A real OpenID Connect provider (the certified npm `oidc-provider`) on loopback, for corpus's OAuth tests.
// tests/oidc_idp.py starts it; by hand:
//   node tests/oidc_idp/provider.mjs --port 0 --client-id c --client-secret s \
//     --redirect-uri http://127.0.0.1:8765/oauth/callback --users '{"hana": {"email": "hana@example.com", "groups": ["hr"]}}'
// Sign-in and consent are oidc-provider's own development interactions: any password is accepted for a known login.
// Prints one JSON line, {"ready": true, "issuer": ...}, to stdout once it listens; exits when stdin closes, so a killed
// test run leaves no orphan.
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: options } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.OIDC_IDP_PORT ?? '0' },
    'client-id': { type: 'string', default: process.env.OIDC_IDP_CLIENT_ID ?? 'corpus-test' },
    'client-secret': { type: 'string', default: process.env.OIDC_IDP_CLIENT_SECRET },
    'redirect-uri': { type: 'string', multiple: true, default: (process.env.OIDC_IDP_REDIRECT_URIS ?? '').split(' ').filter(Boolean) },
    users: { type: 'string', default: process.env.OIDC_IDP_USERS ?? '{}' },
  },
});

function fail(reason) {
  process.stderr.write(`provider.mjs: ${reason}\n`);
  process.exit(2);
}

if (!options['client-secret']) fail('--client-secret (or OIDC_IDP_CLIENT_SECRET) is required');
if (options['redirect-uri'].length === 0) fail('at least one --redirect-uri (or OIDC_IDP_REDIRECT_URIS) is required');
let users;
try {
  users = JSON.parse(options.users);
} catch (error) {
  fail(`--users is not JSON: ${error.message}`);
}

// Listen first on the requested (or a free) port: the issuer URL has to name the port the provider really has.
const server = createServer();
server.listen(Number(options.port), '127.0.0.1');
await new Promise((resolve, reject) => {
  server.once('listening', resolve);
  server.once('error', reject);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: options['client-id'],
    client_secret: options['client-secret'],
    redirect_uris: options['redirect-uri'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  async findAccount(_ctx, id) {
    const user = users[id];
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: user.sub ?? id,
          email: user.email,
          email_verified: user.email_verified ?? true,
          name: user.name,
          groups: user.groups ?? [],
        };
      },
    };
  },
  // `groups` comes with the profile scope too, so a relying party asking only for openid/email/profile gets it, as
  // with an IdP whose groups claim is configured for every token (Entra ID, Keycloak's group mapper).
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'groups'],
    groups: ['groups'],
  },
  // Scope-requested claims go in the ID token as well as userinfo (the relying party reads them from the ID token).
  conformIdTokenClaims: false,
  features: {
    devInteractions: { enabled: true },
    revocation: { enabled: true },
  },
});

server.on('request', provider.callback());
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
process.stdout.write(`${JSON.stringify({ ready: true, issuer })}\n`);
