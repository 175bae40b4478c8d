-- Card testing limits (API.md 13): at most FLINT_ATTEMPTS_PER_ADDRESS payment attempts a minute from
-- one client address, counted over every process. `address` is the client's IPv4 address or its IPv6
-- /64 (one host usually holds a whole /64). Failed attempts per checkout session and per payment link
-- are counted from `payments` itself, through its payments_session and payments_link indexes.

-- Each address that attempted a payment lately. An attempt locks its address's row (an upsert) before
-- it counts, so one address's attempts are decided one at a time on every process: exactly the limit
-- gets through a burst, never more and never fewer.
CREATE TABLE client_addresses (
    address         TEXT PRIMARY KEY,
    last_attempt_at TEXT NOT NULL
);
CREATE INDEX client_addresses_last_attempt ON client_addresses (last_attempt_at);

-- One row per attempt let through; a refused attempt writes none (it does not count).
CREATE TABLE address_attempts (
    id           TEXT PRIMARY KEY,
    address      TEXT NOT NULL,
    attempted_at TEXT NOT NULL
);
CREATE INDEX address_attempts_address ON address_attempts (address, attempted_at);
CREATE INDEX address_attempts_at ON address_attempts (attempted_at);
