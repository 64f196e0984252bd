import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

@Entity({ name: 'users' })
export class User {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  /** As the operator wrote it, for display. */
  @Column('text')
  username: string;

  /** The form every lookup and counter uses (see normalizeUsername). */
  @Column('text', { name: 'normalized_username' })
  normalizedUsername: string;

  @Column('text', { name: 'password_hash', nullable: true })
  passwordHash: string | null;

  @Column('text', { array: true })
  roles: string[];

  @Column('boolean')
  disabled: boolean;

  /** Tokens issued before this instant are refused (disable, password change, revocation). */
  @Column('timestamptz', { name: 'tokens_valid_after' })
  tokensValidAfter: Date;

  @Column('timestamptz', { name: 'created_at' })
  createdAt: Date;

  @Column('timestamptz', { name: 'updated_at' })
  updatedAt: Date;
}
