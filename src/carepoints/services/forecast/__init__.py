"""Demand-driven quotas (智能号源): demand per department, weekday and hour forecast from booking
history, session capacities suggested from it, and the admin applying a suggestion through the
scheduling service."""
