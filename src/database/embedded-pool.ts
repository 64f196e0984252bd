import { EventEmitter } from 'node:events';
import type { PGlite, Results } from '@electric-sql/pglite';

type QueryCallback = (error: Error | null, result?: PoolQueryResult) => void;

interface PoolQueryResult {
  rows: unknown[];
  rowCount: number;
  command: string;
  fields: Results['fields'];
}

/** Waits its turn: one holder at a time, served in arrival order. */
class Turnstile {
  private tail: Promise<void> = Promise.resolve();

  enter(): Promise<() => void> {
    let leave!: () => void;
    const turn = new Promise<void>((resolve) => (leave = resolve));
    const entered = this.tail.then(() => leave);
    this.tail = this.tail.then(() => turn);
    return entered;
  }
}

function commandOf(sql: string): string {
  return (/^\s*(\w+)/.exec(sql)?.[1] ?? '').toUpperCase();
}

async function runQuery(database: PGlite, sql: string, parameters?: unknown[]) {
  if (parameters !== undefined && parameters.length > 0) {
    const result = await database.query(sql, parameters);
    return toPoolResult(sql, result as Results);
  }
  const results = await database.exec(sql);
  return toPoolResult(sql, results[results.length - 1] ?? { rows: [], fields: [] });
}

function toPoolResult(sql: string, result: Results): PoolQueryResult {
  return {
    rows: result.rows,
    rowCount: result.affectedRows ?? result.rows.length,
    command: commandOf(sql),
    fields: result.fields,
  };
}

/**
 * A pg-compatible client bound to the embedded database. It is handed out by
 * EmbeddedPool.connect and holds the database alone until released.
 */
class EmbeddedClient extends EventEmitter {
  constructor(private readonly database: PGlite) {
    super();
  }

  query(sql: string, parameters?: unknown[] | QueryCallback, callback?: QueryCallback) {
    const values = typeof parameters === 'function' ? undefined : parameters;
    const done = typeof parameters === 'function' ? parameters : callback;
    const pending = runQuery(this.database, sql, values);
    if (done) {
      pending.then(
        (result) => done(null, result),
        (error: Error) => done(error),
      );
    }
    return pending;
  }
}

/**
 * A pg Pool stand-in for PGlite. PGlite has one session, so two TypeORM query runners sharing it
 * would share one transaction: one caller's ROLLBACK would erase another caller's INSERT. Each
 * connect() therefore waits until the previous holder released, which serialises transactions.
 */
export function createEmbeddedPoolClass(database: PGlite) {
  const turnstile = new Turnstile();

  return class EmbeddedPool extends EventEmitter {
    connect(
      callback?: (error: Error | null, client?: EmbeddedClient, release?: () => void) => void,
    ) {
      const acquired = turnstile.enter().then((leave) => {
        let released = false;
        const release = () => {
          if (!released) {
            released = true;
            leave();
          }
        };
        return { client: new EmbeddedClient(database), release };
      });
      if (callback) {
        acquired.then(({ client, release }) => callback(null, client, release), callback);
        return undefined;
      }
      return acquired.then(({ client }) => client);
    }

    async query(sql: string, parameters?: unknown[]) {
      const leave = await turnstile.enter();
      try {
        return await runQuery(database, sql, parameters);
      } finally {
        leave();
      }
    }

    end(callback?: (error: Error | null) => void) {
      callback?.(null);
      return Promise.resolve();
    }
  };
}
