-- The reference-compatible tables (names, columns and units exactly as the field's Supabase project)
-- and flux-edge's own tables for Emlite, heat meters, controller decisions and events.
CREATE SCHEMA IF NOT EXISTS flux;

CREATE TABLE IF NOT EXISTS flux.mg_device_registry (
    device_id uuid PRIMARY KEY,
    site text,
    name text,
    type text
);

CREATE TABLE IF NOT EXISTS flux.mg_bess_readings (
    time timestamptz NOT NULL,
    device_id uuid NOT NULL,
    id uuid DEFAULT gen_random_uuid(),
    created_at timestamptz DEFAULT now(),
    soe real,
    target_power real
);
CREATE UNIQUE INDEX IF NOT EXISTS mg_bess_readings_device_id_time_key ON flux.mg_bess_readings (device_id, time);
CREATE INDEX IF NOT EXISTS mg_bess_readings_time_idx ON flux.mg_bess_readings (time DESC);

CREATE TABLE IF NOT EXISTS flux.mg_meter_readings (
    time timestamptz NOT NULL,
    device_id uuid NOT NULL,
    id uuid DEFAULT gen_random_uuid(),
    created_at timestamptz DEFAULT now(),
    frequency real,
    voltage_line_average real,
    current_phase_a real,
    current_phase_b real,
    current_phase_c real,
    current_phase_average real,
    power_phase_a_active real,
    power_phase_b_active real,
    power_phase_c_active real,
    power_total_active real,
    power_total_reactive real,
    power_total_apparent real,
    power_factor_total real,
    energy_imported_active real,
    energy_exported_active real,
    energy_imported_phase_a_active real,
    energy_imported_phase_b_active real,
    energy_imported_phase_c_active real,
    energy_exported_phase_a_active real,
    energy_exported_phase_b_active real,
    energy_exported_phase_c_active real,
    energy_imported_reactive real,
    energy_exported_reactive real,
    energy_imported_apparent real,
    energy_exported_apparent real
);
CREATE UNIQUE INDEX IF NOT EXISTS mg_meter_readings_device_id_time_key ON flux.mg_meter_readings (device_id, time);
CREATE INDEX IF NOT EXISTS mg_meter_readings_time_idx ON flux.mg_meter_readings (time DESC);

CREATE TABLE IF NOT EXISTS flux.market_data_types (
    id integer PRIMARY KEY,
    name text NOT NULL
);
INSERT INTO flux.market_data_types (id, name) VALUES (1, 'imbalance_price'), (2, 'imbalance_volume')
ON CONFLICT (id) DO NOTHING;

CREATE TABLE IF NOT EXISTS flux.market_data (
    time timestamptz NOT NULL,
    type integer REFERENCES flux.market_data_types (id),
    created_at timestamptz DEFAULT now(),
    value real
);
CREATE UNIQUE INDEX IF NOT EXISTS market_data_type_time_key ON flux.market_data (type, time);

-- flux-edge's own tables: same conventions (uuid device_id, timestamptz time, (device_id, time) unique).
CREATE TABLE IF NOT EXISTS flux.mg_emlite_readings (
    time timestamptz NOT NULL,
    device_id uuid NOT NULL,
    created_at timestamptz DEFAULT now(),
    import_a_kwh real,
    export_a_kwh real,
    import_b_kwh real,
    export_b_kwh real,
    reactive_import_a_kvarh real,
    reactive_export_a_kvarh real,
    reactive_import_b_kvarh real,
    reactive_export_b_kvarh real,
    power_kw real,
    balance_gbp real,
    voltage_v real,
    signal_csq real,
    clock_drift_s real
);
CREATE UNIQUE INDEX IF NOT EXISTS mg_emlite_readings_device_id_time_key ON flux.mg_emlite_readings (device_id, time);
CREATE INDEX IF NOT EXISTS mg_emlite_readings_time_idx ON flux.mg_emlite_readings (time DESC);

CREATE TABLE IF NOT EXISTS flux.mg_heat_readings (
    time timestamptz NOT NULL,
    device_id uuid NOT NULL,
    created_at timestamptz DEFAULT now(),
    energy_kwh real,
    volume_m3 real,
    power_kw real,
    flow_m3h real,
    flow_temperature_c real,
    return_temperature_c real,
    temperature_difference_k real,
    error_flags integer
);
CREATE UNIQUE INDEX IF NOT EXISTS mg_heat_readings_device_id_time_key ON flux.mg_heat_readings (device_id, time);
CREATE INDEX IF NOT EXISTS mg_heat_readings_time_idx ON flux.mg_heat_readings (time DESC);

-- One row per control tick, filed under the battery's device id.
CREATE TABLE IF NOT EXISTS flux.mg_controller_decisions (
    time timestamptz NOT NULL,
    device_id uuid NOT NULL,
    created_at timestamptz DEFAULT now(),
    target_kw real,
    body jsonb NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS mg_controller_decisions_device_id_time_key
    ON flux.mg_controller_decisions (device_id, time);

-- Events have no device: device_id is the site's own id (uuid5 of the site slug) and the natural key is
-- event_id, a uuid5 of the event's content (time, kind, level, message, data), so a resend is idempotent.
-- (device_id, time) stays unique-per-event because event_id is unique and time has microseconds; the
-- uniqueness that uploads rely on (on_conflict) is event_id.
CREATE TABLE IF NOT EXISTS flux.mg_controller_events (
    time timestamptz NOT NULL,
    device_id uuid NOT NULL,
    created_at timestamptz DEFAULT now(),
    event_id uuid NOT NULL,
    kind text NOT NULL,
    level text NOT NULL,
    message text NOT NULL,
    data jsonb
);
CREATE UNIQUE INDEX IF NOT EXISTS mg_controller_events_event_id_key ON flux.mg_controller_events (event_id, time);
CREATE INDEX IF NOT EXISTS mg_controller_events_device_id_time_idx ON flux.mg_controller_events (device_id, time);
