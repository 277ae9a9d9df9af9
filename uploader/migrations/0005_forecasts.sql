-- The daemon's forecasts: one row per forecast, filed under the site's own id (as events and plans are), at
-- the time it was made. `body` is the `flux-edge forecast --json` answer (every period's bands); the
-- forecasters and notes are kept beside it for queries. Additive: no existing table changes.
CREATE TABLE IF NOT EXISTS flux.mg_controller_forecasts (
    time timestamptz NOT NULL,             -- when the forecast was made (its made_at)
    device_id uuid NOT NULL,               -- the site's id (uuid5 of its slug), as for events
    created_at timestamptz DEFAULT now(),  -- when the row arrived
    body jsonb NOT NULL,                   -- {at, periods: [{start, <quantity>: {value, lower, upper}}], ...}
    forecasters jsonb,                     -- quantity -> forecaster name
    notes jsonb                            -- what the forecasters lacked, one line each
);
CREATE UNIQUE INDEX IF NOT EXISTS mg_controller_forecasts_device_id_time_key
    ON flux.mg_controller_forecasts (device_id, time);

GRANT SELECT, INSERT ON flux.mg_controller_forecasts TO flux_controller;

-- A hypertable where TimescaleDB is installed (0002 installed it when it could); a plain table otherwise.
DO $migration$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        PERFORM create_hypertable('flux.mg_controller_forecasts'::regclass, 'time', if_not_exists => true,
                                  migrate_data => true);
    END IF;
END
$migration$;
