import { Inject, Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { APP_CONFIG } from '../config/config.module';
import { AppConfig } from '../config/app-config';
import { HashScheduler } from './hash-scheduler';
import { PASSWORD_HASHER, PasswordHasher } from './password-hasher';
import { User } from './user.entity';
import { normalizeUsername } from './username';

export class UserExistsError extends Error {
  constructor() {
    super('a user with that name already exists');
    this.name = 'UserExistsError';
  }
}

export class UserNotFoundError extends Error {
  constructor() {
    super('no such user');
    this.name = 'UserNotFoundError';
  }
}

export const HASH_SCHEDULER = Symbol('HASH_SCHEDULER');

export interface NewUser {
  username: string;
  password?: string;
  roles?: string[];
}

/** Users: lookup by normalised name, creation, password and state changes. */
@Injectable()
export class UsersService {
  private dummyHash?: Promise<string>;

  constructor(
    @InjectRepository(User) private readonly users: Repository<User>,
    @Inject(PASSWORD_HASHER) private readonly hasher: PasswordHasher,
    @Inject(HASH_SCHEDULER) private readonly scheduler: HashScheduler,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  normalize(username: string): string {
    return normalizeUsername(username, this.config.usernameMaxBytes);
  }

  findByNormalizedUsername(normalizedUsername: string): Promise<User | null> {
    return this.users.findOneBy({ normalizedUsername });
  }

  findById(id: string): Promise<User | null> {
    return this.users.findOneBy({ id });
  }

  async require(username: string): Promise<User> {
    const user = await this.findByNormalizedUsername(this.normalize(username));
    if (!user) {
      throw new UserNotFoundError();
    }
    return user;
  }

  list(): Promise<User[]> {
    return this.users.find({ order: { normalizedUsername: 'ASC' } });
  }

  async create(newUser: NewUser): Promise<User> {
    const normalizedUsername = this.normalize(newUser.username);
    const passwordHash =
      newUser.password === undefined ? null : await this.hasher.hash(newUser.password);
    const inserted = (await this.users.query(
      `INSERT INTO users (username, normalized_username, password_hash, roles)
       VALUES ($1, $2, $3, $4)
       ON CONFLICT (normalized_username) DO NOTHING
       RETURNING id`,
      [
        newUser.username.normalize('NFKC').trim(),
        normalizedUsername,
        passwordHash,
        newUser.roles ?? [],
      ],
    )) as Array<{ id: string }>;
    if (inserted.length === 0) {
      throw new UserExistsError();
    }
    return (await this.findById(inserted[0].id)) as User;
  }

  async setPassword(username: string, password: string): Promise<void> {
    const user = await this.require(username);
    const passwordHash = await this.hasher.hash(password);
    await this.users.update(
      { id: user.id },
      { passwordHash, tokensValidAfter: new Date(), updatedAt: new Date() },
    );
  }

  async setDisabled(username: string, disabled: boolean): Promise<User> {
    const user = await this.require(username);
    const changes: Partial<User> = { disabled, updatedAt: new Date() };
    if (disabled) {
      changes.tokensValidAfter = new Date();
    }
    await this.users.update({ id: user.id }, changes);
    return { ...user, ...changes };
  }

  /** Every token of the user issued before now stops working on every replica. */
  async invalidateTokens(userId: string): Promise<void> {
    await this.users.update({ id: userId }, { tokensValidAfter: new Date() });
  }

  /**
   * Checks a password through the hash scheduler. Unknown users and users without a password are
   * checked against a dummy hash, so they cost the same as a wrong password.
   */
  async verifyPassword(user: User | null, password: string): Promise<boolean> {
    const storedHash = user?.passwordHash ?? (await this.getDummyHash());
    const matches = await this.scheduler.run(() => this.hasher.verify(storedHash, password));
    return matches && user !== null && user.passwordHash !== null;
  }

  private getDummyHash(): Promise<string> {
    this.dummyHash ??= this.hasher.hash(`dummy-${Math.random()}-${Date.now()}`);
    return this.dummyHash;
  }
}
