export * from './pki';
export * from './dev-pki';
