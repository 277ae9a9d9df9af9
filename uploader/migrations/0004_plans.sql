-- The planner's plans (issue 13): one row per plan, filed under the site's own id (as events are), keyed by
-- the plan id (the hash of its inputs) and the time it was made. Additive: no existing table changes.
CREATE TABLE IF NOT EXISTS flux.mg_controller_plans (
    time timestamptz NOT NULL,             -- when the plan was made
    device_id uuid NOT NULL,               -- the site's id (uuid5 of its slug), as for events
    created_at timestamptz DEFAULT now(),  -- when the row arrived
    plan_id text NOT NULL,
    inputs_hash text NOT NULL,
    status text NOT NULL,                  -- optimal | breaches | fallback
    expected_value_gbp real,
    periods jsonb NOT NULL                 -- per period: start, battery_kw, soe_end_kwh, price_p_per_kwh, net_load_kw
);
CREATE UNIQUE INDEX IF NOT EXISTS mg_controller_plans_plan_id_time_key ON flux.mg_controller_plans (plan_id, time);

GRANT SELECT, INSERT ON flux.mg_controller_plans TO flux_controller;
