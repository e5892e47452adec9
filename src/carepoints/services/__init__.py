"""Patient services (STYLE.md `services/`): what every good hospital account offers beside
booking and points — triage guidance (智能导诊), cost estimates (费用估算), reports, online
consultation, queue calls, admissions, demand-driven quotas, recommendations and the
satisfaction loop. Each sits above rewards and engagement, below analytics, uses the lower
domains' services, and hands the behaviour it produces to the spine as events."""
