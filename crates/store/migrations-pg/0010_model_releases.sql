-- Model releases (see docs/deploy.md): a candidate version's way to production, one row per
-- release, changed with the registry in the same transaction (RegistryWrite::release), and
-- the shadow run's figures per exchange session. A release is never deleted; an abort is
-- final (a new release is a new row).
-- PostgreSQL twin of migrations/0010_model_releases.sql.
CREATE TABLE model_releases (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL,
    -- The version being released, and the one in production when it started.
    candidate TEXT NOT NULL,
    production TEXT,
    -- shadow (the candidate runs beside production and never sends an order).
    stage TEXT NOT NULL,
    -- running, paused, aborted or completed.
    state TEXT NOT NULL,
    -- RFC 3339 UTC.
    started_at TEXT COLLATE "C" NOT NULL,
    started_by TEXT NOT NULL,
    reason TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    -- The last change, in words.
    detail TEXT NOT NULL
);
CREATE INDEX model_releases_name ON model_releases (name);
-- One row per release and exchange session (YYYY-MM-DD), rewritten as the session goes on:
-- the figures are vigil_deploy::shadow::ShadowSession as JSON.
CREATE TABLE model_shadow_sessions (
    release_id BIGINT NOT NULL REFERENCES model_releases (id),
    session TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    figures TEXT NOT NULL,
    PRIMARY KEY (release_id, session)
);
