"""Work that runs beside the server (inside `flint serve`, or alone in `flint worker`): the sweeper
and the webhook delivery worker. Both orchestrate domains; no request waits on them."""
