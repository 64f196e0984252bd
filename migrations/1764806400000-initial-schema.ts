import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Users, certificate bindings, signing keys, revoked tokens, admin actions, detection findings
 * and the time-partitioned login_attempts table with its partition helper.
 */
export class InitialSchema1764806400000 implements MigrationInterface {
  name = 'InitialSchema1764806400000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE users (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        username text NOT NULL,
        normalized_username text NOT NULL,
        password_hash text,
        roles text[] NOT NULL DEFAULT '{}',
        disabled boolean NOT NULL DEFAULT false,
        tokens_valid_after timestamptz NOT NULL DEFAULT to_timestamp(0),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(
      `CREATE UNIQUE INDEX users_normalized_username_key ON users (normalized_username)`,
    );

    await queryRunner.query(`
      CREATE TABLE certificate_bindings (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        fingerprint char(64) NOT NULL,
        subject text NOT NULL,
        issuer text NOT NULL,
        serial_number text NOT NULL,
        not_before timestamptz NOT NULL,
        not_after timestamptz NOT NULL,
        certificate_login boolean NOT NULL DEFAULT false,
        revoked_at timestamptz,
        suspended_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(
      `CREATE UNIQUE INDEX certificate_bindings_fingerprint_key ON certificate_bindings (fingerprint)`,
    );
    await queryRunner.query(
      `CREATE INDEX certificate_bindings_user_id_idx ON certificate_bindings (user_id)`,
    );

    await queryRunner.query(`
      CREATE TABLE signing_keys (
        kid text PRIMARY KEY,
        algorithm text NOT NULL DEFAULT 'EdDSA',
        public_jwk jsonb NOT NULL,
        private_key_pem text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        retired_at timestamptz,
        publish_until timestamptz
      )`);

    await queryRunner.query(`
      CREATE TABLE revoked_tokens (
        jti text PRIMARY KEY,
        expires_at timestamptz NOT NULL,
        revoked_at timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(
      `CREATE INDEX revoked_tokens_expires_at_idx ON revoked_tokens (expires_at)`,
    );

    await queryRunner.query(`
      CREATE TABLE admin_actions (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        occurred_at timestamptz NOT NULL DEFAULT now(),
        actor text NOT NULL,
        actor_user_id uuid,
        action text NOT NULL,
        target text,
        detail jsonb NOT NULL DEFAULT '{}',
        client_ip inet,
        request_id text
      )`);
    await queryRunner.query(
      `CREATE INDEX admin_actions_occurred_at_idx ON admin_actions (occurred_at)`,
    );

    await queryRunner.query(`
      CREATE TABLE findings (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        rule text NOT NULL,
        severity text NOT NULL,
        mode text NOT NULL,
        subject text NOT NULL,
        incident_key text NOT NULL,
        first_seen timestamptz NOT NULL,
        last_seen timestamptz NOT NULL,
        evidence jsonb NOT NULL DEFAULT '{}',
        status text NOT NULL DEFAULT 'open',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(`CREATE UNIQUE INDEX findings_incident_key ON findings (incident_key)`);
    await queryRunner.query(`CREATE INDEX findings_last_seen_idx ON findings (last_seen DESC, id)`);

    await queryRunner.query(`
      CREATE TABLE audit_writers (
        instance_id text PRIMARY KEY,
        settled_until timestamptz NOT NULL,
        heartbeat_at timestamptz NOT NULL DEFAULT now()
      )`);

    await this.createAttempts(queryRunner);
  }

  private async createAttempts(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE login_attempts (
        id uuid NOT NULL,
        occurred_at timestamptz NOT NULL,
        method text NOT NULL,
        outcome text NOT NULL,
        count integer NOT NULL DEFAULT 1 CHECK (count >= 1),
        username text,
        username_length integer,
        user_id uuid,
        client_ip inet,
        forwarded_for text,
        user_agent text,
        cert_fingerprint char(64),
        cert_subject text,
        cert_issuer text,
        cert_serial text,
        request_id text,
        instance_id text NOT NULL,
        latency_ms integer,
        PRIMARY KEY (occurred_at, id)
      ) PARTITION BY RANGE (occurred_at)`);
    // One index per filter the audit API offers; each serves newest-first paging.
    const indexes: Array<[string, string]> = [
      ['login_attempts_id_idx', '(id)'],
      ['login_attempts_username_idx', '(username, occurred_at DESC, id DESC)'],
      ['login_attempts_client_ip_idx', '(client_ip, occurred_at DESC, id DESC)'],
      ['login_attempts_outcome_idx', '(outcome, occurred_at DESC, id DESC)'],
      ['login_attempts_fingerprint_idx', '(cert_fingerprint, occurred_at DESC, id DESC)'],
      ['login_attempts_user_id_idx', '(user_id, occurred_at DESC)'],
    ];
    for (const [name, columns] of indexes) {
      await queryRunner.query(`CREATE INDEX ${name} ON login_attempts ${columns}`);
    }
    // The audit trail is append-only for everyone, owner included; retention drops partitions.
    await queryRunner.query(`
      CREATE FUNCTION login_attempts_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'login_attempts is append-only';
      END $$`);
    await queryRunner.query(`
      CREATE TRIGGER login_attempts_no_update_or_delete
      BEFORE UPDATE OR DELETE ON login_attempts
      FOR EACH ROW EXECUTE FUNCTION login_attempts_append_only()`);
    // Daily partitions, created ahead by this function; no DEFAULT partition exists, so old
    // partitions can be detached concurrently.
    await queryRunner.query(`
      CREATE FUNCTION ensure_login_attempt_partitions(first_day date, day_count integer)
      RETURNS integer LANGUAGE plpgsql AS $$
      DECLARE
        day date;
        created integer := 0;
        partition_name text;
      BEGIN
        FOR offset_days IN 0 .. day_count - 1 LOOP
          day := first_day + offset_days;
          partition_name := 'login_attempts_' || to_char(day, 'YYYYMMDD');
          IF to_regclass(partition_name) IS NULL THEN
            EXECUTE format(
              'CREATE TABLE %I PARTITION OF login_attempts FOR VALUES FROM (%L) TO (%L)',
              partition_name, day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
            created := created + 1;
          END IF;
        END LOOP;
        RETURN created;
      END $$`);
    await queryRunner.query(
      `SELECT ensure_login_attempt_partitions((now() AT TIME ZONE 'UTC')::date - 2, 16)`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE login_attempts`);
    await queryRunner.query(`DROP FUNCTION ensure_login_attempt_partitions(date, integer)`);
    await queryRunner.query(`DROP FUNCTION login_attempts_append_only()`);
    for (const table of [
      'audit_writers',
      'findings',
      'admin_actions',
      'revoked_tokens',
      'signing_keys',
      'certificate_bindings',
      'users',
    ]) {
      await queryRunner.query(`DROP TABLE ${table}`);
    }
  }
}
