"""Email to buyers (docs/api.md 16): a transactional outbox of mails (receipts, recovery emails, payment
links), written in the same transaction as their cause (``service.enqueue``) and sent by the mail worker
(flint/background/mail_worker.py) over SMTP, once per cause; one-click unsubscribe for recovery emails."""
