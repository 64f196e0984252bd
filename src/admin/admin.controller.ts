import { Controller, HttpCode, Param, Post, Req, UseGuards } from '@nestjs/common';
import { SkipThrottle, ThrottlerGuard } from '@nestjs/throttler';
import type { FastifyRequest } from 'fastify';
import { GatehouseError, invalidRequest } from '../common/gatehouse.error';
import { LOGIN_THROTTLER_NAMES } from '../throttling/throttling.module';
import { LoginLimiterService } from '../throttling/login-limiter.service';
import { AdminGuard } from '../tokens/admin.guard';
import { UsersService } from '../users/users.service';
import { InvalidUsernameError } from '../users/username';
import { AdminActionsService } from './admin-actions.service';

/** The login limits of @nestjs/throttler do not apply here; only the `admin` throttler does. */
const SKIP_LOGIN_THROTTLERS = Object.fromEntries(LOGIN_THROTTLER_NAMES.map((name) => [name, true]));

/** Actions of administrators on users, each recorded in `admin_actions`. */
@Controller('admin')
@SkipThrottle(SKIP_LOGIN_THROTTLERS)
export class AdminController {
  constructor(
    private readonly users: UsersService,
    private readonly limiter: LoginLimiterService,
    private readonly actions: AdminActionsService,
  ) {}

  /**
   * Lifts the account's lockouts. The failure window is emptied at most once per window, so a
   * stolen admin token or a repeated unlock never turns into fresh guesses for an attacker.
   */
  @Post('users/:username/unlock')
  @HttpCode(204)
  @UseGuards(AdminGuard, ThrottlerGuard)
  async unlock(@Param('username') username: string, @Req() request: FastifyRequest): Promise<void> {
    const normalizedUsername = this.normalize(username);
    const user = await this.users.findByNormalizedUsername(normalizedUsername);
    if (!user) {
      throw new GatehouseError('not_found', { detail: 'unlock of an unknown user' });
    }
    const { refilled } = await this.limiter.unlock(normalizedUsername);
    await this.actions.record(request, {
      action: 'unlock',
      target: normalizedUsername,
      detail: { refilled },
    });
  }

  private normalize(username: string): string {
    try {
      return this.users.normalize(username);
    } catch (error) {
      if (error instanceof InvalidUsernameError) {
        throw invalidRequest(error.message, 'username is malformed');
      }
      throw error;
    }
  }
}
