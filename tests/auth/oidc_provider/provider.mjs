// The tests' authorization server: oidc-provider (a certified OpenID Connect provider) configured for SMART on FHIR.
//
// Configuration comes as JSON in MEDAGENT_OIDC_CONFIG (written by tests/auth/conftest.py):
//   port, issuer                  where it listens and the issuer it names
//   resources                     {FHIR base URL: {scopes?: "..."}}: the audiences it issues JWT access tokens for
//   default_resource              the audience of a token request that names none (SMART's client_credentials)
//   clients                       client metadata (public app with PKCE; private_key_jwt backend clients with jwks)
//   client_scopes                 {client_id: "scopes"}: the resource scopes a client may get (default: all)
//   access_token_ttl              {client_id: seconds}: access token lifetime (default 300)
//   launches                      {launch id: {patient}}: the EHR's launch contexts (EHR launch)
//   standalone_patient            the patient the user picks in a standalone launch that asks for launch/patient
//   users                         {login: fhirUser reference} (default Practitioner/<login>)
//
// What SMART adds to plain OAuth, and where it is configured here:
//   * `aud` (SMART's audience parameter) is an extra parameter and the default resource indicator, so the access
//     token is a JWT whose `aud` is the FHIR server (features.resourceIndicators);
//   * `launch` is an extra parameter checked against the EHR's launch contexts; `launch/patient` without it (a
//     standalone launch) gets the standalone patient;
//   * the launch context becomes a `patient` claim of the access token (extraTokenClaims) and the `patient`
//     parameter of the token response (a middleware after the token endpoint), on refresh too;
//   * `fhirUser` is a scope giving the `fhirUser` claim of the ID token;
//   * refresh tokens for `offline_access` or `online_access` (issueRefreshToken);
//   * PKCE required; private_key_jwt for backend services (RS384 / ES384 assertions).
import { generateKeyPairSync, randomBytes } from 'node:crypto';

import Provider, { errors } from 'oidc-provider';

const config = JSON.parse(process.env.MEDAGENT_OIDC_CONFIG);

const CONTEXTS = ['patient', 'user', 'system'];
const TYPES = ['*', 'Patient', 'Observation', 'Condition', 'MedicationRequest', 'AllergyIntolerance', 'Encounter',
  'Procedure', 'Immunization', 'DiagnosticReport', 'Practitioner', 'Organization'];
const PERMISSIONS = [];
for (let mask = 1; mask < 32; mask += 1) {
  PERMISSIONS.push([...'cruds'].filter((_, i) => mask & (1 << i)).join(''));
}
const ALL_RESOURCE_SCOPES = CONTEXTS.flatMap((c) => TYPES.flatMap((t) => PERMISSIONS.map((p) => `${c}/${t}.${p}`)))
  .join(' ');

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: `test-${randomBytes(4).toString('hex')}`, use: 'sig', alg: 'RS256' };

// launch contexts of issued authorization codes and refresh tokens (this server keeps everything in memory)
const contextByCode = new Map();
const contextByRefreshToken = new Map();

function launchContext(params) {
  const scopes = new Set((params.scope || '').split(' '));
  if (scopes.has('launch') && params.launch) return config.launches[params.launch];
  if (scopes.has('launch/patient') && config.standalone_patient) return { patient: config.standalone_patient };
  return undefined;
}

function contextOf(ctx) {
  const { params } = ctx.oidc;
  if (params.grant_type === 'authorization_code') return contextByCode.get(params.code);
  if (params.grant_type === 'refresh_token') return contextByRefreshToken.get(params.refresh_token);
  return undefined;
}

const provider = new Provider(config.issuer, {
  clients: config.clients,
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  scopes: ['openid', 'offline_access', 'online_access', 'fhirUser', 'launch', 'launch/patient'],
  claims: { openid: ['sub'], fhirUser: ['fhirUser'] },
  async findAccount(ctx, id) {
    return { accountId: id, async claims() { return { sub: id, fhirUser: (config.users || {})[id] || `Practitioner/${id}` }; } };
  },
  extraParams: {
    aud: undefined,
    launch(ctx, value) {
      if (value !== undefined && !(value in config.launches)) {
        throw new errors.InvalidRequest(`unknown launch ${JSON.stringify(value)}: this EHR has no such launch context`);
      }
    },
  },
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      async defaultResource(ctx, client, oneOf) {
        if (oneOf) return oneOf;
        return ctx.oidc.params?.aud || config.default_resource;
      },
      useGrantedResource: async () => true,
      async getResourceServerInfo(ctx, resourceIndicator, client) {
        if (!(resourceIndicator in config.resources)) throw new errors.InvalidTarget(`unknown audience ${resourceIndicator}`);
        return {
          audience: resourceIndicator,
          scope: (config.client_scopes || {})[client.clientId] || ALL_RESOURCE_SCOPES,
          accessTokenTTL: (config.access_token_ttl || {})[client.clientId] || 300,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  async extraTokenClaims(ctx) {
    const context = contextOf(ctx);
    return context ? { patient: context.patient } : undefined;
  },
  async issueRefreshToken(ctx, client, code) {
    return client.grantTypeAllowed('refresh_token') && (code.scopes.has('offline_access') || code.scopes.has('online_access'));
  },
  ttl: {
    RefreshToken: 3600,
    Session: 3600,
    Interaction: 600,
    Grant: 3600,
    AuthorizationCode: 60,
    IdToken: 300,
  },
  clientAuthMethods: ['none', 'private_key_jwt'],
  enabledJWA: { clientAuthSigningAlgValues: ['RS384', 'ES384'] },
});

provider.use(async (ctx, next) => {
  await next();
  const route = ctx.oidc?.route;
  if ((route === 'authorization' || route === 'resume') && ctx.status >= 300 && ctx.status < 400) {
    const code = new URL(ctx.response.get('location'), config.issuer).searchParams.get('code');
    const context = code && launchContext(ctx.oidc.params);
    if (context) contextByCode.set(code, context);
  }
  if (route === 'token' && ctx.status === 200 && ctx.body?.access_token) {
    const context = contextOf(ctx);
    if (context) {
      Object.assign(ctx.body, context);
      if (ctx.body.refresh_token) contextByRefreshToken.set(ctx.body.refresh_token, context);
    }
  }
});

provider.listen(config.port, '127.0.0.1', () => {
  console.log(`oidc-provider listening at ${config.issuer}`);
});
