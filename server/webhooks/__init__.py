"""Webhook endpoints and their deliveries: the outbox rows every event fans out to, their signatures and
where Flint may send them (egress). The worker that sends them is in flint.background."""
