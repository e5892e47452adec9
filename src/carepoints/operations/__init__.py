"""Running the programme day to day: manual adjustments (maker-checker), appeals of
penalties and suspensions, and fraud signals with their review queue."""
