-- An instance refresh's progress (target template, batches launched), kept in its
-- `refresh` operation while it runs; other operations leave it NULL.
ALTER TABLE operations ADD COLUMN progress TEXT;
