import { Module } from '@nestjs/common';
import { TokensModule } from '../tokens/tokens.module';
import { AdminActionsModule } from './admin-actions.module';
import { AdminController } from './admin.controller';

/**
 * Administration over HTTP (`/admin/...`): admins only (AdminGuard), rate-limited per actor by
 * the `admin` throttler, and every action recorded in `admin_actions`.
 */
@Module({
  imports: [TokensModule, AdminActionsModule],
  controllers: [AdminController],
})
export class AdminModule {}
