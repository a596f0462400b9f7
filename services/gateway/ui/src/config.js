// The dashboard's settings as the gateway wrote them into the page shell
// (<meta name="fleetwatch-config">, also at /api/settings): the theme pages start in, how
// often they read the REST API again, whether live updates are on, and how many workers a
// page draws at once.

const DEFAULTS = {
  theme: 'dark',
  auto_refresh: 2,
  real_time_enabled: true,
  update_interval: 0,
  max_workers_shown: 50,
};

let cached = null;

export function settings() {
  if (cached) return cached;
  let given = {};
  try {
    given = JSON.parse(document.querySelector('meta[name="fleetwatch-config"]')?.content || '{}');
  } catch {
    // A shell without settings (a page opened from disk): the defaults.
  }
  cached = { ...DEFAULTS, ...given };
  return cached;
}
