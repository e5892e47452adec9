"""Analytics (read-only): daily roll-ups plus live figures for today; KPIs with the previous
period, the care list, the equity view, A/B experiment results, Excel/CSV export.

- `periods`: date ranges (defaults: the last 30 days), the previous period, whole weeks / months;
- `dims`: the breakdowns (age bands, channels) every roll-up and view shares;
- `report`: the one table shape every view answers (JSON, CSV, Excel and pages render it);
- `views`: the registry of views, `GET /api/v1/analytics/{name}`;
- `rollup`: the registry of daily roll-ups and the `rollup-analytics` job.

Nothing imports analytics; it reads other domains' tables through its own queries and
writes only its own roll-up tables."""
