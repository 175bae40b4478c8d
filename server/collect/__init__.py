"""The one confirm path every channel calls (the embedded widget, the hosted page, a payment link): the
attempt limits, the installed apps' checkout hook, the order guard, the processor and the settling,
above the domains it orchestrates (checkout, links, payments, hooks, orders, limits)."""
