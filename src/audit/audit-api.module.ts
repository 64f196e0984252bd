import { Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { TokensModule } from '../tokens/tokens.module';
import { ATTEMPT_CURSOR_CODEC, AttemptCursorCodec } from './audit-cursor';
import { AuditController } from './audit.controller';
import { AuditQueryService } from './audit-query.service';
import { loadUsernameKey } from './username-key';

/**
 * The admin audit API (/audit/attempts, /audit/summary, /audit/export). Needs the global
 * AuditModule (username digests), AdminActionsModule and the root module's DataSource.
 */
@Module({
  imports: [TokensModule],
  controllers: [AuditController],
  providers: [
    AuditQueryService,
    {
      // Cursors are signed with the key every replica shares, so any replica continues a walk.
      provide: ATTEMPT_CURSOR_CODEC,
      useFactory: (config: AppConfig) => new AttemptCursorCodec(loadUsernameKey(config)),
      inject: [APP_CONFIG],
    },
  ],
})
export class AuditApiModule {}
