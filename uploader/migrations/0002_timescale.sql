-- With TimescaleDB available: hypertables on time and 5/30-minute continuous aggregates, as in the field.
-- Without it (plain PostgreSQL, the tests): nothing to do; the plain tables and indexes of 0001 stand.
DO $migration$
DECLARE
    t text;
BEGIN
    -- Installed already, or installable (available and preloaded, as TimescaleDB requires).
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
       AND NOT (EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
                AND current_setting('shared_preload_libraries', true) LIKE '%timescaledb%') THEN
        RAISE NOTICE 'timescaledb not available: keeping plain tables';
        RETURN;
    END IF;
    CREATE EXTENSION IF NOT EXISTS timescaledb;
    FOREACH t IN ARRAY ARRAY['mg_bess_readings', 'mg_meter_readings', 'mg_emlite_readings', 'mg_heat_readings',
                             'mg_controller_decisions', 'mg_controller_events', 'market_data'] LOOP
        PERFORM create_hypertable(format('flux.%I', t)::regclass, 'time', if_not_exists => true,
                                  migrate_data => true);
    END LOOP;

    -- Averages for powers, min/max for the energy registers (counters: max - min is the slot's energy).
    FOREACH t IN ARRAY ARRAY['5 minutes', '30 minutes'] LOOP
        EXECUTE format($q$
            CREATE MATERIALIZED VIEW IF NOT EXISTS flux.%I WITH (timescaledb.continuous) AS
            SELECT time_bucket(%L::interval, time) AS bucket, device_id,
                   avg(soe) AS soe_avg, min(soe) AS soe_min, avg(target_power) AS target_power_avg
            FROM flux.mg_bess_readings GROUP BY 1, 2 WITH NO DATA$q$,
            'mg_bess_readings_' || replace(t, ' minutes', 'm'), t);
        EXECUTE format($q$
            CREATE MATERIALIZED VIEW IF NOT EXISTS flux.%I WITH (timescaledb.continuous) AS
            SELECT time_bucket(%L::interval, time) AS bucket, device_id,
                   avg(frequency) AS frequency_avg, avg(voltage_line_average) AS voltage_line_average_avg,
                   avg(current_phase_average) AS current_phase_average_avg,
                   avg(power_total_active) AS power_total_active_avg,
                   avg(power_total_reactive) AS power_total_reactive_avg,
                   avg(power_total_apparent) AS power_total_apparent_avg,
                   avg(power_factor_total) AS power_factor_total_avg,
                   min(energy_imported_active) AS energy_imported_active_min,
                   max(energy_imported_active) AS energy_imported_active_max,
                   min(energy_exported_active) AS energy_exported_active_min,
                   max(energy_exported_active) AS energy_exported_active_max
            FROM flux.mg_meter_readings GROUP BY 1, 2 WITH NO DATA$q$,
            'mg_meter_readings_' || replace(t, ' minutes', 'm'), t);
        EXECUTE format($q$
            CREATE MATERIALIZED VIEW IF NOT EXISTS flux.%I WITH (timescaledb.continuous) AS
            SELECT time_bucket(%L::interval, time) AS bucket, device_id,
                   avg(power_kw) AS power_kw_avg,
                   min(import_a_kwh) AS import_a_kwh_min, max(import_a_kwh) AS import_a_kwh_max,
                   min(export_a_kwh) AS export_a_kwh_min, max(export_a_kwh) AS export_a_kwh_max
            FROM flux.mg_emlite_readings GROUP BY 1, 2 WITH NO DATA$q$,
            'mg_emlite_readings_' || replace(t, ' minutes', 'm'), t);
        EXECUTE format($q$
            CREATE MATERIALIZED VIEW IF NOT EXISTS flux.%I WITH (timescaledb.continuous) AS
            SELECT time_bucket(%L::interval, time) AS bucket, device_id,
                   avg(power_kw) AS power_kw_avg, avg(flow_temperature_c) AS flow_temperature_c_avg,
                   avg(return_temperature_c) AS return_temperature_c_avg,
                   min(energy_kwh) AS energy_kwh_min, max(energy_kwh) AS energy_kwh_max
            FROM flux.mg_heat_readings GROUP BY 1, 2 WITH NO DATA$q$,
            'mg_heat_readings_' || replace(t, ' minutes', 'm'), t);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['mg_bess_readings', 'mg_meter_readings', 'mg_emlite_readings', 'mg_heat_readings'] LOOP
        PERFORM add_continuous_aggregate_policy(format('flux.%I', t || '_5m')::regclass,
            start_offset => interval '1 day', end_offset => interval '5 minutes',
            schedule_interval => interval '5 minutes', if_not_exists => true);
        PERFORM add_continuous_aggregate_policy(format('flux.%I', t || '_30m')::regclass,
            start_offset => interval '3 days', end_offset => interval '30 minutes',
            schedule_interval => interval '30 minutes', if_not_exists => true);
    END LOOP;
END
$migration$;
