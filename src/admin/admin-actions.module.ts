import { Global, Module } from '@nestjs/common';
import { AdminActionsService } from './admin-actions.service';

/** The `admin_actions` trail, available to every module that serves administrators. */
@Global()
@Module({
  providers: [AdminActionsService],
  exports: [AdminActionsService],
})
export class AdminActionsModule {}
