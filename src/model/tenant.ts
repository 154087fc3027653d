// Whose data a row is. Tenants come from bearer tokens (src/security/tokens.ts); without
// authentication every row is the default tenant's, and so are rows stored before tenants existed.

/** The tenant of data received or read without auth.tokensFile. */
export const DEFAULT_TENANT = 'default';
