-- The model registry (see docs/deploy.md): every registered version of every model, the
-- aliases that name the one in production, the candidate and the last stable one, and the
-- audit of every change (who, when, why). A version is never deleted; retiring it is a
-- status. Changes are planned by crates/deploy and applied here whole, in one transaction.
-- PostgreSQL twin of migrations/0009_model_registry.sql.
CREATE TABLE model_registry (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL,
    -- v{major}.{minor}.{patch}-{YYYYMMDD}: the manifest's version and the registration date.
    version TEXT NOT NULL,
    -- RFC 3339 UTC.
    created_at TEXT COLLATE "C" NOT NULL,
    -- A person or a pipeline.
    created_by TEXT NOT NULL,
    -- staging, production or retired.
    status TEXT NOT NULL,
    -- The model's directory, absolute, and its content address (the manifest's SHA-256 and
    -- its files'; vigil_model::Artifact::sha256).
    artifact_path TEXT NOT NULL,
    artifact_sha256 TEXT NOT NULL,
    -- The config the gate judged it with.
    config_sha256 TEXT NOT NULL,
    -- The training data's SHA-256, from the manifest (none for a built-in model).
    training_data_sha256 TEXT,
    parent_version TEXT,
    -- Registered without the gate (--skip-gate; the audit row says why).
    gate_skipped BOOLEAN NOT NULL,
    -- The gate's checks (JSON: layer, check, threshold, value, passed) and the SHA-256 of the
    -- gate's stored result; none when skipped.
    gate_checks TEXT,
    gate_result_sha256 TEXT,
    UNIQUE (name, version)
);
CREATE TABLE model_aliases (
    name TEXT NOT NULL,
    -- production, candidate or last_stable.
    alias TEXT NOT NULL,
    version TEXT NOT NULL,
    PRIMARY KEY (name, alias)
);
-- Append-only.
CREATE TABLE model_audit (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at TEXT COLLATE "C" NOT NULL,
    actor TEXT NOT NULL,
    -- register, promote, retire, rollback.
    action TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    reason TEXT NOT NULL,
    -- What changed, in words.
    detail TEXT NOT NULL
);
CREATE INDEX model_audit_name ON model_audit (name);
