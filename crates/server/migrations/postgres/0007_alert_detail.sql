-- Version 7 (issue 9): what an alert is about, in words (a hostile-exit notice names the
-- exits and keys from the report's warnings).
ALTER TABLE alerts ADD COLUMN detail TEXT;
