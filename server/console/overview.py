"""The console's Overview (docs/api.md 15): for the signed-in person's merchant and a period of 7, 30 or 90
UTC days ending today, per day the payments that succeeded and were declined with their amounts per
currency, the refunds, the drop-off recovery funnel, the failed webhook deliveries and the failed hook
calls; as figures, as charts (charts.py) and as tables with the same numbers. No Quart here.

Every count is one bounded query in the owning domain's store (payments, refunds, checkout sessions,
webhooks, hooks; the funnel is links.summary's, the API's GET /v1/recovery/summary), by merchant and by the
period's created_at range, grouped by the day in SQL: each reads the rows of the period through an index,
never the merchant's whole history. Each part is shown only to a role that may read what it is about:
money and orders (orders:read), webhooks (webhooks:read), apps' hook calls (apps:read); the page itself
needs overview:read."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from flint import clock, money
from flint.checkout import store as session_store
from flint.console import charts, service
from flint.console.charts import Chart, Series, Table
from flint.console.service import OrdersPage, Viewer
from flint.hooks import store as hook_store
from flint.links import summary as recovery
from flint.payments import store as payment_store
from flint.refunds import store as refund_store
from flint.runtime import Runtime
from flint.webhooks import store as webhook_store

# ?period=... as the selector's links write it, and how many UTC days each is (today the last of them).
PERIODS = {"7d": 7, "30d": 30, "90d": 90}
DEFAULT_PERIOD = "7d"
LOCALE = "en"  # the console speaks English for now (routes.LOCALE)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
HOOK_FAILURES = ("timeout", "error", "invalid")  # hooks.models.OUTCOMES but "answered"


@dataclass(frozen=True)
class Period:
    key: str  # "7d"
    days: int
    first: date  # UTC, inclusive
    last: date  # UTC, inclusive: today

    @property
    def since(self) -> datetime:
        return datetime.combine(self.first, time(), UTC)

    @property
    def until(self) -> datetime:
        """The midnight after the last day: the range is [since, until)."""
        return datetime.combine(self.last + timedelta(days=1), time(), UTC)

    @property
    def dates(self) -> list[str]:
        return [(self.first + timedelta(days=n)).isoformat() for n in range(self.days)]

    @property
    def label(self) -> str:
        return f"{long_day(self.first)} to {long_day(self.last)} (UTC)"


def period_of(raw: str | None, now: datetime | None = None) -> Period:
    """The period a ?period= asks for; anything else (missing, misspelt, another number) is the last 7 days."""
    key = raw if raw in PERIODS else DEFAULT_PERIOD
    today = (now or clock.now()).astimezone(UTC).date()
    return Period(key, PERIODS[key], today - timedelta(days=PERIODS[key] - 1), today)


def short_day(day: date | str) -> str:
    day = date.fromisoformat(day) if isinstance(day, str) else day
    return f"{MONTHS[day.month - 1]} {day.day}"


def long_day(day: date | str) -> str:
    day = date.fromisoformat(day) if isinstance(day, str) else day
    return f"{WEEKDAYS[day.weekday()]} {MONTHS[day.month - 1]} {day.day}, {day.year}"


def table_day(day: date | str) -> str:
    """A day as a table's row heading: the period above the table names the year."""
    day = date.fromisoformat(day) if isinstance(day, str) else day
    return f"{WEEKDAYS[day.weekday()]} {MONTHS[day.month - 1]} {day.day}"


def amount_text(amount: int, currency: str) -> str:
    return money.format_amount(amount, currency, LOCALE)


# -- the figures ------------------------------------------------------------------------------------------

@dataclass
class PaymentDay:
    day: str  # YYYY-MM-DD, UTC
    succeeded: int = 0
    declined: int = 0
    refunds: int = 0
    paid: dict[str, int] = field(default_factory=dict)  # currency -> minor units
    refunded: dict[str, int] = field(default_factory=dict)


@dataclass
class Payments:
    days: list[PaymentDay]
    currencies: list[str]  # every currency with a payment or refund in the period, the main one (most paid) first
    succeeded: int
    declined: int
    refunds: int
    paid: dict[str, int]
    refunded: dict[str, int]


@dataclass(frozen=True)
class Funnel:
    """Drop-off recovery in the period (links.summary, as GET /v1/recovery/summary counts it)."""
    sessions: int  # checkout sessions created
    dropped_off: int
    links: int  # recovery links made
    recovered: int  # of those links, the ones the order was paid through
    in_session: int  # buyers who came back to the session they had left and paid there
    amount_recovered: dict[str, int]


@dataclass(frozen=True)
class FailureDay:
    day: str
    failed: int
    calls: int | None = None  # hook calls: every call that day, answered or not


