-- The role a site controller logs in as (directly, or as the role behind its Supabase key): it may add
-- readings and read them back for gap recovery, register its devices, and nothing else. No UPDATE and
-- no DELETE: a controller can never rewrite or remove history (which is why uploads use
-- ignore-duplicates, not merge-duplicates).
DO $migration$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'flux_controller') THEN
        CREATE ROLE flux_controller NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- roles are cluster-wide: another database's migration created it meanwhile
END
$migration$;

GRANT USAGE ON SCHEMA flux TO flux_controller;
GRANT SELECT, INSERT ON
    flux.mg_bess_readings, flux.mg_meter_readings, flux.mg_emlite_readings, flux.mg_heat_readings,
    flux.mg_controller_decisions, flux.mg_controller_events, flux.mg_device_registry
    TO flux_controller;
GRANT SELECT ON flux.market_data, flux.market_data_types TO flux_controller;
