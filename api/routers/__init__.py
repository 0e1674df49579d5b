"""The /v1 routes, one router per resource: health, events, alerts, review, metrics."""