@dataclass(frozen=True)
class Failures:
    days: list[FailureDay]

    @property
    def failed(self) -> int:
        return sum(d.failed for d in self.days)

    @property
    def calls(self) -> int:
        return sum(d.calls or 0 for d in self.days)


@dataclass(frozen=True)
class Overview:
    period: Period
    payments: Payments | None  # None: the role may not read orders and money
    funnel: Funnel | None
    deliveries: Failures | None  # None: the role may not read webhooks
    hooks: Failures | None  # None: the role may not read apps
    recent: OrdersPage | None


async def overview(rt: Runtime, who: Viewer, period: str | None = None) -> Overview:
    """The Overview for ``who`` (403 role_forbidden without overview:read), each part only for a role that
    may read it."""
    recent = await service.overview(rt, who)  # overview:read, and the newest orders for orders:read
    chosen = period_of(period)
    merchant_id = who.merchant.id
    bounds = (merchant_id, clock.iso(chosen.since), clock.iso(chosen.until))
    payments = funnel = deliveries = hooks = None
    sessions = 0
    async with rt.db.read() as conn:
        if who.may("orders:read"):
            paid_rows = await payment_store.count_payments_by_day(conn, *bounds)
            refund_rows = await refund_store.count_refunds_by_day(conn, *bounds)
            sessions = await session_store.count_sessions_created(conn, *bounds)
            payments = _payments(chosen, paid_rows, refund_rows)
        if who.may("webhooks:read"):
            failed = {r["day"]: int(r["n"]) for r in await webhook_store.count_failed_deliveries_by_day(conn, *bounds)}
            deliveries = Failures([FailureDay(day, failed.get(day, 0)) for day in chosen.dates])
        if who.may("apps:read"):
            hooks = _hook_failures(chosen, await hook_store.count_calls_by_day(conn, *bounds))
    if payments is not None:
        summary = await recovery.summary(rt, merchant_id, chosen.since, chosen.until)
        funnel = Funnel(sessions=sessions, dropped_off=summary["drop_offs"]["total"], links=summary["links_created"],
                        recovered=summary["links_paid"], in_session=summary["recovered_in_original_session"],
                        amount_recovered={a["currency"]: a["amount"] for a in summary["amount_recovered"]})
    return Overview(chosen, payments, funnel, deliveries, hooks, recent)


def _payments(period: Period, paid_rows: list[dict], refund_rows: list[dict]) -> Payments:
    days = {day: PaymentDay(day) for day in period.dates}
    paid: Counter[str] = Counter()
    refunded: Counter[str] = Counter()
    made_in: Counter[str] = Counter()  # succeeded payments per currency
    for row in paid_rows:
        day = days.get(row["day"])
        if day is None:  # the query reads these very days; a row outside them is not counted, nor an error
            continue
        n, currency = int(row["n"]), row["currency"]
        if row["status"] == "succeeded":
            day.succeeded += n
            day.paid[currency] = day.paid.get(currency, 0) + int(row["amount"])
            paid[currency] += int(row["amount"])
            made_in[currency] += n
        else:
            day.declined += n
    for row in refund_rows:
        day = days.get(row["day"])
        if day is None:
            continue
        currency = row["currency"]
        day.refunds += int(row["n"])
        day.refunded[currency] = day.refunded.get(currency, 0) + int(row["amount"])
        refunded[currency] += int(row["amount"])
    # The main currency is the one most payments were made in (amounts in different currencies do not
    # add up); a currency only refunded in the period comes after those paid in.
    currencies = sorted(set(paid) | set(refunded), key=lambda c: (-made_in[c], c))
    listed = list(days.values())
    return Payments(listed, currencies, sum(d.succeeded for d in listed), sum(d.declined for d in listed),
                    sum(d.refunds for d in listed), dict(paid), dict(refunded))


def _hook_failures(period: Period, rows: list[dict]) -> Failures:
    calls: dict[str, int] = {}
    failed: dict[str, int] = {}
    for row in rows:
        calls[row["day"]] = calls.get(row["day"], 0) + int(row["n"])
        if row["outcome"] in HOOK_FAILURES:
            failed[row["day"]] = failed.get(row["day"], 0) + int(row["n"])
    return Failures([FailureDay(day, failed.get(day, 0), calls.get(day, 0)) for day in period.dates])


# -- the charts ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Charts:
    payments: Chart | None = None
    amounts: list[Chart] = field(default_factory=list)  # one per currency, the main one first
    funnel: Chart | None = None
    deliveries: Chart | None = None
    hooks: Chart | None = None


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _busiest(days: list[str], values: list[int], what: str, text=str) -> str:
    if not any(values):
        return ""
    best = max(range(len(values)), key=lambda i: (values[i], -i))
    return f" The most on {short_day(days[best])}: {text(values[best])} {what}."


