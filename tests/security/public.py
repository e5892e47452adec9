"""Routes anyone may call without a credential (each is rate-limited or harmless)."""

PUBLIC: frozenset[tuple[str, str]] = frozenset({
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"),
    ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/docs/oauth2-redirect"), ("GET", "/redoc"),
    ("GET", "/fhir/metadata"),
    ("POST", "/api/v1/auth/token"), ("POST", "/api/v1/auth/otp"),
    ("GET", "/api/v1/dev/otp"),  # 404 unless CAREPOINTS_DEV_OTP=1 (SQLite only)
    # (ops.governance) the programme's terms and version history are public information
    ("GET", "/api/v1/programme/terms"), ("GET", "/api/v1/programme/versions"), ("GET", "/terms"),
    # (ops.wechat) rate-limited per address; purpose=bind needs a patient token
    ("GET", "/api/v1/auth/wechat/authorize"), ("POST", "/api/v1/auth/wechat/login"),
})
