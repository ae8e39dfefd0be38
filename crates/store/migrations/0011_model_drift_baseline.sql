-- What a registered version saw and did on the data the gate judged it with (see
-- docs/deploy.md, drift): each input feature's deciles and shares, and the per-bar return
-- of its positions; JSON (vigil_deploy::drift::Baseline). None when the gate was skipped.
ALTER TABLE model_registry ADD COLUMN drift_baseline TEXT;
-- The copy of its training data that `vigil model register` kept, named by its SHA-256
-- (`[store] snapshots`); none when the data was not found where the manifest says.
ALTER TABLE model_registry ADD COLUMN training_snapshot TEXT;
