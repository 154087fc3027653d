// Whose data a row is. Tenants come from bearer tokens (src/security/tokens.ts); without
// authentication every row is the default tenant's, and so are rows stored before tenants existed.

/** The tenant of data received or read without auth.tokensFile. */
export const DEFAULT_TENANT = 'default';

/** What a tenant may be called (tokens file, transfer --tenant): bounded and label-safe, as tenants end up in stored rows, logs and possibly metric labels. */
export const TENANT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
