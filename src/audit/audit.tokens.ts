export const AUDIT_WRITER = Symbol('AUDIT_WRITER');
export const USERNAME_DIGEST = Symbol('USERNAME_DIGEST');
