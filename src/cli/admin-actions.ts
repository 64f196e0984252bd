import * as os from 'node:os';
import { DataSource } from 'typeorm';

function operatorName(): string {
  try {
    return `cli:${os.userInfo().username}`;
  } catch {
    // Containers may run under a UID with no passwd entry.
    return `cli:uid-${process.getuid?.() ?? 'unknown'}`;
  }
}

/**
 * Records a change made from the CLI in `admin_actions`, beside those made over HTTP, so the
 * trail shows every change whichever door it came through. `detail` must hold no secret.
 */
export async function recordAdminAction(
  dataSource: DataSource,
  action: string,
  target: string,
  detail: Record<string, unknown> = {},
): Promise<void> {
  await dataSource.query(
    `INSERT INTO admin_actions (actor, action, target, detail) VALUES ($1, $2, $3, $4::jsonb)`,
    [operatorName(), action, target, JSON.stringify(detail)],
  );
}
