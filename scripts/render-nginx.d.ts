/** Types for scripts/render-nginx.js, which runs without a build step. */
export type NginxVariables = Record<string, string | string[]>;

export const COMPOSE_PRESET: Readonly<Record<string, string>>;
export const IDENTITY_INCLUDE_PATH: string;
export const NGINX_DIR: string;
export const TEMPLATE_PATH: string;

export function renderNginx(variables: NginxVariables, template?: string): string;
export function renderNginxFile(file: string, variables: NginxVariables, template?: string): string;
export function templateVariables(template?: string): string[];
