-- Example (not applied by `flux-edge cloud migrate`): row-level security on Supabase so that one site's
-- key can only write and read its own devices. Each site gets its own JWT (signed with the project's
-- JWT secret) whose claims carry `role: flux_controller` and `site: <site id>`; PostgREST switches to
-- that role and exposes the claims through auth.jwt(). A device belongs to the site the registry says.
--
-- The registry itself: a site may register devices only under its own site id, and may not take over a
-- device already registered to another site (the primary key conflict is ignored, never updated).

ALTER TABLE flux.mg_device_registry ENABLE ROW LEVEL SECURITY;
CREATE POLICY site_registry_read ON flux.mg_device_registry FOR SELECT TO flux_controller
    USING (site = auth.jwt() ->> 'site');
CREATE POLICY site_registry_insert ON flux.mg_device_registry FOR INSERT TO flux_controller
    WITH CHECK (site = auth.jwt() ->> 'site');

-- Readings: insert and read only rows of devices registered to the caller's site.
DO $example$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['mg_bess_readings', 'mg_meter_readings', 'mg_emlite_readings', 'mg_heat_readings',
                             'mg_controller_decisions', 'mg_controller_events'] LOOP
        EXECUTE format('ALTER TABLE flux.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY site_rows_insert ON flux.%I FOR INSERT TO flux_controller
            WITH CHECK (EXISTS (SELECT 1 FROM flux.mg_device_registry r
                                WHERE r.device_id = %I.device_id AND r.site = auth.jwt() ->> 'site'))$p$, t, t);
        EXECUTE format($p$CREATE POLICY site_rows_select ON flux.%I FOR SELECT TO flux_controller
            USING (EXISTS (SELECT 1 FROM flux.mg_device_registry r
                           WHERE r.device_id = %I.device_id AND r.site = auth.jwt() ->> 'site'))$p$, t, t);
    END LOOP;
END
$example$;
