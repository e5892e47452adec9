"""Routes anyone may call without a credential (each is rate-limited or harmless)."""

PUBLIC: frozenset[tuple[str, str]] = frozenset({
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"),
    ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/docs/oauth2-redirect"), ("GET", "/redoc"),
    ("GET", "/fhir/metadata"),
    ("POST", "/api/v1/auth/token"), ("POST", "/api/v1/auth/otp"),
    ("GET", "/api/v1/dev/otp"),  # 404 unless CAREPOINTS_DEV_OTP=1 (SQLite only)
})
