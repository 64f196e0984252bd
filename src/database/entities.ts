import { User } from '../users/user.entity';

/** Entities mapped by TypeORM; the schema itself comes only from migrations. */
export const ENTITIES = [User];