def charts_of(view: Overview) -> Charts:
    """The charts of what ``view`` holds, each with a title, a description that sums it up in words and a
    table of its numbers; none for a part with nothing in the period (the page says so in words)."""
    period = view.period
    days = period.dates
    labels = [short_day(d) for d in days]
    titles = [long_day(d) for d in days]  # for a bar's tooltip
    rows = [table_day(d) for d in days]  # for a table's row headings
    span = f"from {short_day(period.first)} to {short_day(period.last)}"
    payments_chart = funnel_chart = deliveries_chart = hooks_chart = None
    amounts: list[Chart] = []
    p = view.payments
    if p is not None and (p.succeeded or p.declined or p.refunds):
        ok = [d.succeeded for d in p.days]
        bad = [d.declined for d in p.days]
        payments_chart = charts.column_chart(
            "chart-payments", "Payments per day",
            f"{_plural(p.succeeded, 'payment')} succeeded and {p.declined} declined {span} (UTC)."
            + _busiest(days, ok, "succeeded"),
            labels, [Series("Succeeded", "ok", tuple(ok)), Series("Declined", "bad", tuple(bad), hatched=True)],
            table=Table("Payments per day", ("Day", "Succeeded", "Declined", "Refunds"),
                        tuple((rows[i], (str(d.succeeded), str(d.declined), str(d.refunds)))
                              for i, d in enumerate(p.days))),
            x_title="Day (UTC)", y_title="Payments", category_titles=titles)
        for currency in p.currencies:
            code = currency.upper()
            paid = [d.paid.get(currency, 0) for d in p.days]
            back = [d.refunded.get(currency, 0) for d in p.days]

            def text(v: int, currency: str = currency) -> str:
                return amount_text(v, currency)

            amounts.append(charts.column_chart(
                f"chart-amounts-{currency}", f"Amount paid per day, {code}",
                f"{text(sum(paid))} paid and {text(sum(back))} refunded in {code} {span} (UTC)."
                + _busiest(days, paid, "paid", text),
                labels, [Series("Paid", "money", tuple(paid)), Series("Refunded", "refund", tuple(back), hatched=True)],
                table=Table(f"Amount paid and refunded per day, {code}", ("Day", "Paid", "Refunded"),
                            tuple((rows[i], (text(paid[i]), text(back[i]))) for i in range(len(days)))),
                x_title="Day (UTC)", y_title=code, value_text=text, category_titles=titles))
    f = view.funnel
    if f is not None and (f.sessions or f.dropped_off or f.links):
        stages = [("Checkout sessions", f.sessions), ("Dropped off", f.dropped_off),
                  ("Recovery links sent", f.links), ("Paid through a link", f.recovered)]
        steps = []
        for i, (name, value) in enumerate(stages):
            before = stages[i - 1][1] if i else None
            share = f"{round(100 * value / before)}%" if before else "—"
            steps.append((name, (str(value), share)))
        funnel_chart = charts.funnel_chart(
            "chart-funnel", "Drop-off recovery",
            f"{_plural(f.sessions, 'checkout session')} {span}: {f.dropped_off} dropped off, "
            f"{_plural(f.links, 'recovery link')} made, {f.recovered} paid through its link.",
            stages, table=Table("Drop-off recovery", ("Step", "Count", "Of previous"), tuple(steps)))
    d = view.deliveries
    if d is not None and d.failed:
        values = [x.failed for x in d.days]
        deliveries_chart = charts.column_chart(
            "chart-deliveries", "Failed webhook deliveries per day",
            f"{_plural(d.failed, 'webhook delivery', 'webhook deliveries')} failed {span} (UTC)."
            + _busiest(days, values, "failed"),
            labels, [Series("Failed", "fail", tuple(values))],
            table=Table("Failed webhook deliveries per day", ("Day", "Failed deliveries"),
                        tuple((rows[i], (str(v),)) for i, v in enumerate(values))),
            x_title="Day the event was sent (UTC)", y_title="Deliveries", category_titles=titles)
    h = view.hooks
    if h is not None and h.failed:
        values = [x.failed for x in h.days]
        hooks_chart = charts.column_chart(
            "chart-hooks", "Failed hook calls per day",
            f"{h.failed} of {_plural(h.calls, 'hook call')} failed {span} (UTC)." + _busiest(days, values, "failed"),
            labels, [Series("Failed", "fail", tuple(values))],
            table=Table("Hook calls per day", ("Day", "Calls", "Failed"),
                        tuple((rows[i], (str(x.calls or 0), str(x.failed))) for i, x in enumerate(h.days))),
            x_title="Day (UTC)", y_title="Hook calls", category_titles=titles)
    return Charts(payments_chart, amounts, funnel_chart, deliveries_chart, hooks_chart)
