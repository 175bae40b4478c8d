"""Closing what a buyer could still pay: cancelling an order (its open sessions expire with it) and
expiring a checkout session (a watched one gets its recovery link in the same transaction). These touch
orders, sessions, payments and links at once, so they sit above those domains, beside the confirm path."""
