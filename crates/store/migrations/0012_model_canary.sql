-- A release's canary (see docs/deploy.md, canary): the step it is at (0: still in shadow;
-- k: the k-th of [release.canary] steps), the candidate's share of capital at that step
-- (a decimal fraction, as text, so that a restart resumes with the same weight even if the
-- configured steps changed), and the last exchange session (YYYY-MM-DD) before the step
-- began: the step's analysis counts the sessions after it.
ALTER TABLE model_releases ADD COLUMN canary_step INTEGER NOT NULL DEFAULT 0;
ALTER TABLE model_releases ADD COLUMN canary_weight TEXT;
ALTER TABLE model_releases ADD COLUMN step_since TEXT;
