-- The halt of a data outage, saved with the trading state (the Risk agent's JSON: the state
-- before the outage, whether an operator resumes, what else asked for a halt meanwhile, and
-- when the outage began), so that the verification after a restart can lift it as it would
-- have without the restart (see docs/recovery.md). NULL: no outage's halt.
ALTER TABLE trading_state ADD COLUMN outage_hold TEXT;
