import { Module } from '@nestjs/common';
import { TokensModule } from '../tokens/tokens.module';
import { AlertsController } from './alerts.controller';
import { DetectionEvaluatorService } from './detection-evaluator.service';
import { PasswordSprayTracker } from './password-spray-tracker';

/**
 * Detection: the rules' evaluator (one leader across replicas), the in-memory password-spraying
 * tracker, and the findings API under `/audit/alerts`.
 */
@Module({
  imports: [TokensModule],
  controllers: [AlertsController],
  providers: [DetectionEvaluatorService, PasswordSprayTracker],
  exports: [DetectionEvaluatorService, PasswordSprayTracker],
})
export class DetectionModule {}
