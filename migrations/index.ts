import { InitialSchema1764806400000 } from './1764806400000-initial-schema';

/** Every migration, in order. Listed explicitly so the same list serves ts and compiled runs. */
export const MIGRATIONS = [InitialSchema1764806400000];
